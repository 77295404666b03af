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
    proc = subprocess.Popen([str(SANDBOX), str(tmp_path), "--", "sh", "-c", COMMAND],
                            cwd=tmp_path, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "started").exists():
            assert time.monotonic() < deadline, "the sandboxed command never started"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # as the worker stops a step (interruptSignal KILL)
        proc.wait(timeout=10)
        time.sleep(4)
        assert not (tmp_path / "late").exists(), \
            "a process the stopped command started went on writing into the build directory"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_nothing_the_command_started_outlives_it(tmp_path: Path):
    # debian/rules leaving a process behind: after dpkg-buildpackage returns, the unsandboxed
    # worker reads the build directory (which .debs were built) and uploads them; a process
    # still running in there could swap a .deb for a link to the worker's own secrets
    subprocess.run([str(SANDBOX), str(tmp_path), "--", "sh", "-c",
                    "(sleep 2; ln -s /etc/hostname swapped) & echo built"],
                   cwd=tmp_path, check=True, capture_output=True, timeout=30)
    time.sleep(3)
    assert not os.path.lexists(tmp_path / "swapped"), \
        "a process the sandboxed command left behind changed the build directory afterwards"


def test_the_checkouts_git_directory_is_read_only_inside(tmp_path: Path):
    # the next build's checkout runs git there outside the sandbox, as the worker's user: a
    # hook or a core.fsmonitor written by the tests would run with the worker's secrets
    checkout = tmp_path / "build"
    checkout.mkdir()
    subprocess.run(["git", "init", "-q", str(checkout)], check=True)
    config = (checkout / ".git" / "config").read_text()
    proc = subprocess.run(
        [str(SANDBOX), str(tmp_path), "--", "sh", "-c",
         "echo 'cat /etc/hostname' > .git/hooks/post-checkout; "
         "printf '[core]\\n\\tfsmonitor = cat /etc/hostname\\n' >> .git/config; "
         "echo built > built.txt"],
        cwd=checkout, capture_output=True, text=True, timeout=30, check=False)
    assert "Read-only file system" in proc.stderr, proc.stderr
    assert not (checkout / ".git" / "hooks" / "post-checkout").exists()
    assert (checkout / ".git" / "config").read_text() == config
    assert (checkout / "built.txt").read_text() == "built\n"  # the rest stays writable
