"""worker/bin/conveyor-chroot-build refuses, with what to do, where it cannot build in a chroot: the
deb step's log says it (fakes on the PATH stand in for the machine's tools). And the worker's bin/
is given it (ops/setup.install_worker_tools)."""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "worker" / "bin" / "conveyor-chroot-build"


def fake_tools(where: Path, **scripts: str) -> str:
    where.mkdir()
    for name, body in scripts.items():
        (where / name).write_text(f"#!/bin/sh\n{body}\n")
        (where / name).chmod(0o755)
    return f"{where}:/usr/bin:/bin"


def run(path: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["/bin/bash", str(TOOL), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path},
        check=False,
    )


def test_without_bubblewrap_it_says_what_to_install(tmp_path):
    proc = run(f"{tmp_path}/empty", "bookworm", "x.dsc")
    assert proc.returncode == 3
    assert "apt-get install bubblewrap" in proc.stderr


def test_without_subordinate_ids_it_says_how_to_add_them(tmp_path):
    path = fake_tools(
        tmp_path / "bin", bwrap="exit 0", unshare="exit 0", id='echo "conveyor-test-nobody-$$"'
    )
    proc = run(path, "bookworm", "x.dsc")
    assert proc.returncode == 3
    assert "no subordinate ids" in proc.stderr and "usermod --add-subuids" in proc.stderr


def test_bad_usage(tmp_path):
    assert run(f"{tmp_path}/empty", "only-one").returncode == 2


def test_the_workers_bin_gets_conveyors_tools_and_loses_a_tool_conveyor_dropped(tmp_path):
    """An upgraded worker: its bin/ had conveyor-sbuild (before conveyor-chroot-build)."""
    from ops import setup

    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "uv").write_text("#!/bin/sh\n")
    basedir = tmp_path / "worker"
    (basedir / "bin").mkdir(parents=True)
    (basedir / "bin" / "conveyor-sbuild").write_text("#!/bin/sh\nsbuild\n")
    bindir = setup.install_worker_tools(basedir, venv)
    names = sorted(p.name for p in bindir.iterdir())
    assert names == sorted([p.name for p in (ROOT / "worker" / "bin").glob("conveyor-*")] + ["uv"])
    assert "conveyor-chroot-build" in names and "conveyor-sbuild" not in names
