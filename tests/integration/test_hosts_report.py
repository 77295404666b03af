"""What runs where, end to end (issue 20 item 4): two chroot hosts set up with the very lines
`bin/conveyor host-setup snowbird-staging` prints and a token each (`bin/conveyor host-token
add`) install the demo package; apt's hook reports after each dpkg run; the master's
`GET hosts`, the release board and `bin/conveyor status --json` list both hosts with their
versions; after a second push one host upgrades and the other lags, which all three show; a
revoked token's reports are refused (401) and not kept, without a restart.

Needs root (chroot hosts: mount, chroot); this machine's own dpkg is not touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request

import pytest

from conveyor import hostreports
from conveyor.results import result_name
from ops import api
from ops import demo
from ops import github
from tests.integration.chroothost import ROOT
from tests.integration.chroothost import chroot_hosts
from tests.integration.chroothost import host_setup_commands
from tests.integration.helpers import running_installation
from tests.integration.helpers import session
from tests.integration.helpers import version_gt

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="chroot hosts need root (mount, chroot)"),
]

PACKAGE, STAGING = "snowbird", "snowbird-staging"
ONE, TWO = "host-one", "host-two"


@pytest.fixture(scope="module")
def installation():
    with running_installation("hosts") as settings:
        yield settings


def conveyor(settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ROOT / "bin" / "conveyor"), "--settings", str(settings.file), *args],
        capture_output=True,
        text=True,
    )


def push(settings, n: int) -> str:
    """The n-th push of the demo app (0: its first); the version it put into staging."""
    project = settings.projects[0]
    checkout = demo.ensure_demo_repo(settings, project)
    before = github.git(checkout, "rev-parse", "HEAD")
    if n:
        (checkout / "NOTES.md").write_text(f"Release {n + 1}.\n")
        github.git(checkout, "add", "NOTES.md")
        github.git(checkout, "commit", "-qm", f"Release {n + 1}")
        github.git(checkout, "push", "-q", "origin", "HEAD:refs/heads/main")
    build = github.push_and_wait(settings, project, checkout, before=before if n else github.ZERO)
    assert result_name(build["results"]) == "SUCCESS", api.describe(build)
    return build["properties"]["package_version"][0]


def add_token(settings, host: str) -> str:
    proc = conveyor(settings, "host-token", "add", host)
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.split("\n\n")[1].strip()
    assert token not in (settings.state_dir / "hosts" / "tokens.json").read_text()
    return token


@pytest.fixture(scope="module")
def hosts(installation):
    """(first version, host one, host two, their tokens): both set up for staging, running the
    first version."""
    first = push(installation, 0)
    commands = host_setup_commands(installation, STAGING)
    with chroot_hosts(installation.state_dir / "chroot-hosts", ONE, TWO) as (one, two):
        tokens = {}
        for host in (one, two):
            tokens[host.name] = add_token(installation, host.name)
            host.set_up(commands, tokens[host.name])
        yield first, one, two, tokens


def view(settings, user: str = "developer") -> dict[str, dict]:
    """GET hosts as a reader: distribution -> its part of the view."""
    answer = session(settings, user).request("hosts")
    return {d["distribution"]: d for d in answer["distributions"]}


def host_rows(part: dict) -> dict[str, dict]:
    return {h["host"]: h for h in part["hosts"]}


def board_section(settings, dist: str) -> str:
    page = session(settings, "developer").request("plugins/wsgi_dashboards/releases/index.html")
    start = page.index(f'id="hosts-{dist}"')
    return page[start : page.index("</section>", start)]


def row(section: str, host: str) -> str:
    return section[section.index(f'data-host="{host}"') :].split("</tr>")[0]


def post(settings, token: str | None, data: bytes) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        settings.web_url + "hosts/report", data=data, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_two_chroot_hosts_report_and_the_board_lists_them_with_their_versions(installation, hosts):
    first, one, two, _ = hosts
    for host in (one, two):
        assert host.installed_version(PACKAGE) == first
        # set up as printed: the reporter, its configuration and apt's hook, from the repository
        assert "DPkg::Post-Invoke" in host.run("cat /etc/apt/apt.conf.d/90conveyor-report").stdout
        mode = host.run("stat -c %a /etc/conveyor/report.token").stdout.strip()
        assert mode == "600"

    staging = view(installation)[STAGING]
    rows = host_rows(staging)
    assert sorted(rows) == [ONE, TWO]
    for name in (ONE, TWO):
        (package,) = rows[name]["packages"]
        assert (package["name"], package["version"], package["status"]) == (
            PACKAGE,
            first,
            hostreports.INSTALLED,
        )
        assert package["running"] and rows[name]["lags"] is False and not rows[name]["revoked"]
    assert staging["served"] == {PACKAGE: [first]} and staging["lagging"] == []

    section = board_section(installation, STAGING)
    for name in (ONE, TWO):
        assert first in row(section, name) and "current" in row(section, name)
    assert "2 host(s)" in section

    # anonymous users see nothing of it (a private installation)
    with pytest.raises(api.ApiError) as err:
        session(installation, None).request("hosts")
    assert "401" in str(err.value)


def test_after_a_push_the_host_that_did_not_upgrade_lags(installation, hosts):
    first, one, _two, _ = hosts
    second = push(installation, 1)
    assert version_gt(second, first)
    out = one.upgrade()
    assert "conveyor-report" not in out.stderr, out.stderr  # the report went through
    assert one.installed_version(PACKAGE) == second

    staging = view(installation)[STAGING]
    rows = host_rows(staging)
    assert rows[ONE]["packages"][0]["version"] == second and rows[ONE]["lags"] is False
    assert rows[TWO]["packages"][0]["version"] == first and rows[TWO]["lags"] is True
    assert staging["lagging"] == [TWO] and staging["served"] == {PACKAGE: [second]}

    section = board_section(installation, STAGING)
    assert "1 of 2 host(s) behind" in section
    assert f"behind: {STAGING} serves {second}" in row(section, TWO)
    assert "current" in row(section, ONE)

    proc = conveyor(installation, "status", "--json")
    assert proc.returncode == 0, proc.stderr
    (part,) = [d for d in json.loads(proc.stdout)["hosts"]["distributions"] if d["hosts"]]
    assert (part["distribution"], part["lagging"]) == (STAGING, [TWO])
    text = conveyor(installation, "status").stdout
    assert f"{TWO}  {PACKAGE} {first}  LAGS: {STAGING} serves {second}" in text


def test_a_revoked_token_is_refused_and_its_report_is_not_kept(installation, hosts):
    first, one, two, tokens = hosts
    before = host_rows(view(installation)[STAGING])[TWO]
    proc = conveyor(installation, "host-token", "revoke", TWO)
    assert proc.returncode == 0, proc.stderr

    # host two follows staging: apt's upgrade succeeds, its report is refused (and said so)
    out = two.upgrade()
    assert two.installed_version(PACKAGE) != first
    assert "conveyor-report" in out.stderr and "401" in out.stderr, out.stderr
    after = host_rows(view(installation)[STAGING])[TWO]
    assert after["revoked"] is True
    assert (after["received"], after["packages"]) == (before["received"], before["packages"])
    section = board_section(installation, STAGING)
    assert "(token revoked)" in row(section, TWO)

    # the same over HTTP: 401 with a clear message; host one's token is still good, for host
    # one only, and a report is at most 64 KiB
    report = {"host": TWO, "distribution": STAGING, "packages": []}
    code, text = post(installation, tokens[TWO], json.dumps(report).encode())
    assert (code, text.strip()) == (401, "the token is not valid (unknown or revoked)")
    code, text = post(installation, None, json.dumps(report).encode())
    assert code == 401 and "no token" in text
    code, text = post(installation, tokens[ONE], json.dumps(report).encode())
    assert code == 403 and f"may report for {ONE} only" in text
    code, _ = post(installation, tokens[ONE], b" " * (hostreports.MAX_REPORT + 1))
    assert code == 413
    code, text = post(installation, tokens[ONE], b'{"host": "host-one"}')
    assert code == 400 and "missing: distribution, packages" in text
    assert host_rows(view(installation)[STAGING])[TWO]["packages"] == before["packages"]
    assert host_rows(view(installation)[STAGING])[ONE]["packages"][0]["version"] != first
