"""The sandbox's promise that nothing the project's code starts outlives its step.

Buildbot stops a step's command (a stop button, a timeout, the package build cancelled after a
failing test) by killing its process group: everything the code started inside the sandbox must
die with it, or a `debian/rules` left running goes on writing into the build directory, and the
next build's checkout fails to clean it ("failed to remove …: Directory not empty"). And when the
command returns, nothing it left behind may go on changing the build directory while the
unsandboxed worker reads it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.helpers import ROOT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (make system)"),
]

SANDBOX = ROOT / "worker" / "bin" / "conveyor-sandbox"

# a build step's command that starts work of its own in the background, as make and pip do
COMMAND = """
sh -c 'sleep 3; echo "still running after the stop" > late' &
echo started > started
sleep 30
"""


def test_stopping_a_sandboxed_command_stops_everything_it_started(tmp_path: Path):
    # as Buildbot's worker runs a command: in a process group of its own
    proc = subprocess.Popen(
        [str(SANDBOX), str(tmp_path), "--", "sh", "-c", COMMAND],
        cwd=tmp_path,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "started").exists():
            assert time.monotonic() < deadline, "the sandboxed command never started"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # as the worker stops a step (interruptSignal KILL)
        proc.wait(timeout=10)
        time.sleep(4)
        assert not (tmp_path / "late").exists(), (
            "a process the stopped command started went on writing into the build directory"
        )
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_nothing_the_command_started_outlives_it(tmp_path: Path):
    # debian/rules leaving a process behind: after dpkg-buildpackage returns, the unsandboxed
    # worker reads the build directory (which .debs were built) and uploads them; a process
    # still running in there could swap a .deb for a link to the worker's own secrets
    subprocess.run(
        [
            str(SANDBOX),
            str(tmp_path),
            "--",
            "sh",
            "-c",
            "(sleep 2; ln -s /etc/hostname swapped) & echo built",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=30,
    )
    time.sleep(3)
    assert not os.path.lexists(tmp_path / "swapped"), (
        "a process the sandboxed command left behind changed the build directory afterwards"
    )


def test_the_checkouts_git_directory_is_read_only_inside(tmp_path: Path):
    # the next build's checkout runs git there outside the sandbox, as the worker's user: a
    # hook or a core.fsmonitor written by the tests would run with the worker's secrets
    checkout = tmp_path / "build"
    checkout.mkdir()
    subprocess.run(["git", "init", "-q", str(checkout)], check=True)
    config = (checkout / ".git" / "config").read_text()
    proc = subprocess.run(
        [
            str(SANDBOX),
            str(tmp_path),
            "--",
            "sh",
            "-c",
            "echo 'cat /etc/hostname' > .git/hooks/post-checkout; "
            "printf '[core]\\n\\tfsmonitor = cat /etc/hostname\\n' >> .git/config; "
            "echo built > built.txt",
        ],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert "Read-only file system" in proc.stderr, proc.stderr
    assert not (checkout / ".git" / "hooks" / "post-checkout").exists()
    assert (checkout / ".git" / "config").read_text() == config
    assert (checkout / "built.txt").read_text() == "built\n"  # the rest stays writable


def run_sandboxed(
    builddir: Path, script: str, *options: str, **env: str
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SANDBOX), *options, str(builddir), "--", "sh", "-c", script],
        cwd=builddir,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
        check=False,
    )


def test_the_command_sees_its_build_directory_and_the_system_only(tmp_path: Path):
    # another installation's worker password on the same host, and Conveyor's own checkout
    # (whose pytest.ini a project's pytest would climb to): neither exists inside
    other = Path("/var/lib/conveyor-sandbox-test-other-installation")
    other.mkdir(exist_ok=True)
    try:
        (other / "worker-password").write_text("secret\n")
        build = tmp_path / "build"
        build.mkdir()
        proc = run_sandboxed(
            build,
            f"cat {other}/worker-password; cat {ROOT}/pytest.ini; ls /root /srv /opt; "
            "python3 -c 'print(42)'; echo ok > inside; echo $XDG_CACHE_HOME",
        )
        assert "secret" not in proc.stdout and "[pytest]" not in proc.stdout, proc.stdout
        assert "No such file or directory" in proc.stderr
        assert "42\n" in proc.stdout  # the system is there, read-only
        assert (build / "inside").read_text() == "ok\n"

        assert proc.stdout.strip().endswith(f"{build}/.cache")  # a cache of its own
    finally:
        shutil.rmtree(other)


def test_nothing_beside_the_build_directory_can_be_written():
    # (not below /tmp, which is the sandbox's own, writable)
    import tempfile

    parent = Path(tempfile.mkdtemp(prefix="conveyor-sandbox-test-", dir="/srv"))
    try:
        build = parent / "build"
        build.mkdir()
        proc = run_sandboxed(build, f"echo escaped > {parent}/beside; echo kept > kept")
        assert "Read-only file system" in proc.stderr, proc.stderr
        assert not (parent / "beside").exists()
        assert (build / "kept").read_text() == "kept\n"
    finally:
        shutil.rmtree(parent)


def test_without_network_only_a_loopback_of_its_own(tmp_path: Path):
    import socket

    with socket.socket() as server:  # the master's, the repository's, the mail sink's ports
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        connect = (
            f'python3 -c \'import socket; socket.create_connection(("127.0.0.1", {port}),'
            ' timeout=5); print("connected")\''
        )
        inside = run_sandboxed(tmp_path, connect)
        assert "connected" not in inside.stdout
        assert "ConnectionRefused" in inside.stderr, inside.stderr
        online = run_sandboxed(tmp_path, connect, "--network")  # dependency installation
        assert "connected" in online.stdout, online.stderr
        # the tests' own loopback works: a server and a client inside
        own = run_sandboxed(
            tmp_path,
            "python3 -c 'import socket; s=socket.socket(); "
            's.bind(("127.0.0.1", 0)); s.listen(); '
            'socket.create_connection(s.getsockname()); print("own")\'',
        )
        assert "own" in own.stdout, own.stderr


def test_without_bubblewrap_the_command_does_not_run(tmp_path: Path):
    proc = subprocess.run(
        ["/bin/bash", str(SANDBOX), str(tmp_path), "--", "/bin/sh", "-c", "echo ran > ran"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/nonexistent"},
        check=False,
    )
    assert proc.returncode == 3
    assert "apt-get install bubblewrap" in proc.stderr
    assert not (tmp_path / "ran").exists()


def test_a_target_release_runs_on_that_releases_python_still_sealed_off(tmp_path: Path):
    """--release: the system is the release's (the clean builds' base, unpacked by the trusted
    side), not the host's: a project's tests get each target's Python. The rest is the same
    sandbox: no network but with --network (through the host's resolver and certificates)."""
    from ops import chroots

    other = "trixie" if chroots.machine_release() != "trixie" else "bookworm"
    chroots.ensure_base(chroots.CHROOTS, other)  # and its tree (made once; the tests share it)
    wanted = {"trixie": "3.13", "bookworm": "3.11"}[other]
    script = (
        "python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'; "
        ". /etc/os-release; echo $VERSION_CODENAME; "
        "python3 -m venv venv && venv/bin/python -c 'import sys; print(sys.base_prefix)'"
    )
    proc = run_sandboxed(tmp_path, script, "--release", other)
    assert proc.stdout.split() == [wanted, other, "/usr"], proc.stderr
    # the virtualenv is bound to that release's Python, which the host does not have
    assert os.readlink(tmp_path / "venv" / "bin" / "python3").startswith("/usr/bin/python3")
    assert f"python{wanted}" in os.listdir(tmp_path / "venv" / "lib")
    # sealed off as on the host's system: nothing to connect to without --network
    fetch = (
        "python3 -c 'import urllib.request; "
        'urllib.request.urlopen("http://deb.debian.org/", timeout=10); print("fetched")\''
    )
    assert "fetched" not in run_sandboxed(tmp_path, fetch, "--release", other).stdout
    online = run_sandboxed(tmp_path, fetch, "--network", "--release", other)
    assert "fetched" in online.stdout, online.stderr
    # a release the host has no system of: refused, saying what to do, nothing run
    missing = run_sandboxed(tmp_path, "echo ran > ran", "--release", "forky")
    assert missing.returncode == 3 and "python -m ops chroots" in missing.stderr
    assert not (tmp_path / "ran").exists()
