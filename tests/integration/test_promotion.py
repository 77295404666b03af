"""Promote and roll back, end to end: two CI builds land in staging; a releaser promotes through
the REST API and the CLI; apt-get installs from production; refusals change nothing; a rollback
makes the previous version apt's candidate again.

Needs root (apt-get install into this machine, then purge).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request

import pytest

from conveyor import debformats
from conveyor import hostsetup
from conveyor.results import NAMES
from ops import api
from ops import chroots
from ops import cli
from ops import mailsink
from ops import services
from ops import setup
from ops.api import fetch_text
from tests.integration.chroothost import chroot_hosts
from tests.integration.chroothost import host_setup_commands
from tests.integration.helpers import AptClient
from tests.integration.helpers import free_port
from tests.integration.helpers import installed_version
from tests.integration.helpers import purge
from tests.integration.helpers import running_installation
from tests.integration.helpers import session
from tests.integration.helpers import two_versions

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="installs the built package: needs root"),
]

PACKAGE = "snowbird"
STAGING, PRODUCTION = "snowbird-staging", "snowbird"


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    with running_installation(
        "promote", PACKAGE, extra=f"[mail]\nsmtp_port = {free_port()}\n"
    ) as settings:
        yield settings


@pytest.fixture(scope="module")
def versions(installation):
    """Two CI builds in staging: (older, newer) versions."""
    return two_versions(installation)


def index(settings, dist: str) -> str:
    url = f"{settings.repository.url}dists/{dist}/main/binary-amd64/Packages"
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode()


def history(settings, dist: str) -> list[dict]:
    return [
        json.loads(line)
        for line in (settings.history_dir / f"{dist}.jsonl").read_text().splitlines()
    ]


def promote(
    master: api.Master,
    version: str = "",
    source: str = STAGING,
    target: str = PRODUCTION,
    package: str = PACKAGE,
) -> dict:
    brid = master.force(
        "promote",
        "promote",
        package=package,
        version=version,
        from_dist=source,
        to_dist=target,
        reason="test",
    )
    return master.follow(brid)


def wait_for_mail(settings, subject: str, count: int = 1, timeout: float = 30) -> list:
    """The mails with this subject, once there are `count` of them (the reporter sends a
    release mail just after the promote build has finished)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [
            m
            for m in map(mailsink.read, mailsink.messages(services.mail_dir(settings)))
            if m["Subject"] == subject
        ]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def step_text(build: dict) -> str:
    return "\n".join(step["state_string"] for step in build["steps"])


def test_only_releasers_may_promote_and_refusals_change_nothing(installation, versions):
    before = (index(installation, PRODUCTION), history(installation, PRODUCTION))

    with pytest.raises(api.ApiError) as err:
        promote(session(installation, None))
    assert err.value.code == cli.FORBIDDEN and "403" in str(err.value)
    with pytest.raises(api.ApiError) as err:
        promote(session(installation, "developer"))
    assert err.value.code == cli.FORBIDDEN
    assert "you need to have role 'releasers'" in str(err.value)

    releaser = session(installation, "releaser")
    with pytest.raises(api.ApiError) as err:
        promote(releaser, source="snowbird-development", target=PRODUCTION)
    assert err.value.code == cli.REFUSED
    assert "rule 'one step at a time'" in str(err.value)
    with pytest.raises(api.ApiError) as err:
        promote(releaser, package="snow;bird")
    assert err.value.code == cli.REFUSED
    with pytest.raises(api.ApiError) as err:
        promote(releaser, version="1.0; rm -rf /")
    assert err.value.code == cli.REFUSED and "does not match" in str(err.value)

    build = promote(releaser, version="9.9.9")
    assert NAMES[build["results"]] == "FAILURE"
    assert f"rule 'version must be in the source': snowbird 9.9.9 is not in {STAGING}" in step_text(
        build
    )

    assert (index(installation, PRODUCTION), history(installation, PRODUCTION)) == before


def test_a_failed_change_leaves_the_published_state_as_it_was(installation, versions):
    """The signing key is unusable while a promotion runs: the build fails at `publish`, and
    production still serves its last signed state, which apt still verifies."""
    older, _ = versions
    before = (index(installation, PRODUCTION), history(installation, PRODUCTION))
    home = installation.repository.gnupg_home
    hidden = home.with_name(home.name + ".away")
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env={**os.environ, "GNUPGHOME": str(home)})
    home.rename(hidden)
    try:
        build = promote(session(installation, "releaser"), version=older)
    finally:
        hidden.rename(home)
    assert NAMES[build["results"]] == "FAILURE"
    failed = [s["name"] for s in build["steps"] if s["results"] == 2]
    assert failed == ["publish"]
    assert (index(installation, PRODUCTION), history(installation, PRODUCTION)) == before
    # the snapshots the failed build made are dropped: no state that never was stays behind
    snapshots = setup.aptly(installation, "snapshot", "list", "-raw").stdout.split()
    assert not [s for s in snapshots if s.endswith(f"@promote-{build['number']}")]
    assert any(s["name"] == "cleanup" and s["results"] == 0 for s in build["steps"])
    apt = AptClient(
        installation.state_dir / "apt-after-failure", installation.repository.url, PRODUCTION
    )
    out = apt.update()  # fails if the Release file's signature does not verify
    assert "not signed" not in out.stderr and "NO_PUBKEY" not in out.stderr


def test_promote_then_apt_get_install_from_production(installation, versions):
    older, newer = versions
    build = promote(session(installation, "releaser"), version=older)
    assert NAMES[build["results"]] == "SUCCESS", api.describe(build)
    assert f"Version: {older}\n" in index(installation, PRODUCTION)
    last = history(installation, PRODUCTION)[-1]
    assert (last["action"], last["version"], last["who"], last["from"]) == (
        "promote",
        older,
        "releaser",
        STAGING,
    )

    apt = AptClient(
        installation.state_dir / "apt-production", installation.repository.url, PRODUCTION
    )
    apt.update()
    apt.install(PACKAGE)
    try:
        assert installed_version(PACKAGE) == older
        assert subprocess.run(["getent", "passwd", "snowbird"]).returncode == 0
        assert os.path.exists("/var/lib/snowbird/static/manifest.json")
    finally:
        purge(PACKAGE)

    # again: a success that changes nothing, and says so
    build = promote(session(installation, "releaser"), version=older)
    assert NAMES[build["results"]] == "SUCCESS"
    assert f"{PACKAGE} {older} is already in {PRODUCTION}: nothing changed" in step_text(build)
    assert history(installation, PRODUCTION)[-1] == last


def test_verify_proves_a_package_and_one_changed_byte_stops_its_promotion(
    installation, versions, capsys
):
    older, newer = versions
    args = ["--settings", str(installation.file)]
    assert cli.main(args + ["verify", f"{PACKAGE}={newer}"]) == cli.OK
    out = capsys.readouterr().out
    assert "signed by the repository's key" in out and "commit " in out, out
    assert f"verified: {PACKAGE} {newer} (1 package(s))" in out
    # the build's .buildinfo, served beside the envelope, signed by its digest, names the .deb
    assert re.search(r"buildinfo snowbird_\S+_amd64\.buildinfo: as signed; it lists this", out)
    # the provenance is the master's: it names the package build and its worker
    assert f"{installation.web_url}#/builders/" in out and " on build" in out
    # the history, which the board shows: signed at the publish, verified on the way into
    # production (the promotion of the older version, just before)
    assert history(installation, STAGING)[-1]["provenance"] == "signed"
    assert history(installation, PRODUCTION)[-1]["provenance"] == "verified"

    stanza = next(
        s
        for s in debformats.parse_packages_stanzas(index(installation, STAGING))
        if s["Version"] == newer
    )
    # the chroot base it was built in, by the digest the trusted side wrote beside the base
    deb = stanza["Filename"].rsplit("/", 1)[1]
    envelope = json.loads(fetch_text(installation.repository.url + f"provenance/{deb}.intoto.json"))
    statement = json.loads(base64.b64decode(envelope["payload"]))
    bases = {
        d["uri"]: d["digest"]["sha256"]
        for d in statement["predicate"]["buildDefinition"]["resolvedDependencies"]
        if d["uri"].startswith("conveyor-chroot-base:")
    }
    name = f"{chroots.machine_release()}-amd64.tar.zst"
    assert bases == {
        f"conveyor-chroot-base:{name}": (chroots.CHROOTS / f"{name}.sha256").read_text().strip()
    }
    # one byte of the .deb as the repository serves it
    served = installation.repository.www_root / stanza["Filename"]
    original = served.read_bytes()
    served.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    try:
        assert cli.main(args + ["verify", f"{PACKAGE}={newer}"]) == cli.FAILED
        err = capsys.readouterr().err
        assert "NOT verified" in err and "the file is not the one that was built" in err, err
        before = index(installation, PRODUCTION)
        build = promote(session(installation, "releaser"), version=newer)
        assert NAMES[build["results"]] == "FAILURE", api.describe(build)
        assert "does not verify" in step_text(build) and "not the one that was built" in (
            step_text(build)
        )
        assert index(installation, PRODUCTION) == before  # nothing changed
    finally:
        served.write_bytes(original)
    assert cli.main(args + ["verify", f"{PACKAGE}={newer}"]) == cli.OK


def test_two_promotions_at_once_both_run_in_order(installation, versions):
    older, newer = versions
    releaser = session(installation, "releaser")
    # staging → production for the newer, and (already there) the older, forced back to back
    first = releaser.force(
        "promote",
        "promote",
        package=PACKAGE,
        version=newer,
        from_dist=STAGING,
        to_dist=PRODUCTION,
        reason="race 1",
    )
    second = releaser.force(
        "promote",
        "promote",
        package=PACKAGE,
        version=newer,
        from_dist=STAGING,
        to_dist=PRODUCTION,
        reason="race 2",
    )
    a, b = releaser.follow(first), releaser.follow(second)
    assert NAMES[a["results"]] == "SUCCESS" and NAMES[b["results"]] == "SUCCESS"
    assert a["number"] < b["number"]
    assert a["complete_at"] <= b["started_at"]  # the repository lock: one after the other
    assert "already in" in step_text(b)

    # the repository is consistent and signed: apt verifies it and sees the newer version
    apt = AptClient(installation.state_dir / "apt-race", installation.repository.url, PRODUCTION)
    apt.update()
    assert apt.candidate(PACKAGE) == newer


def test_a_rollback_takes_a_host_back(installation, versions):
    # a host (a chroot standing in for one) set up with the very lines `bin/conveyor host-setup
    # snowbird` prints: the served keyring, source and pin, apt-get install
    older, newer = versions
    repo = installation.repository
    served = {
        suffix: cli.fetch_text(f"{repo.url}hosts/{PRODUCTION}.{suffix}")
        for suffix in ("sources", "pref")
    }
    assert served["sources"] == hostsetup.sources(repo.url, PRODUCTION, repo.component)
    assert "Pin-Priority: 1001\n" in served["pref"]
    with chroot_hosts(installation.state_dir / "chroot-hosts", "production-host") as (host,):
        host.set_up(host_setup_commands(installation, PRODUCTION))
        pref = f"/etc/apt/preferences.d/{hostsetup.file_names(PRODUCTION)[1]}"
        assert host.run(f"cat {pref}").stdout == served["pref"]
        assert host.installed_version(PACKAGE) == newer
        brid = session(installation, "releaser").force(
            "rollback", "rollback", distribution=PRODUCTION, state="", reason="bad release"
        )
        build = session(installation, "releaser").follow(brid)
        assert NAMES[build["results"]] == "SUCCESS", api.describe(build)
        assert history(installation, PRODUCTION)[-1]["action"] == "rollback"
        assert f"Version: {newer}\n" not in index(installation, PRODUCTION)

        # what the host runs to follow the distribution: it goes back too
        out = host.upgrade().stdout
        assert "DOWNGRADED" in out, out
        assert host.installed_version(PACKAGE) == older
        assert host.candidate(PACKAGE) == older

    # a developer may not roll back
    with pytest.raises(api.ApiError) as err:
        session(installation, "developer").force(
            "rollback", "rollback", distribution=PRODUCTION, state="", reason="x"
        )
    assert err.value.code == cli.FORBIDDEN


def test_cli_exit_codes(installation, versions, capsys, monkeypatch):
    older, newer = versions
    args = ["--settings", str(installation.file)]
    assert cli.main(args + ["status"]) == cli.OK
    assert f"snowbird  {STAGING}" in capsys.readouterr().out

    # the demo releaser's credentials file is the default
    assert cli.main(args + ["promote", PACKAGE, STAGING, PRODUCTION]) == cli.OK
    out = capsys.readouterr().out
    assert "promote #" in out and ": SUCCESS" in out and installation.web_url in out
    assert newer in index(installation, PRODUCTION)
    # waiting is visible: each step as it finished, in order, with its summary line; in a
    # pipe (pytest's capture) plain lines, no live line
    steps = [line.split()[0] for line in out.splitlines() if line.startswith("  ")]
    assert steps.index("check") < steps.index("publish") < steps.index("verify")
    assert re.search(
        rf"^  verify +{PACKAGE} {re.escape(newer)} in {PRODUCTION} +\d+ s$", out, re.M
    ), out
    assert "\r" not in out and "\x1b" not in out
    assert out.rstrip().splitlines()[-1].startswith(installation.web_url)

    # the release mail: to the team, old → new, who, the commits in between
    subject = f"[conveyor] {PACKAGE} {newer} released to {PRODUCTION}"
    # newer reached production twice: in the race test, and now after the rollback
    mails = wait_for_mail(installation, subject, count=2)
    assert len(mails) == 2
    assert mails[-1]["To"] == "snowbird-team@example.com"
    body = mailsink.text_of(mails[-1])
    assert f"{PACKAGE} {older} → {newer} in {PRODUCTION}" in body
    assert "promoted by releaser from snowbird-staging" in body
    assert "commits (1):" in body and "Write release notes" in body

    assert cli.main(args + ["promote", PACKAGE, "snowbird-development", PRODUCTION]) == cli.REFUSED
    assert "rule 'one step at a time'" in capsys.readouterr().err
    assert (
        cli.main(args + ["promote", PACKAGE, STAGING, PRODUCTION, "--version", "0.0.1"])
        == cli.FAILED
    )
    # refused when asked, before any build (master/basis.py)
    assert cli.main(args + ["rollback", PRODUCTION, "--to", "99"]) == cli.REFUSED
    assert "refused: there is no state 99" in capsys.readouterr().err

    monkeypatch.setenv("CONVEYOR_USER", "releaser")
    monkeypatch.setenv("CONVEYOR_PASSWORD", "not-the-password")
    assert cli.main(args + ["rollback", PRODUCTION]) == cli.FORBIDDEN
    assert "wrong user name or password" in capsys.readouterr().err
    monkeypatch.delenv("CONVEYOR_USER")
    monkeypatch.delenv("CONVEYOR_PASSWORD")

    assert cli.main(args + ["rollback", PRODUCTION]) == cli.OK
    assert cli.main(args + ["history", PRODUCTION]) == cli.OK
    out = capsys.readouterr().out
    assert "rollback" in out and "<- published" in out


def published_snapshot(settings, dist: str) -> str:
    shown = setup.aptly(settings, "publish", "show", "-json", dist, ".").stdout
    return json.loads(shown)["Sources"][0]["Name"]


def test_a_change_that_fails_its_check_is_undone_and_rollback_still_works(installation, versions):
    """Verification fails after the switch (the web server serves a stale index): the previous
    state is put back, the served state is one the history knows, and a rollback works."""
    older, newer = versions
    releaser = session(installation, "releaser")
    # production a step forward (the state before it now holds the older version)
    build = releaser.follow(
        releaser.force(
            "promote",
            "promote",
            package=PACKAGE,
            version=newer,
            from_dist=STAGING,
            to_dist=PRODUCTION,
            reason="forward",
        )
    )
    assert NAMES[build["results"]] == "SUCCESS", api.describe(build)
    before = history(installation, PRODUCTION)
    assert published_snapshot(installation, PRODUCTION) == before[-1]["snapshot"]
    dists = installation.repository.www_root / "dists"
    target = dists.resolve()
    dists.unlink()
    shutil.copytree(target, dists)  # a stale copy: what the web server serves stops changing
    try:
        brid = releaser.force(
            "rollback", "rollback", distribution=PRODUCTION, state="", reason="stale mirror"
        )
        build = releaser.follow(brid)
    finally:
        shutil.rmtree(dists)
        dists.symlink_to(target)
    assert NAMES[build["results"]] == "FAILURE", api.describe(build)
    steps = {step["name"]: step for step in build["steps"]}
    assert NAMES[steps["verify"]["results"]] == "FAILURE"
    assert NAMES[steps["restore"]["results"]] == "SUCCESS", steps["restore"]["state_string"]
    # the history did not grow, and what aptly publishes is its last state
    assert history(installation, PRODUCTION) == before
    assert published_snapshot(installation, PRODUCTION) == before[-1]["snapshot"]
    assert f"Version: {before[-1]['version']}\n" in index(installation, PRODUCTION)

    # and a rollback from there works
    build = releaser.follow(
        releaser.force(
            "rollback",
            "rollback",
            distribution=PRODUCTION,
            state="",
            reason="after the stale mirror",
        )
    )
    assert NAMES[build["results"]] == "SUCCESS", api.describe(build)
    assert history(installation, PRODUCTION)[-1]["action"] == "rollback"
    assert (
        published_snapshot(installation, PRODUCTION)
        == history(installation, PRODUCTION)[-1]["snapshot"]
    )


def control(master: api.Master, path: str, method: str, **params):
    reply = master.request(
        f"api/v2/{path}", {"jsonrpc": "2.0", "method": method, "id": 1, "params": params}
    )
    assert "error" not in reply, reply
    return reply.get("result")


def test_a_freeze_stops_promotions_from_every_way_in_but_not_a_rollback(
    installation, versions, capsys
):
    older, newer = versions
    args = ["--settings", str(installation.file)]
    releaser = session(installation, "releaser")  # (the demo's releasers have production)
    forward = releaser.follow(
        releaser.force(
            "promote",
            "promote",
            package=PACKAGE,
            version=newer,
            from_dist=STAGING,
            to_dist=PRODUCTION,
            reason="before the freeze",
        )
    )
    assert NAMES[forward["results"]] == "SUCCESS", api.describe(forward)
    assert cli.main(args + ["freeze", PRODUCTION, "--reason", "release weekend"]) == cli.OK
    # what was asked for before the freeze (a rebuild: no button asked again) is refused by
    # its build
    _bsid, brids = control(releaser, f"builds/{forward['buildid']}", "rebuild")
    late = releaser.follow(int(next(iter(brids.values()))))
    assert NAMES[late["results"]] == "FAILURE", api.describe(late)
    assert f"refused: {PRODUCTION} is frozen (by releaser" in step_text(late)
    before = (history(installation, PRODUCTION), index(installation, PRODUCTION))

    # the CLI, the raw API (what the board's button posts) and the board itself
    capsys.readouterr()
    assert cli.main(args + ["promote", PACKAGE, STAGING, PRODUCTION]) == cli.REFUSED
    assert "release weekend" in capsys.readouterr().err
    with pytest.raises(api.ApiError) as err:
        releaser.force(
            "promote",
            "promote",
            package=PACKAGE,
            version=newer,
            from_dist=STAGING,
            to_dist=PRODUCTION,
            reason="raw API",
        )
    assert err.value.code == cli.REFUSED and f"{PRODUCTION} is frozen" in str(err.value)
    shown = releaser.request("plugins/wsgi_dashboards/releases/board.json")
    assert shown["frozen"][PRODUCTION]["reason"] == "release weekend"
    assert cli.main(args + ["status"]) == cli.OK
    assert f"{PRODUCTION} is FROZEN: release weekend" in capsys.readouterr().out
    assert (history(installation, PRODUCTION), index(installation, PRODUCTION)) == before

    # a developer may not freeze or unfreeze
    with pytest.raises(api.ApiError) as err:
        session(installation, "developer").force(
            "freeze", "freeze", distribution=PRODUCTION, action="unfreeze", reason="mine"
        )
    assert err.value.code == cli.FORBIDDEN

    # an emergency stays possible: a rollback of the frozen distribution
    rollback = releaser.follow(
        releaser.force(
            "rollback", "rollback", distribution=PRODUCTION, state="", reason="emergency"
        )
    )
    assert NAMES[rollback["results"]] == "SUCCESS", api.describe(rollback)
    assert f"Version: {newer}\n" not in index(installation, PRODUCTION)

    # unfrozen: promotions pass again
    assert cli.main(args + ["unfreeze", PRODUCTION]) == cli.OK
    assert cli.main(args + ["promote", PACKAGE, STAGING, PRODUCTION]) == cli.OK
    assert f"Version: {newer}\n" in index(installation, PRODUCTION)


def test_two_identical_rollbacks_make_one_change_and_a_rebuild_of_it_is_refused(
    installation, versions
):
    # (staging: the tests before leave production wherever they end)
    older, newer = versions
    admin, releaser = session(installation, "admin"), session(installation, "releaser")
    before = history(installation, STAGING)
    assert f"Version: {newer}\n" in index(installation, STAGING)
    (worker,) = [
        w for w in admin.get("workers")["workers"] if w["name"] == installation.repository.worker
    ]
    # both asked for before either runs: the repository's worker paused meanwhile
    control(admin, f"workers/{worker['workerid']}", "pause", reason="two identical rollbacks")
    try:
        requests = [
            releaser.force(
                "rollback",
                "rollback",
                distribution=STAGING,
                state="",
                reason=f"bad release, said {who}",
            )
            for who in ("Ada", "Bo")
        ]
    finally:
        control(admin, f"workers/{worker['workerid']}", "unpause")
    first, second = (releaser.follow(brid) for brid in requests)
    assert NAMES[first["results"]] == "SUCCESS", api.describe(first)
    assert NAMES[second["results"]] == "FAILURE", api.describe(second)
    assert f"refused: {STAGING} has changed since this was asked for" in step_text(second)

    after = history(installation, STAGING)
    assert after[:-1] == before and after[-1]["action"] == "rollback"  # one change
    served = index(installation, STAGING)
    assert f"Version: {newer}\n" not in served and f"Version: {older}\n" in served

    # a rebuild of that rollback asks for the change it made once more: refused, nothing moves
    _bsid, brids = control(releaser, f"builds/{first['buildid']}", "rebuild")
    rebuilt = releaser.follow(int(next(iter(brids.values()))))
    assert NAMES[rebuilt["results"]] == "FAILURE", api.describe(rebuilt)
    assert "has changed since this was asked for" in step_text(rebuilt)
    assert history(installation, STAGING) == after
    assert index(installation, STAGING) == served
