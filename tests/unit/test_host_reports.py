"""What runs where: the hosts' tokens (conveyor/hosttokens.py), their reports and the view of who
runs which version (conveyor/hostreports.py), the reporter a host runs (conveyor/hostreporter.py)
and `bin/conveyor host-token`."""

from __future__ import annotations

import json
import stat
import subprocess
from datetime import UTC
from datetime import datetime

import pytest

from conveyor import hostreporter
from conveyor import hostreports
from conveyor import hostsetup
from conveyor import hosttokens
from ops import cli
from ops import setup
from tests.integration.helpers import write_pipeline

ALLOWED = {"snowbird": frozenset({"snowbird", "snowbird-doc"}), "snowbird-staging": frozenset()}
V1, V2 = "1.4.0+ci20261204.140521.1.g4d4a7f9", "1.4.0+ci20261205.090000.2.gabcdef0"


def report(**changes) -> dict:
    body = {
        "host": "web-1",
        "distribution": "snowbird",
        "packages": [{"name": "snowbird", "version": V1, "status": hostreports.INSTALLED}],
    }
    return {**body, **changes}


def body(value) -> bytes:
    return json.dumps(value).encode()


# --- tokens -----------------------------------------------------------------------------------


def test_a_token_is_shown_once_and_only_its_hash_is_kept(tmp_path):
    path = hosttokens.tokens_file(tmp_path)
    token = hosttokens.add(path, "web-1")
    assert len(token) >= 40
    text = path.read_text()
    assert token not in text and hosttokens.digest(token) in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    hosts = hosttokens.load(path)
    assert hosttokens.host_of(hosts, token) == "web-1"
    assert hosttokens.host_of(hosts, token + "x") is None
    assert hosttokens.host_of(hosts, "") is None and hosttokens.host_of(hosts, None) is None
    assert hosttokens.host_of(hosts, "x" * 1000) is None


def test_each_host_has_its_own_token_and_a_revoked_one_is_refused(tmp_path):
    path = hosttokens.tokens_file(tmp_path)
    one, two = hosttokens.add(path, "web-1"), hosttokens.add(path, "web-2")
    assert one != two
    hosttokens.revoke(path, "web-2")
    hosts = hosttokens.load(path)
    assert hosttokens.host_of(hosts, one) == "web-1"
    assert hosttokens.host_of(hosts, two) is None
    assert hosttokens.revoked(hosts) == {"web-2"}
    # a revoked host may get a new token; the old one stays refused
    three = hosttokens.add(path, "web-2")
    hosts = hosttokens.load(path)
    assert hosttokens.host_of(hosts, three) == "web-2" and hosttokens.host_of(hosts, two) is None


def test_token_requests_that_cannot_be_done_say_why_and_change_nothing(tmp_path):
    path = hosttokens.tokens_file(tmp_path)
    hosttokens.add(path, "web-1")
    before = path.read_text()
    with pytest.raises(hosttokens.TokenError, match="has a token already"):
        hosttokens.add(path, "web-1")
    with pytest.raises(hosttokens.TokenError, match="not a host name"):
        hosttokens.add(path, "web_1;rm")
    with pytest.raises(hosttokens.TokenError, match="has no token"):
        hosttokens.revoke(path, "web-9")
    hosttokens.revoke(path, "web-1")
    revoked = path.read_text()
    with pytest.raises(hosttokens.TokenError, match="revoked already"):
        hosttokens.revoke(path, "web-1")
    assert path.read_text() == revoked != before


def test_host_token_from_the_cli(tmp_path, capsys):
    settings = write_pipeline(tmp_path)
    args = ["--settings", str(settings.file), "host-token"]
    assert cli.main(args + ["add", "web-1"]) == cli.OK
    out = capsys.readouterr().out
    token = out.split("\n\n")[1].strip()
    assert hosttokens.host_of(hosttokens.load(hosttokens.tokens_file(settings.state_dir)), token)
    assert hostsetup.token_command() in out
    assert cli.main(args + ["add", "web-1"]) == cli.REFUSED
    assert "has a token already" in capsys.readouterr().err
    assert cli.main(args + ["revoke"]) == cli.REFUSED
    assert cli.main(args + ["revoke", "web-1"]) == cli.OK
    assert cli.main(args + ["list"]) == cli.OK
    listed = capsys.readouterr().out
    assert "web-1" in listed and "revoked" in listed and token not in listed


# --- reports ----------------------------------------------------------------------------------


def test_a_good_report_is_parsed():
    assert hostreports.parse(body(report()), ALLOWED) == report()
    empty = report(packages=[])
    assert hostreports.parse(body(empty), ALLOWED) == empty
    removed = report(
        packages=[{"name": "snowbird", "version": V1, "status": "deinstall ok config-files"}]
    )
    assert hostreports.parse(body(removed), ALLOWED)["packages"][0]["status"] == (
        "deinstall ok config-files"
    )


@pytest.mark.parametrize(
    "value, message",
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (body([1]), "not a JSON object"),
        (body({"host": "web-1"}), "missing: distribution, packages"),
        (body({**report(), "admin": True}), "unknown: admin"),
        (body(report(host="web 1")), "not a host name"),
        (body(report(host=["web-1"])), "not a host name"),
        (body(report(distribution="elsewhere")), "not a distribution of this repository"),
        (body(report(packages="snowbird")), "a list of at most"),
        (body(report(packages=[{"name": "snowbird"}])), "exactly name, version and status"),
        (
            body(report(packages=[{"name": "bash", "version": "5", "status": "install ok x"}])),
            "bash is not a package of snowbird",
        ),
        (
            body(report(packages=[{"name": "snowbird", "version": "1;x", "status": "a b c"}])),
            "is not a Debian version",
        ),
        (
            body(report(packages=[{"name": "snowbird", "version": V1, "status": "ok\n"}])),
            "is not a dpkg status",
        ),
        (body(report(packages=report()["packages"] * 2)), "listed twice"),
        (body(report(packages=[{}] * 201)), "a list of at most 200"),
        (b" " * (hostreports.MAX_REPORT + 1), "larger than"),
    ],
)
def test_a_bad_report_is_refused_with_what_is_wrong(value, message):
    with pytest.raises(hostreports.ReportError, match=message):
        hostreports.parse(value, ALLOWED)


def test_reports_are_kept_per_host_and_distribution_the_last_one_each(tmp_path):
    path = hostreports.reports_file(tmp_path)
    when = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    hostreports.record(path, report(), when)
    hostreports.record(path, report(host="web-2"), when)
    newer = report(packages=[{"name": "snowbird", "version": V2, "status": hostreports.INSTALLED}])
    hostreports.record(path, newer, when)
    kept = hostreports.load(path)
    assert sorted(kept) == ["web-1", "web-2"]
    assert kept["web-1"]["snowbird"] == {
        "received": "2026-12-05T12:00:00+00:00",
        "packages": newer["packages"],
    }
    assert kept["web-2"]["snowbird"]["packages"][0]["version"] == V1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_view_says_who_runs_which_version_and_who_lags():
    reports = {
        "web-1": {"snowbird": {"received": "t1", "packages": report()["packages"]}},
        "web-2": {
            "snowbird": {
                "received": "t2",
                "packages": [{"name": "snowbird", "version": V2, "status": hostreports.INSTALLED}],
            }
        },
        "web-3": {
            "snowbird": {
                "received": "t3",
                "packages": [{"name": "snowbird", "version": V2, "status": "install ok unpacked"}],
            }
        },
    }
    packages_of = {"snowbird": ["snowbird"], "snowbird-staging": ["snowbird"]}
    (prod, staging) = hostreports.view(
        packages_of, reports, {"snowbird": {"snowbird": [V2]}, "snowbird-staging": None}, {"web-1"}
    )
    assert prod["served"] == {"snowbird": [V2]}
    rows = {h["host"]: h for h in prod["hosts"]}
    assert prod["lagging"] == ["web-1"]
    assert rows["web-1"]["revoked"] and rows["web-1"]["packages"][0] == {
        "name": "snowbird",
        "version": V1,
        "status": hostreports.INSTALLED,
        "running": True,
        "served": [V2],
        "lags": True,
    }
    assert rows["web-2"]["lags"] is False and rows["web-2"]["packages"][0]["version"] == V2
    # only `install ok installed` runs a version: half-installed is neither running nor lagging
    assert rows["web-3"]["packages"][0]["running"] is False
    assert rows["web-3"]["packages"][0]["version"] is None and rows["web-3"]["lags"] is False
    assert staging == {
        "distribution": "snowbird-staging",
        "served": None,
        "hosts": [],
        "lagging": [],
    }


def test_unknown_served_versions_make_the_lag_unknown_not_false():
    reports = {"web-1": {"snowbird": {"received": "t", "packages": report()["packages"]}}}
    (prod,) = hostreports.view({"snowbird": ["snowbird"]}, reports, {"snowbird": None})
    assert prod["hosts"][0]["lags"] is None and prod["lagging"] == []


def test_served_versions_are_the_newest_of_each_index(tmp_path):
    settings = write_pipeline(tmp_path)
    index = f"Package: snowbird\nVersion: {V1}\n\nPackage: snowbird\nVersion: {V2}\n"
    assert hostreports.served_versions(settings, "snowbird", lambda url: index) == {
        "snowbird": [V2]
    }
    assert hostreports.served_versions(settings, "snowbird", lambda url: None) is None

    def unreachable(url):
        raise OSError("connection refused")

    assert hostreports.served_versions(settings, "snowbird", unreachable) is None


# --- what a host runs -------------------------------------------------------------------------


def test_the_served_files_install_the_reporter_its_hook_and_its_configuration(tmp_path):
    settings = write_pipeline(tmp_path)
    settings.repository.www_root.mkdir(parents=True)
    setup.write_host_files(settings)
    served = settings.repository.www_root
    assert (served / hostsetup.SERVED_REPORTER).read_text() == open(hostreporter.__file__).read()
    hook = (served / hostsetup.SERVED_HOOK).read_text()
    assert "DPkg::Post-Invoke" in hook and "|| true" in hook
    conf = hostreporter.read_config(served / "hosts" / "snowbird.report.conf")
    assert conf == {
        "url": f"{settings.web_url}hosts/report",
        "distribution": "snowbird",
        "packages": ["snowbird"],
    }
    lines = hostsetup.commands(settings.repository.url, "snowbird", ["snowbird"]).splitlines()
    url = settings.repository.url
    assert (
        f"sudo curl -fsSo /etc/conveyor/report.d/snowbird.conf {url}hosts/snowbird.report.conf"
        in (lines)
    )
    assert (
        f"sudo curl -fsSo /etc/apt/apt.conf.d/90conveyor-report {url}hosts/conveyor-report.apt.conf"
    ) in lines
    # the reporter is in place before apt-get install, whose dpkg run it then reports
    assert lines.index(f"sudo curl -fsSo {hostsetup.REPORT_HOOK} {url}{hostsetup.SERVED_HOOK}") < (
        lines.index("sudo apt-get update && sudo apt-get install -y snowbird")
    )


def test_the_apt_hook_is_valid_apt_configuration(tmp_path):
    conf = tmp_path / "apt.conf"
    conf.write_text(hostsetup.report_hook())
    out = subprocess.run(
        ["apt-config", "dump", "DPkg::Post-Invoke"],
        env={"APT_CONFIG": str(conf), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"{hostsetup.REPORTER} || true" in out


def test_the_reporter_reads_dpkg_and_sends_its_report_with_the_token(tmp_path, monkeypatch):
    (tmp_path / "report.d").mkdir()
    (tmp_path / "report.d" / "snowbird.conf").write_text(
        hostsetup.report_config("http://master.example/", "snowbird", ["snowbird", "other"])
    )
    (tmp_path / "token").write_text("s3cret\n")

    def dpkg(argv, **kwargs):
        assert argv[:3] == ["dpkg-query", "-W", "-f"] and argv[4:] == ["snowbird", "other"]
        return subprocess.CompletedProcess(argv, 1, f"snowbird\t{V1}\t{hostreports.INSTALLED}\n")

    sent = []
    monkeypatch.setattr(hostreporter.subprocess, "run", dpkg)
    monkeypatch.setattr(hostreporter, "send", lambda *args: sent.append(args))
    argv = ["--config-dir", str(tmp_path / "report.d"), "--token-file", str(tmp_path / "token")]
    assert hostreporter.main(argv + ["--host", "web-1"]) == 0
    ((url, sent_report, token),) = sent
    assert url == "http://master.example/hosts/report" and token == "s3cret"
    assert hostreports.parse(body(sent_report), {"snowbird": {"snowbird", "other"}}) == report()


def test_the_reporter_without_a_token_says_so_and_fails_alone(tmp_path, capsys):
    (tmp_path / "snowbird.conf").write_text(
        hostsetup.report_config("http://master.example/", "snowbird", ["snowbird"])
    )
    argv = ["--config-dir", str(tmp_path), "--token-file", str(tmp_path / "none")]
    assert hostreporter.main(argv) == 1
    assert "no token in" in capsys.readouterr().err
    assert hostreporter.main(["--config-dir", str(tmp_path / "nothing")]) == 0  # not set up


def test_the_reporter_follows_no_redirect_with_its_token(monkeypatch):
    """A redirect would carry the token elsewhere: refused, and said."""
    import http.server
    import threading

    seen = []

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append((self.path, self.headers.get("Authorization")))
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
            self.end_headers()

        do_GET = do_POST

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.handle_request, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hosts/report"
    try:
        with pytest.raises(hostreporter.ReportFailed, match="302: redirected to"):
            hostreporter.send(url, {"host": "web-1"}, "s3cret", timeout=5)
    finally:
        server.server_close()
    assert seen == [("/hosts/report", "Bearer s3cret")]  # asked once, never /elsewhere
