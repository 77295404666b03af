"""worker/bin/conveyor-chroot-build leaves no chroot behind.

Each build writes its chroot's upper layer (what it installs and builds) into memory
(/dev/shm). A chroot left by a failed build, or by a build killed when its step was stopped or
its worker went down, stays there until the machine reboots: when each build unpacked a whole
base (about 600 MB), a few dozen of them filled this machine's memory, and every service on it
then failed (workers could not start, the masters refused connections). Here a small package of
our own is built for real, as the build user: a failing build leaves nothing, what a killed
build left is removed by the next build, and a build's rules run as root in the chroot without
network."""

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

SBUILD = ROOT / "worker" / "bin" / "conveyor-chroot-build"

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
    path = Path(tempfile.mkdtemp(prefix="conveyor-chroot-build-test-", dir="/srv"))
    os.chmod(path, 0o755)
    (path / "tmp").mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def source_package(work: Path, name: str, build: str, probe: str = "") -> Path:
    """A native source package whose build runs BUILD (a shell line; `probe`: debian/probe, a
    shell script it may run); returns its .dsc."""
    tree = work / name
    (tree / "debian" / "source").mkdir(parents=True)
    (tree / "debian" / "probe").write_text(probe)
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


def chroot_build(base: Path, work: Path, dsc: Path, **popen) -> subprocess.Popen:
    env = {
        "HOME": str(work),
        "XDG_CACHE_HOME": str(setup.BUILD_CACHE),  # the bases unpacked, as the workers' own
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "CONVEYOR_CHROOTS": str(base.parent),
        "CONVEYOR_BUILD_TMPDIR": str(work / "tmp"),
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
    hanging = chroot_build(
        base,
        work,
        source_package(work, "hangs", "touch started; sleep 300"),
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while not list((work / "tmp").glob("conveyor-chroot-build.*/upper/build/pkg/started")):
        assert hanging.poll() is None, hanging.stdout.read()
        assert time.monotonic() < deadline, "the build never got its chroot"
        time.sleep(0.5)
    time.sleep(3)
    os.killpg(hanging.pid, signal.SIGKILL)
    hanging.wait(timeout=30)
    (left,) = [p for p in (work / "tmp").glob("conveyor-chroot-build.*") if p.is_dir()]
    assert list(left.glob("upper/build/pkg"))  # the killed build's chroot, left behind
    old = time.time() - 120  # (a minute is the grace for a build that just took its lock)
    os.utime(f"{left}.lock", (old, old))

    # the next build on this host: it fails, and removes the chroot the killed one left
    failing = chroot_build(base, work, source_package(work, "fails", "false"))
    output, _ = failing.communicate(timeout=600)
    assert failing.returncode != 0, output
    assert f"removing {left}, left by a build that was killed" in output
    assert "the build failed at build" in output, output[-3000:]
    assert list((work / "tmp").iterdir()) == [], (
        "a chroot (or its lock) is left in the build's temporary directory"
    )


# what debian/rules can do in the chroot: run as its root (chown to any user), and reach neither
# the network (a port listening on this host) nor the host's files (the test's own directory),
# nor write the source package's directory, mounted read-only (no remount: no CAP_SYS_ADMIN)
PROBE = """set -u
echo "PROBE uid=$(id -u)"
touch owned && chown 1234:5678 owned && echo "PROBE chown=$(stat -c %u:%g owned)"
python3 -c 'import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
    print("PROBE host port: reached")
except OSError as exc:
    print("PROBE host port:", type(exc).__name__)' "$1"
if [ -e "$2" ]; then echo "PROBE host files: seen"; else echo "PROBE host files: unseen"; fi
python3 -c 'import ctypes
ctypes.CDLL(None).mount(b"none", b"/in", None, 32 | 4096, None)  # MS_REMOUNT | MS_BIND, rw'
if touch /in/planted 2>/dev/null; then echo "PROBE /in: written"
else echo "PROBE /in: read-only"; fi
"""


def test_the_rules_run_as_root_without_network_or_the_hosts_files(base, work):
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    dsc = source_package(work, "probes", f"sh debian/probe {port} {work}", probe=PROBE)
    build = chroot_build(base, work, dsc)
    output, _ = build.communicate(timeout=600)
    listener.close()
    assert build.returncode == 0, output[-3000:]
    probes = [line for line in output.splitlines() if line.startswith("PROBE ")]
    assert probes == [
        "PROBE uid=0",
        "PROBE chown=1234:5678",
        "PROBE host port: ConnectionRefusedError",
        "PROBE host files: unseen",
        "PROBE /in: read-only",
    ], output[-3000:]
    assert not (work / "planted").exists()
    # the results beside the .dsc, the build user's
    (deb,) = work.glob("leftover_1.0_all.deb")
    assert deb.stat().st_uid == int(
        subprocess.run(["id", "-u", setup.BUILD_USER], capture_output=True, text=True).stdout
    )
    assert list((work / "tmp").iterdir()) == []
