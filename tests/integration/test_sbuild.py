"""worker/bin/conveyor-sbuild leaves no chroot behind.

Each build unpacks a chroot of its release (about 600 MB) into memory (/dev/shm). A chroot left
by a failed build, or by a build killed when its step was stopped or its worker went down, stays
there until the machine reboots: a few dozen of them filled this machine's memory, and every
service on it then failed (workers could not start, the masters refused connections). Here a
small package of our own is built for real, as the build user: a failing build leaves nothing,
and what a killed build left is removed by the next build."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from ops import chroots
from ops import setup
from tests.integration.helpers import ROOT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds as the build user: needs root"),
]

SBUILD = ROOT / "worker" / "bin" / "conveyor-sbuild"

CONTROL = """\
Source: leftover
Section: misc
Priority: optional
Maintainer: Conveyor tests <tests@conveyor.invalid>
Build-Depends: debhelper-compat (= 13)
Standards-Version: 4.6.2
Rules-Requires-Root: no

Package: leftover
Architecture: all
Description: a package whose build fails or hangs, as its rules say
 Used by Conveyor's tests.
"""


@pytest.fixture(scope="module")
def base():
    setup.ensure_build_user()
    return chroots.ensure_base(chroots.CHROOTS, chroots.machine_release())


@pytest.fixture
def work():
    path = Path(tempfile.mkdtemp(prefix="conveyor-sbuild-test-", dir="/srv"))
    os.chmod(path, 0o755)
    (path / "tmp").mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def source_package(work: Path, name: str, build: str) -> Path:
    """A native source package whose build runs BUILD (a shell line); returns its .dsc."""
    tree = work / name
    (tree / "debian" / "source").mkdir(parents=True)
    (tree / "debian" / "control").write_text(CONTROL)
    (tree / "debian" / "source" / "format").write_text("3.0 (native)\n")
    (tree / "debian" / "changelog").write_text(
        "leftover (1.0) unstable; urgency=medium\n\n  * Test.\n\n"
        " -- Conveyor tests <tests@conveyor.invalid>  Fri, 04 Dec 2026 12:00:00 +0000\n"
    )
    (tree / "debian" / "rules").write_text(
        f"#!/usr/bin/make -f\n%:\n\tdh $@\n\noverride_dh_auto_build:\n\t{build}\n"
    )
    (tree / "debian" / "rules").chmod(0o755)
    subprocess.run(["dpkg-source", "--build", name], cwd=work, check=True, capture_output=True)
    subprocess.run(["chown", "-R", f"{setup.BUILD_USER}:{setup.BUILD_USER}", str(work)], check=True)
    return work / "leftover_1.0.dsc"


def sbuild(base: Path, work: Path, dsc: Path, **popen) -> subprocess.Popen:
    env = {
        "HOME": str(work),
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "CONVEYOR_CHROOTS": str(base.parent),
        "CONVEYOR_SBUILD_TMPDIR": str(work / "tmp"),
    }
    return subprocess.Popen(
        [
            "runuser",
            "-u",
            setup.BUILD_USER,
            "--",
            "env",
            *(f"{k}={v}" for k, v in env.items()),
            str(SBUILD),
            chroots.machine_release(),
            str(dsc),
        ],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,
    )


def test_no_chroot_outlives_a_failed_or_killed_build(base, work):
    # a build stopped the way Buildbot stops a step: its process group killed
    hanging = sbuild(base, work, source_package(work, "hangs", "sleep 300"), start_new_session=True)
    deadline = time.monotonic() + 240
    while not list((work / "tmp").glob("conveyor-sbuild.*/chroot.*/build")):
        assert hanging.poll() is None, hanging.stdout.read()
        assert time.monotonic() < deadline, "the build never got its chroot"
        time.sleep(0.5)
    time.sleep(3)
    os.killpg(hanging.pid, signal.SIGKILL)
    hanging.wait(timeout=30)
    (left,) = [p for p in (work / "tmp").glob("conveyor-sbuild.*") if p.is_dir()]
    assert list(left.glob("chroot.*/usr/bin"))  # the killed build's chroot, left behind
    old = time.time() - 120  # (a minute is the grace for a build that just took its lock)
    os.utime(f"{left}.lock", (old, old))

    # the next build on this host: it fails, and removes the chroot the killed one left
    failing = sbuild(base, work, source_package(work, "fails", "false"))
    output, _ = failing.communicate(timeout=600)
    assert failing.returncode != 0, output
    assert f"removing {left}, left by a build that was killed" in output
    assert "the build failed at build" in output, output[-3000:]
    assert list((work / "tmp").iterdir()) == [], (
        "a chroot (or its lock) is left in the build's temporary directory"
    )
