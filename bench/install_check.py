"""Benchmark: how long the install check takes for the demo, warm and cold. Prints figures.

    .venv/bin/python bench/install_check.py [--pushes 3] [--cold]

A fresh installation (like the integration tests) with the install check on and the demo's
smoke command: a first push (install, smoke, purge: production is empty), its promotion to
production, then N pushes that also check the upgrade from production's version. The figure
is the step's own time (property install_check_seconds: piuparts' fresh root, install,
smoke, purge, upgrade, smoke), with the machine's cached base (warm).

--cold also times the check of one package with an empty cache of its own: the minbase made
by mmdebstrap, then the check (the machine's shared base is not touched).
Needs root (the build user and its subordinate ids, as `make run` makes them).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from conveyor.results import NAMES  # noqa: E402
from conveyor.results import result_name  # noqa: E402
from ops import api  # noqa: E402
from ops import demo  # noqa: E402
from ops import github  # noqa: E402
from ops import services  # noqa: E402
from ops import setup  # noqa: E402
from tests.integration.helpers import installation_base  # noqa: E402
from tests.integration.helpers import traversable  # noqa: E402
from tests.integration.helpers import write_pipeline  # noqa: E402

TOOL = Path(__file__).resolve().parent.parent / "worker" / "bin" / "conveyor-install-check"


def figure(name: str, seconds: list[float]) -> None:
    if len(seconds) == 1:
        print(f"{name:<56} {seconds[0]:7.1f} s")
    else:
        print(
            f"{name:<56} median {statistics.median(seconds):6.1f} s  "
            f"min {min(seconds):5.1f}  max {max(seconds):5.1f}  (n={len(seconds)})"
        )


def push(settings, project, checkout, n: int) -> dict:
    before = github.git(checkout, "rev-parse", "HEAD")
    github.git(checkout, "commit", "-q", "--allow-empty", "-m", f"bench push {n}")
    github.git(checkout, "push", "-q", "origin", "HEAD:refs/heads/main")
    build = github.push_and_wait(settings, project, checkout, before=before)
    assert result_name(build["results"]) == "SUCCESS", build["url"]
    return build


def cold(settings, build: dict) -> float:
    """The check of the build's package with an empty cache: base + check."""
    where = settings.artifacts_dir / build["properties"]["artifacts_path"][0]
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-cold-") as tmp:
        os.chmod(tmp, 0o755)
        debs = [shutil.copy(deb, tmp) for deb in where.glob("*.deb")]
        for deb in debs:
            os.chmod(deb, 0o644)
        cache = Path(tmp) / "cache"
        argv = [
            str(TOOL),
            "--cache",
            str(cache),
            "--smoke=/opt/venvs/snowbird/bin/snowbird",
            "--smoke=--version",
            *debs,
        ]
        if setup.separate_build_user():
            cache.mkdir()
            shutil.chown(cache, setup.BUILD_USER, setup.BUILD_USER)
            argv = ["runuser", "-u", setup.BUILD_USER, "--", *argv]
        t = time.monotonic()
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=tmp)
        took = time.monotonic() - t
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        if setup.separate_build_user():  # what the namespace's users own: removed inside it
            subprocess.run(["rm", "-rf", str(cache)])
        return took


def main() -> int:
    services.stopped_by_signals()  # a killed bench stops what it started
    parser = argparse.ArgumentParser()
    parser.add_argument("--pushes", type=int, default=3)
    parser.add_argument("--cold", action="store_true")
    args = parser.parse_args()
    with installation_base("bench-install-check") as base:
        settings = write_pipeline(
            base, install_check="true", smoke='["/opt/venvs/snowbird/bin/snowbird", "--version"]'
        )
        traversable(base)
        project = settings.projects[0]
        setup.prepare(settings)
        services.start(settings)
        try:
            checkout = demo.ensure_demo_repo(settings, project)
            first = push(settings, project, checkout, 0)
            figure(
                "install check: install, smoke, purge (warm)",
                [first["properties"]["install_check_seconds"][0]],
            )
            master = api.Master(settings.web_url)
            master.login(*api.credentials(settings))
            build = master.follow(
                master.force(
                    "promote",
                    "promote",
                    package=project.packages[0],
                    version=first["properties"]["package_version"][0],
                    from_dist=project.upload_to,
                    to_dist=project.path[-1],
                    reason="bench",
                )
            )
            assert NAMES[build["results"]] == "SUCCESS", build["url"]
            warm, totals = [], []
            for n in range(1, args.pushes + 1):
                build = push(settings, project, checkout, n)
                warm.append(build["properties"]["install_check_seconds"][0])
                totals.append(build["seconds"])
            figure("install check: install, smoke, purge, upgrade (warm)", warm)
            figure("webhook → package in staging, with the check", totals)
            if args.cold:
                figure("install check, cold: minbase made, then the check", [cold(settings, first)])
        finally:
            services.stop(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
