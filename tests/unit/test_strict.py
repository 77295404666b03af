"""tests/strict.py: under CI=true an integration test that skips fails, saying why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_pytest(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text(
        "from tests.strict import pytest_runtest_makereport  # noqa: F401\n"
    )
    (tmp_path / "test_needs_root.py").write_text(
        "import pytest\n\n"
        '@pytest.mark.skipif(True, reason="the build worker\'s own user needs root")\n'
        "def test_one():\n    pass\n\n"
        "def test_two():\n    pytest.skip('needs bubblewrap (make system)')\n\n"
        "def test_three():\n    assert True\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )


def test_outside_ci_a_test_that_cannot_run_is_skipped(tmp_path):
    proc = run_pytest(tmp_path, None)
    assert proc.returncode == 0, proc.stdout
    assert "1 passed, 2 skipped" in proc.stdout


def test_under_ci_a_test_that_cannot_run_fails_saying_why(tmp_path):
    proc = run_pytest(tmp_path, "true")
    assert proc.returncode == 1, proc.stdout
    # a skip at set-up (skipif) is an error, one in the test a failure: neither passes
    assert "1 failed, 1 passed, 1 error" in proc.stdout
    assert (
        "test_needs_root.py::test_one could not run under CI=true, and CI must not skip it: "
        "the build worker's own user needs root"
    ) in proc.stdout
    assert "needs bubblewrap (make system)" in proc.stdout
