"""Benchmark: a burst of signed pushes, as fast as they can be sent. Prints a table.

    .venv/bin/python bench/burst.py [--pushes 50] [--threads 4] [--build-workers 2]

A fresh installation (like bench/pipeline.py; the install check off, as in the integration
tests), then N commits on the demo repository's branch, each on top of the one before, the
branch pushed once, and N GitHub `push` events (before/after: one commit each) delivered from a
few threads at once. Prints the hook's latency (the HTTP round trip of each delivery, p50/p99),
the time to drain (first delivery → the last version listed in staging's `Packages`), whether
every push got a build of its own (one CI build per head, each its own version, all in
staging, none lost) and the master's resident memory (VmRSS) before and after.

One Buildbot worker runs one build of a builder at a time, whatever its max_builds (a cap, not a
count): the burst's CI builds run side by side only on several build workers, here
`[workers.build-2]` … on this same machine (--build-workers).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import math
import os
import statistics
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
from tests.integration.helpers import TEST_ROOT  # noqa: E402
from tests.integration.helpers import traversable  # noqa: E402
from tests.integration.helpers import write_pipeline  # noqa: E402


def extra_build_workers(count: int) -> str:
    """TOML for build workers beyond the first ([workers.build] of write_pipeline)."""
    return "".join(f"\n[workers.build-{n}]\n" for n in range(2, count + 1))


def make_commits(checkout: Path, project, count: int) -> list[tuple[str, str]]:
    """`count` commits, each on top of the one before, the branch pushed once: the
    (before, after) pair of each push, in order."""
    pairs = []
    before = github.git(checkout, "rev-parse", "HEAD")
    for n in range(count):
        after = github.commit_file(checkout, "BURST.txt", f"push {n}\n", f"burst push {n}")
        pairs.append((before, after))
        before = after
    github.push_branch(checkout, project)
    return pairs


def deliver_all(
    settings, project, checkout: Path, pairs: list[tuple[str, str]], threads: int
) -> list[float]:
    """Every push event, built first, then sent from `threads` threads at once; returns each
    delivery's round trip (s). A refused delivery stops the run."""
    payloads = [github.push_payload(checkout, project, before, after) for before, after in pairs]

    def send(payload: dict) -> float:
        started = time.monotonic()
        status, body = github.deliver(settings, "push", payload)
        took = time.monotonic() - started
        if status not in (200, 202):
            raise RuntimeError(f"the hook refused push {payload['after'][:12]}: {status} {body}")
        return took

    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(send, payloads))


def staging(settings, project) -> list[str]:
    return api.listed_versions(settings, project.upload_to, project.packages[0])


def ci_builds(master: api.Master, project, after_number: int) -> list[dict]:
    builder = master.builder_id(project.ci_builder)
    return master.get(
        f"builders/{builder}/builds?number__gt={after_number}"
        "&order=number&property=got_revision&property=package_version"
    )["builds"]


def prop(build: dict, name: str):
    value = (build.get("properties") or {}).get(name)
    return value[0] if value else None


def failure_tail(master: api.Master, build: dict, lines: int = 15) -> str:
    """The last lines of the first failed step's first log."""
    step = next((s for s in build["steps"] if s.get("results") not in (0, 3, None)), None)
    if step is None:
        return ""
    logs = master.get(f"steps/{step['stepid']}/logs")["logs"]
    if not logs:
        return ""
    text = master.request(f"api/v2/logs/{logs[0]['logid']}/raw")
    return "\n".join(f"    {line}" for line in str(text).splitlines()[-lines:])


def rss_kib(settings) -> int | None:
    pid = services.read_pid(services.pid_files(settings)["master"])
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def spread(seconds: list[float]) -> str:
    if not seconds:
        return "-"
    return f"median {statistics.median(seconds):.0f} s ({min(seconds):.0f}–{max(seconds):.0f})"


def percentile(values: list[float], p: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def main() -> int:
    services.stopped_by_signals()  # a killed bench stops what it started
    parser = argparse.ArgumentParser()
    parser.add_argument("--pushes", type=int, default=50)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--build-workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a key of [projects.snowbird], value in TOML syntax",
    )
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.set)
    TEST_ROOT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-burst-", dir=TEST_ROOT) as tmp:
        base = Path(tmp)
        settings = write_pipeline(base, extra=extra_build_workers(args.build_workers), **overrides)
        traversable(base)
        project = settings.projects[0]
        setup.prepare(settings)
        services.start(settings)
        try:
            return burst(settings, project, args)
        finally:
            services.stop(settings)


def burst(settings, project, args) -> int:
    master = api.reader(settings)
    checkout = demo.ensure_demo_repo(settings, project)
    number = master.last_build_number(project.ci_builder)
    rss_before = rss_kib(settings)
    pairs = make_commits(checkout, project, args.pushes)
    heads = [after for _, after in pairs]

    started = time.monotonic()
    latencies = deliver_all(settings, project, checkout, pairs, args.threads)
    sent = time.monotonic() - started

    # drained: every push's build finished, and every version listed in staging
    deadline = started + args.timeout
    drained_at = None
    while time.monotonic() < deadline:
        builds = ci_builds(master, project, number)
        done = [b for b in builds if b["complete"]]
        versions = {prop(b, "package_version") for b in done} - {None}
        if len(done) >= len(pairs) and any(result_name(b["results"]) != "SUCCESS" for b in done):
            break  # a build failed: no use waiting
        if len(done) >= len(pairs) and len(versions) >= len(pairs):
            listed = set(staging(settings, project))
            if versions <= listed:
                drained_at = time.monotonic()
                break
        time.sleep(0.5)
    drain = (drained_at or time.monotonic()) - started
    rss_after = rss_kib(settings)

    builds = ci_builds(master, project, number)
    results = [result_name(b["results"]) for b in builds]
    revisions = [prop(b, "got_revision") for b in builds]
    versions = [prop(b, "package_version") for b in builds]
    listed = set(staging(settings, project))
    ci_times = [b["complete_at"] - b["started_at"] for b in builds if b["complete_at"]]
    publish_id = master.builder_id("publish")
    publishes = master.get(f"builders/{publish_id}/builds?order=number&complete=true")["builds"]
    publish_times = [b["complete_at"] - b["started_at"] for b in publishes]
    own_build = sorted(revisions) == sorted(heads)
    failed = [f"#{b['number']} {r}" for b, r in zip(builds, results, strict=True) if r != "SUCCESS"]
    lost = set(heads) - set(revisions)
    unlisted = [v for v in versions if v not in listed]
    ok = (
        bool(drained_at)
        and own_build
        and not failed
        and not unlisted
        and len(set(versions)) == len(pairs)
    )

    for build in builds:
        if result_name(build["results"]) != "SUCCESS":
            build["url"] = (
                f"{settings.web_url}#/builders/{build['builderid']}/builds/{build['number']}"
            )
            build["steps"] = master.get(f"builds/{build['buildid']}/steps")["steps"]
            print(api.describe(build))
            print(failure_tail(master, build))
    print()
    print(
        f"burst of {len(pairs)} signed pushes, {args.threads} sending threads, "
        f"{args.build_workers} build worker(s); install check off "
        "(write_pipeline's default, as in the integration tests)"
        + "".join(f"; {item}" for item in args.set)
        + f"; load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    rows = [
        (
            "hook latency p50 / p99",
            f"{statistics.median(latencies) * 1000:.0f} ms / "
            f"{percentile(latencies, 99) * 1000:.0f} ms",
        ),
        ("all deliveries sent in", f"{sent:.1f} s"),
        (
            "time to drain (first delivery → last version in staging)",
            f"{drain:.1f} s" + ("" if drained_at else " (NOT drained: timed out)"),
        ),
        ("per push, drained", f"{drain / len(pairs):.1f} s"),
        ("CI build, each (Buildbot's whole seconds)", spread(ci_times)),
        (
            "publish build, first 10 / last 10",
            f"{spread(publish_times[:10])} / {spread(publish_times[-10:])}",
        ),
        (
            "CI builds",
            f"{len(builds)} for {len(pairs)} pushes, {results.count('SUCCESS')} "
            "succeeded" + (f"; not: {', '.join(failed)}" if failed else ""),
        ),
        (
            "each push its own build (got_revision = its head)",
            "yes" if own_build else f"NO ({len(lost)} heads without a build)",
        ),
        ("distinct versions", f"{len(set(versions) - {None})}"),
        ("lost pushes", f"{len(lost)}"),
        ("versions in staging's Packages", f"{len(versions) - len(unlisted)} of {len(versions)}"),
        (
            "master RSS before / after the burst",
            f"{(rss_before or 0) / 1024:.0f} MiB / {(rss_after or 0) / 1024:.0f} MiB",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
