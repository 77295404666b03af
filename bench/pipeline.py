"""Benchmark: how long the pipeline takes, end to end, on this machine. Prints figures.

    .venv/bin/python bench/pipeline.py [--pushes 3]

A fresh installation in a temporary directory on free loopback ports (like the integration
tests): set-up, start, N signed pushes (webhook → package listed in staging), N promotions
(request → installable from production: apt-get update shows it as the candidate), a rollback.
Needs root for nothing but apt-get's lists (it installs nothing).
"""

from __future__ import annotations

import argparse
import statistics
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
from tests.integration.helpers import AptClient  # noqa: E402
from tests.integration.helpers import traversable  # noqa: E402
from tests.integration.helpers import write_pipeline  # noqa: E402


def figure(name: str, seconds: list[float]) -> None:
    if len(seconds) == 1:
        print(f"{name:<44} {seconds[0]:7.1f} s")
    else:
        print(
            f"{name:<44} median {statistics.median(seconds):6.1f} s  "
            f"min {min(seconds):5.1f}  max {max(seconds):5.1f}  (n={len(seconds)})"
        )


def main() -> int:
    services.stopped_by_signals()  # a killed bench stops what it started
    parser = argparse.ArgumentParser()
    parser.add_argument("--pushes", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp:
        base = Path(tmp)
        settings = write_pipeline(base)
        traversable(base)
        project = settings.projects[0]
        t = time.monotonic()
        setup.prepare(settings)
        figure("set-up (keys, repository, basedirs)", [time.monotonic() - t])
        t = time.monotonic()
        services.start(settings)
        figure("start (web server, master, worker)", [time.monotonic() - t])
        try:
            checkout = demo.ensure_demo_repo(settings, project)
            pushes, versions = [], []
            for n in range(args.pushes):
                before = github.git(checkout, "rev-parse", "HEAD")
                (checkout / "BENCH.txt").write_text(f"push {n}\n")
                github.git(checkout, "add", "BENCH.txt")
                github.git(checkout, "commit", "-qm", f"bench push {n}")
                github.git(checkout, "push", "-q", "origin", "HEAD:refs/heads/main")
                build = github.push_and_wait(settings, project, checkout, before=before)
                assert result_name(build["results"]) == "SUCCESS", build["url"]
                pushes.append(build["seconds"])
                versions.append(build["properties"]["package_version"][0])
            figure("webhook → package in staging (verified)", pushes)

            master = api.Master(settings.web_url)
            master.login(*api.credentials(settings))
            apt = AptClient(base / "apt", settings.repository.url, project.path[-1])
            promotions = []
            for version in versions:
                t = time.monotonic()
                build = master.follow(
                    master.force(
                        "promote",
                        "promote",
                        package=project.packages[0],
                        version=version,
                        from_dist=project.upload_to,
                        to_dist=project.path[-1],
                        reason="bench",
                    )
                )
                assert NAMES[build["results"]] == "SUCCESS", build["url"]
                apt.update()
                assert apt.candidate(project.packages[0]) == version
                promotions.append(time.monotonic() - t)
            figure("promote request → apt candidate in production", promotions)

            t = time.monotonic()
            build = master.follow(
                master.force(
                    "rollback", "rollback", distribution=project.path[-1], state="", reason="bench"
                )
            )
            assert NAMES[build["results"]] == "SUCCESS", build["url"]
            apt.update()
            figure("rollback request → previous version candidate", [time.monotonic() - t])
            if len(versions) > 1:
                assert apt.candidate(project.packages[0]) == versions[-2]
        finally:
            services.stop(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
