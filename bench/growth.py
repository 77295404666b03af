"""Benchmark: publish and promote time as a distribution grows. Prints a table.

    .venv/bin/python bench/growth.py [--sizes 10,100,1000]

A fresh installation (like bench/pipeline.py; the install check off, as in the integration
tests). For each size N, staging and production are first filled up to N versions of the demo
package: tiny .debs made with dpkg-deb (versions 1.0.0~fill<i>, below every CI version),
imported with the installation's own aptly (its config and signing key) as a snapshot merged
`-no-remove` into each distribution's published one, switched to signed, and recorded in its
history — the state as many earlier publishes and promotions leave it, only faster. Then a real
signed push (webhook → CI build → publish build → the version in staging's `Packages`) and a
real promotion of that version to production (a force of the `promote` scheduler, as
bin/conveyor promote does) are timed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conveyor import release  # noqa: E402
from conveyor.results import result_name  # noqa: E402
from ops import api  # noqa: E402
from ops import demo  # noqa: E402
from ops import github  # noqa: E402
from ops import services  # noqa: E402
from ops import setup  # noqa: E402
from tests.integration.helpers import TEST_ROOT  # noqa: E402
from tests.integration.helpers import traversable  # noqa: E402
from tests.integration.helpers import write_pipeline  # noqa: E402

FILL = "1.0.0~fill{:05d}"


def fill_deb(workdir: Path, package: str, i: int) -> Path:
    """A tiny .deb of `package`, version FILL(i): a control file and one small file."""
    version = FILL.format(i)
    deb = workdir / "debs" / f"{package}_{version}_amd64.deb"
    if deb.exists():
        return deb
    root = workdir / "roots" / f"{i:05d}"
    (root / "DEBIAN").mkdir(parents=True, exist_ok=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: {version}\nArchitecture: amd64\n"
        "Maintainer: Conveyor bench <bench@example.com>\n"
        "Description: filler for bench/growth.py\n"
    )
    (root / "usr" / "share" / "doc" / package).mkdir(parents=True, exist_ok=True)
    (root / "usr" / "share" / "doc" / package / "fill").write_text(f"{version}\n")
    deb.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "--build", str(root), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


def published_snapshot(settings, distribution: str) -> str:
    out = setup.aptly(settings, "publish", "show", "-json", distribution, ".").stdout
    return json.loads(out)["Sources"][0]["Name"]


def fill(
    settings, workdir: Path, package: str, distribution: str, indices: range, round_no: int
) -> None:
    """Versions FILL(i) for i in indices into the distribution: import, merge -no-remove into
    the published snapshot, publish switch (signed), history — what a publish does."""
    if not indices:
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        debs = list(pool.map(lambda i: fill_deb(workdir, package, i), indices))
    incoming = workdir / f"incoming-{distribution}-{round_no}"
    incoming.mkdir()
    for deb in debs:
        (incoming / deb.name).symlink_to(deb)
    scratch = f"bench-fill-{distribution}-{round_no}"
    part = release.snapshot_name(f"{distribution}+fill", datetime.now(UTC), "bench-fill", round_no)
    setup.aptly(settings, "repo", "create", scratch)
    setup.aptly(settings, "repo", "add", scratch, str(incoming))
    setup.aptly(settings, "snapshot", "create", part, "from", "repo", scratch)
    setup.aptly(settings, "repo", "drop", "-force", scratch)
    current = published_snapshot(settings, distribution)
    when = datetime.now(UTC)
    snapshot = release.snapshot_name(distribution, when, "bench-fill", round_no)
    setup.aptly(settings, "snapshot", "merge", "-no-remove", snapshot, current, part)
    setup.aptly(settings, "snapshot", "drop", "-force", part)
    setup.aptly(
        settings,
        "publish",
        "switch",
        "-batch",
        *settings.repository.signing_args(),
        distribution,
        ".",
        snapshot,
    )
    history = settings.history_dir / f"{distribution}.jsonl"
    entries = release.parse_history(history.read_text())
    with history.open("a") as f:
        f.write(
            release.history_line(
                {
                    "n": len(entries) + 1,
                    "when": when.isoformat(timespec="seconds"),
                    "distribution": distribution,
                    "action": "fill",
                    "snapshot": snapshot,
                    "previous_snapshot": current,
                    "package": package,
                    "version": f"{FILL.format(indices[0])}..{FILL.format(indices[-1])}",
                    "from": None,
                    "who": "bench/growth.py",
                    "build": None,
                }
            )
        )


def watch(master: api.Master, builder: str, after: int, timeout: float = 900) -> tuple:
    """Poll (every 0.1 s) for the first build of `builder` numbered above `after`: (when it was
    first seen running, when it was seen finished, the build), monotonic clock. Buildbot's own
    timestamps are whole seconds: too coarse for a step of a few seconds."""
    builderid = master.builder_id(builder)
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        builds = master.get(
            f"builders/{builderid}/builds?number__gt={after}&order=number&limit=1&property=*"
        )["builds"]
        if builds:
            seen = seen or time.monotonic()
            if builds[0]["complete"]:
                return seen, time.monotonic(), builds[0]
        time.sleep(0.1)
    raise RuntimeError(f"no finished build of {builder} after #{after} within {timeout} s")


def measure(settings, project, master: api.Master, checkout: Path, n: int, run: int) -> dict:
    """One signed push to staging and the promotion of its version to production, timed."""
    before = github.git(checkout, "rev-parse", "HEAD")
    after = github.commit_file(
        checkout, "GROWTH.txt", f"size {n}, run {run}\n", f"growth bench at {n}, run {run}"
    )
    github.push_branch(checkout, project)
    ci_after = master.last_build_number(project.ci_builder)
    publish_after = master.last_build_number("publish")
    started = time.monotonic()
    status, body = github.deliver(
        settings, "push", github.push_payload(checkout, project, before, after)
    )
    if status not in (200, 202):
        raise RuntimeError(f"the hook refused the push: {status} {body}")
    publish_seen, publish_done, _ = watch(master, "publish", publish_after)
    _, ci_done, build = watch(master, project.ci_builder, ci_after)
    if result_name(build["results"]) != "SUCCESS":
        build["url"] = settings.web_url
        build["steps"] = master.get(f"builds/{build['buildid']}/steps")["steps"]
        raise RuntimeError(f"the CI build failed:\n{api.describe(build)}")
    version = build["properties"]["package_version"][0]
    staging = project.upload_to
    production = project.path[project.path.index(staging) + 1]
    assert version in api.listed_versions(settings, staging, project.packages[0])

    promote_after = master.last_build_number("promote")
    requested = time.monotonic()
    master.force(
        "promote",
        "promote",
        package=project.packages[0],
        version=version,
        from_dist=staging,
        to_dist=production,
        reason=f"growth bench at {n}",
    )
    _, promote_done, promoted = watch(master, "promote", promote_after)
    if result_name(promoted["results"]) != "SUCCESS":
        raise RuntimeError(f"the promotion of {version} failed: {promoted}")
    assert version in api.listed_versions(settings, production, project.packages[0])
    return {
        "push": ci_done - started,
        "publish": publish_done - publish_seen,
        "promote": promote_done - requested,
    }


def main() -> int:
    services.stopped_by_signals()  # a killed bench stops what it started
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="pushes and promotions per size (the table shows medians)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a key of [projects.snowbird], value in TOML syntax",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    overrides = dict(item.split("=", 1) for item in args.set)
    TEST_ROOT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-growth-", dir=TEST_ROOT) as tmp:
        base = Path(tmp)
        settings = write_pipeline(base, **overrides)
        traversable(base)
        project = settings.projects[0]
        setup.prepare(settings)
        services.start(settings)
        try:
            master = api.Master(settings.web_url)
            master.login(*api.credentials(settings))
            checkout = demo.ensure_demo_repo(settings, project)
            staging = project.upload_to
            production = project.path[project.path.index(staging) + 1]
            filled = {staging: 0, production: 0}
            rows = []
            for round_no, n in enumerate(sizes, start=1):
                t = time.monotonic()
                for dist in (staging, production):
                    listed = api.listed_versions(settings, dist, project.packages[0])
                    need = max(0, n - len(listed))
                    fill(
                        settings,
                        base,
                        project.packages[0],
                        dist,
                        range(filled[dist], filled[dist] + need),
                        round_no,
                    )
                    filled[dist] += need
                there = {
                    d: len(api.listed_versions(settings, d, project.packages[0]))
                    for d in (staging, production)
                }
                print(
                    f"filled to {there[staging]} versions in {staging}, {there[production]} "
                    f"in {production} in {time.monotonic() - t:.1f} s",
                    flush=True,
                )
                runs = []
                for run in range(1, args.repeat + 1):
                    runs.append(measure(settings, project, master, checkout, n, run))
                    print(f"  {runs[-1]}", flush=True)
                rows.append(
                    (there, {key: statistics.median(run[key] for run in runs) for key in runs[0]})
                )
        finally:
            services.stop(settings)
    print()
    print(
        "install check off (write_pipeline's default, as in the integration tests); "
        f"n={args.repeat} per size (medians); load average at the end "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(
        f"{'versions already there':>22} | {'publish s':>9} | {'promote s':>9} | "
        f"{'push → staging s':>16}"
    )
    for there, f in rows:
        print(
            f"{there[staging]:>22} | {f['publish']:9.1f} | {f['promote']:9.1f} | {f['push']:16.1f}"
        )
    print(
        "(versions already there: in staging before the push; production holds as many "
        "before the promotion.\n publish s: the publish build, fetch → verified in Packages; "
        "promote s: force request → promote build finished, verified in Packages;\n "
        "push → staging s: webhook → the CI build finished, its publish included)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
