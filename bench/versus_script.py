"""Benchmark: Conveyor against a bare shell script doing the same work, in one run. Prints figures.

    .venv/bin/python bench/versus_script.py [--runs 3]

Alternately, run by run: a signed push to Conveyor (webhook → the version listed in staging's
`Packages`, verified over HTTP by the publish build), and bench/bare-pipeline.sh (fresh clone, venv,
pip install, pytest under coverage with its report and HTML, a CI changelog entry,
`dpkg-buildpackage -b`, aptly import + merge + signed publish switch, the version in `Packages`).
Prints both medians, their ratio, and Conveyor's own overhead: the time from webhook to staging not
spent in the project's own commands (clone, virtualenv, install, tests, coverage, package build,
install check) or in aptly's (current, import, snapshot, publish).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conveyor.results import result_name  # noqa: E402
from ops import api  # noqa: E402
from ops import demo  # noqa: E402
from ops import github  # noqa: E402
from ops import services  # noqa: E402
from ops import setup  # noqa: E402
from ops.progress import triggered_builds  # noqa: E402
from tests.integration.helpers import TEST_ROOT  # noqa: E402
from tests.integration.helpers import traversable  # noqa: E402
from tests.integration.helpers import write_pipeline  # noqa: E402

# the steps that run the project's own commands, and aptly's: the same work as the script's
PROJECT_WORK = {"git", "virtualenv", "install", "tests", "coverage", "lint", "deb",
                "install check"}
APTLY_WORK = {"current", "import", "snapshot", "publish"}


def step_seconds(steps: list[dict], names: set[str]) -> float:
    return sum((s["complete_at"] or 0) - (s["started_at"] or 0) for s in steps
               if s["name"] in names and s.get("started_at") and s.get("complete_at"))


def work_seconds(master: api.Master, build: dict) -> tuple[float, float]:
    """(project's own commands, aptly) of a CI build and the publish it triggered."""
    own = step_seconds(build["steps"], PROJECT_WORK)
    aptly = 0.0
    for child in triggered_builds(master, build["buildid"]):
        aptly += step_seconds(master.get(f"builds/{child['buildid']}/steps")["steps"],
                              APTLY_WORK)
    return own, aptly


def bare_repository(base: Path, settings, key: str) -> tuple[Path, str]:
    """An aptly root of the script's own, signed with the same key, one distribution `bare`."""
    root = base / "bare-aptly"
    root.mkdir()
    config = base / "bare-aptly.conf"
    config.write_text(json.dumps({"rootDir": str(root), "architectures": ["amd64", "all"],
                                  "gpgProvider": "gpg", "skipContentsPublishing": True}))
    env = setup.gpg_env(settings)
    for argv in (["snapshot", "create", "bare-empty", "empty"],
                 ["publish", "snapshot", "-batch", f"-gpg-key={key}",
                  "-architectures=amd64,all", "-distribution=bare", "-component=main",
                  "bare-empty", "."]):
        subprocess.run(["aptly", f"-config={config}", *argv], env=env, check=True,
                       capture_output=True)
    return config, "bare"


def fingerprint(settings) -> str:
    out = subprocess.run(["gpg", "--list-secret-keys", "--with-colons"],
                         env=setup.gpg_env(settings), capture_output=True, text=True).stdout
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr"))


def median(values: list[float]) -> str:
    return (f"median {statistics.median(values):5.1f} s  min {min(values):5.1f}  "
            f"max {max(values):5.1f}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    TEST_ROOT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-versus-", dir=TEST_ROOT) as tmp:
        base = Path(tmp)
        settings = write_pipeline(base)
        traversable(base)
        project = settings.projects[0]
        setup.prepare(settings)
        services.start(settings)
        try:
            config, dist = bare_repository(base, settings, fingerprint(settings))
            checkout = demo.ensure_demo_repo(settings, project)
            master = api.Master(settings.web_url)
            conveyor, bare, overhead, parts = [], [], [], []
            for n in range(1, args.runs + 1):
                before = github.git(checkout, "rev-parse", "HEAD")
                (checkout / "BENCH.txt").write_text(f"run {n}\n")
                github.git(checkout, "add", "BENCH.txt")
                github.git(checkout, "commit", "-qm", f"bench run {n}")
                github.push_branch(checkout, project)
                head = github.git(checkout, "rev-parse", "HEAD")

                build = github.push_and_wait(settings, project, checkout, before=before)
                assert result_name(build["results"]) == "SUCCESS", api.describe(build)
                conveyor.append(build["seconds"])
                own, aptly = work_seconds(master, build)
                overhead.append(build["seconds"] - own - aptly)
                parts.append((own, aptly))

                started = time.monotonic()
                subprocess.run([str(ROOT / "bench" / "bare-pipeline.sh"), project.clone_url,
                                head, str(n), str(config), str(settings.repository.gnupg_home),
                                fingerprint(settings), dist], check=True,
                               env=setup.gpg_env(settings), capture_output=True)
                bare.append(time.monotonic() - started)
                print(f"run {n}: Conveyor {conveyor[-1]:5.1f} s (own commands {own:4.1f} s, "
                      f"aptly {aptly:4.1f} s, overhead {overhead[-1]:4.1f} s)   "
                      f"bare script {bare[-1]:5.1f} s", flush=True)
        finally:
            services.stop(settings)
    print()
    print(f"push → staging, Conveyor        {median(conveyor)}  (n={len(conveyor)})")
    print(f"the same work, bare script      {median(bare)}  (n={len(bare)})")
    print(f"ratio Conveyor / bare script    {statistics.median(conveyor) / statistics.median(bare):5.2f}")
    print(f"Conveyor's own overhead         {median(overhead)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
