"""The install check, end to end: a real master, build worker (as conveyor-build), repository
and mail sink; the demo's pushes go through piuparts in a throwaway root before the publish.

A good push passes (install, smoke, purge) and is published; once a version is in production,
the next good push also checks the upgrade from it. A push whose postinst exits 1, and one
whose package fails the smoke command, fail at the install check: the failure mail names the
step and shows what failed, and staging's Packages index is unchanged.

Needs root (the build user, its subordinate ids) and the system packages of `make system`
(piuparts, mmdebstrap, uidmap). The first run on a machine makes the cached base (about a
minute, bench/install_check.py measures it).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import pytest

from conveyor.results import result_name
from ops import api
from ops import demo
from ops import github
from ops import mailsink
from ops import services
from ops.progress import triggered_builds
from tests.integration.helpers import free_port
from tests.integration.helpers import mail_about
from tests.integration.helpers import running_installation

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="makes the build user: needs root"),
]

SMOKE = '["/opt/venvs/snowbird/bin/snowbird", "--version"]'


class Installation:
    def __init__(self, settings, checkout: Path):
        self.settings = settings
        self.checkout = checkout
        self.project = settings.projects[0]

    @property
    def mail_dir(self) -> Path:
        return services.mail_dir(self.settings)

    def mails(self) -> set[Path]:
        return set(self.mail_dir.glob("*.eml"))

    def index(self, dist: str) -> str:
        url = f"{self.settings.repository.url}dists/{dist}/main/binary-amd64/Packages"
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.read().decode()

    def push(self, relpath: str | None = None, content: str = "", message: str = "") -> dict:
        """Commit (a file's new content, or nothing), push, wait for the CI build."""
        before = github.git(self.checkout, "rev-parse", "HEAD")
        if relpath:
            github.commit_file(self.checkout, relpath, content, message)
        else:
            github.git(self.checkout, "commit", "--quiet", "--allow-empty", "-m", message)
        github.push_branch(self.checkout, self.project)
        return github.push_and_wait(self.settings, self.project, self.checkout, before=before)

    def restore(self, relpath: str) -> None:
        """Put a file of the demo back as it is shipped (undo a broken commit)."""
        original = (demo.DEMO_SOURCE / relpath).read_text()
        github.commit_file(self.checkout, relpath, original, f"Restore {relpath}")


@pytest.fixture(scope="module")
def inst():
    with running_installation(
        "install-check",
        # every failure mailed: the second red build in a row is mailed too
        extra=(
            f"[mail]\nsmtp_port = {free_port()}\nevery_failure = true\n[github]\nstatuses = false\n"
        ),
        project={"install_check": "true", "smoke": SMOKE},
    ) as settings:
        checkout = demo.ensure_demo_repo(settings, settings.projects[0])
        yield Installation(settings, checkout)


def steps_of(inst: Installation, build: dict) -> dict[str, dict]:
    """The steps of a CI build and of its package build (where the install check runs)."""
    steps = api.api(inst.settings, f"builds/{build['buildid']}/steps")["steps"]
    for child in triggered_builds(api.reader(inst.settings), build["buildid"]):
        if child["builderid"] != build["builderid"]:
            steps += api.api(inst.settings, f"builds/{child['buildid']}/steps")["steps"]
    return {step["name"]: step for step in steps}


def promote(inst: Installation, version: str) -> None:
    users = dict(
        line.split(":")[:2]
        for line in inst.settings.read_secret(inst.settings.auth.users_secret).splitlines()
    )
    master = api.Master(inst.settings.web_url)
    master.login("releaser", users["releaser"])
    brid = master.force(
        "promote",
        "promote",
        package="snowbird",
        version=version,
        from_dist="snowbird-staging",
        to_dist="snowbird",
        reason="test",
    )
    build = master.follow(brid)
    assert result_name(build["results"]) == "SUCCESS", api.describe(build)


@pytest.fixture(scope="module")
def published(inst):
    """A good push: install, smoke and purge pass (production is empty: no upgrade yet), and
    the version is published; it is then promoted to production."""
    build = inst.push(message="A good push")
    assert result_name(build["results"]) == "SUCCESS", api.describe(build)
    check = steps_of(inst, build)["install-check"]
    assert check["results"] == 0
    assert check["state_string"].startswith("install check: install, purge, smoke passed")
    version = build["properties"]["package_version"][0]
    assert f"Version: {version}\n" in inst.index("snowbird-staging")
    promote(inst, version)
    return version


def assert_fails_at_the_install_check(
    inst: Installation,
    build: dict,
    known: set[Path],
    staging_before: str,
    reason: str,
    subject: str = "install-check failed",
) -> None:
    assert result_name(build["results"]) == "FAILURE", api.describe(build)
    steps = steps_of(inst, build)
    check = steps["install-check"]
    assert check["results"] == 2
    assert reason in check["state_string"]
    # nothing is published: no publish step ran, and staging serves what it served
    assert not any(name.startswith("publish") for name in steps)
    assert inst.index("snowbird-staging") == staging_before
    # the failure mail names the install check and shows what failed
    sha = build["revision"][:7]
    mail = mail_about(inst.mail_dir, known, sha)
    assert mail["Subject"] == f"[snowbird] main FAILURE {sha}: {subject}", mail["Subject"]
    text = mailsink.text_of(mail, "plain")
    assert "install-check" in text
    assert reason in text


def test_a_postinst_that_exits_1_fails_the_build_and_publishes_nothing(inst, published):
    postinst = (
        (demo.DEMO_SOURCE / "debian/postinst")
        .read_text()
        .replace(
            "    configure)\n",
            "    configure)\n        echo 'snowbird: cannot configure (a test)' >&2\n"
            "        exit 1\n",
            1,
        )
    )
    assert "cannot configure" in postinst
    known, staging = inst.mails(), inst.index("snowbird-staging")
    try:
        build = inst.push("debian/postinst", postinst, "A postinst that fails")
    finally:
        inst.restore("debian/postinst")  # for the next tests' pushes, whatever happens here
    assert_fails_at_the_install_check(
        inst, build, known, staging, "the postinst of snowbird failed (exit status 1)"
    )
    text = mailsink.text_of(mail_about(inst.mail_dir, known, build["revision"][:7]), "plain")
    assert "snowbird: cannot configure (a test)" in text  # the script's own output


def test_a_package_that_fails_the_smoke_command_fails_the_build(inst, published):
    # the package forgets a module that the smoke command needs (the postinst does not)
    rules = (
        (demo.DEMO_SOURCE / "debian/rules")
        .read_text()
        .replace(
            "\t/usr/bin/python3 debian/finish-venv debian/snowbird /opt/venvs/snowbird\n",
            "\t/usr/bin/python3 debian/finish-venv debian/snowbird /opt/venvs/snowbird\n"
            "\trm -r $(VENV)/lib/python3*/site-packages/snowbird/server.py "
            "$(VENV)/lib/python3*/site-packages/snowbird/__pycache__\n",
            1,
        )
    )
    assert "server.py" in rules
    known, staging = inst.mails(), inst.index("snowbird-staging")
    try:
        build = inst.push("debian/rules", rules, "A package without its server module")
    finally:
        inst.restore("debian/rules")
    assert_fails_at_the_install_check(
        inst,
        build,
        known,
        staging,
        "the smoke command failed",
        subject="install-check still failing",
    )
    text = mailsink.text_of(mail_about(inst.mail_dir, known, build["revision"][:7]), "plain")
    assert "ModuleNotFoundError: No module named 'snowbird.server'" in text


def test_a_good_push_checks_the_upgrade_from_production(inst, published):
    build = inst.push(message="A good push after the broken ones")
    assert result_name(build["results"]) == "SUCCESS", api.describe(build)
    check = steps_of(inst, build)["install-check"]
    assert check["state_string"].startswith(
        "install check: install, purge, upgrade, smoke passed"
    ), check["state_string"]
    log = api.api(inst.settings, f"steps/{check['stepid']}/logs")["logs"][0]
    chunks = api.api(inst.settings, f"logs/{log['logid']}/contents")["logchunks"]
    content = "".join(chunk["content"] for chunk in chunks)
    assert "upgrade: from snowbird in snowbird to the new .debs" in content
    assert "PASS: Installation, upgrade and purging tests." in content
    version = build["properties"]["package_version"][0]
    assert f"Version: {version}\n" in inst.index("snowbird-staging")
    assert f"Version: {published}\n" in inst.index("snowbird")


ESCAPE = """#!/usr/bin/python3
# leaves its chroot the classic way (root of the namespace may chroot), then tries to write
import os
os.makedirs("/escape", exist_ok=True)
here = os.open("/", os.O_RDONLY)
os.chroot("/escape")
os.fchdir(here)
for _ in range(40):
    os.chdir("..")
os.chroot(".")
for path in {paths!r}:
    try:
        open(path, "w").write("x")
        print("WROTE", path)
    except OSError as exc:
        print("REFUSED", path, exc.strerror)
"""


def test_a_postinst_out_of_its_chroot_writes_nothing_on_the_machine(inst):
    """The tool itself, as the build user: a package whose postinst breaks out of the chroot
    (the namespace's root may chroot) can write neither the build user's cache nor /tmp."""
    from ops import setup

    cache = setup.BUILD_CACHE / "conveyor-install-check-escape-test"
    # the build user's own cache and worker directory (writable for it outside), and /tmp
    targets = [
        str(cache),
        str(inst.settings.state_dir / "workers" / "build" / "escaped"),
        "/tmp/conveyor-install-check-escaped",
    ]
    with tempfile.TemporaryDirectory(dir="/srv/conveyor-tests") as tmp:
        os.chmod(tmp, 0o755)
        root = Path(tmp) / "pkg"
        (root / "DEBIAN").mkdir(parents=True)
        (root / "DEBIAN" / "control").write_text(
            "Package: escape-test\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@e.x>\n"
            "Description: leaves its chroot\n test\n"
        )
        (root / "DEBIAN" / "postinst").write_text(ESCAPE.format(paths=targets))
        (root / "DEBIAN" / "postinst").chmod(0o755)
        deb = Path(tmp) / "escape-test.deb"
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-b", str(root), str(deb)],
            check=True,
            capture_output=True,
        )
        deb.chmod(0o644)
        tool = inst.settings.state_dir / "workers" / "build" / "bin" / "conveyor-install-check"
        proc = subprocess.run(
            [
                "runuser",
                "-u",
                setup.BUILD_USER,
                "--",
                "env",
                "-i",
                "PATH=/usr/bin:/bin",
                f"XDG_CACHE_HOME={setup.BUILD_CACHE}",
                f"HOME={tmp}",
                str(tool),
                str(deb),
            ],
            capture_output=True,
            text=True,
        )
    out = proc.stdout
    assert f"REFUSED {targets[0]} Read-only file system" in out, out[-3000:]
    assert f"REFUSED {targets[1]} Read-only file system" in out, out[-3000:]
    assert not os.path.exists(targets[0]) and not os.path.exists(targets[1])
    assert not os.path.exists(targets[2])  # written in the namespace's own /tmp, gone with it
    # and piuparts still saw what the package left behind
    assert "FAILED" in out and "/escape/" in out
