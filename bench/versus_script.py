"""Benchmark: Conveyor against a bare shell script doing the same work, in one run. Prints figures.

    .venv/bin/python bench/versus_script.py [--runs 3] [--targets bookworm,trixie] [--steps]
        [--postgres]

Alternately, run by run: a signed push to Conveyor (webhook → staging's `Packages`, fetched over
HTTP by the bench every 50 ms as apt would, lists the push's commit), and bench/bare-pipeline.sh:
the same commands with the same tools (the build worker's conveyor-sandbox, uv and
conveyor-chroot-build), as the same user, one after another: fresh clone; per target release a fresh
venv, install, pytest under coverage with its report and HTML; per release a CI changelog entry,
the source package and the clean build in a chroot of the release; aptly import + merge + signed
publish switch; the versions in `Packages`. With `--targets`, the demo has those target releases
(a team that runs two releases); without, the worker's own.
Prints both medians, their ratio, and Conveyor's own overhead: the time from webhook to staging not
spent in the longest chain of the same work. Conveyor runs each release's tests (clone,
virtualenv, install, tests, coverage, lint: the first release's in the CI build, each later one's
in a tests build of its own) beside the package builds (one per release: clone, version, package
build, install check), all side by side, then aptly's commands (current, import, snapshot,
publish): the chain is the longest of those builds, plus aptly. The work is timed by the worker
(each command's `elapsedTime`, to the microsecond).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conveyor import settings as settings_module  # noqa: E402
from conveyor import targets as conveyor_targets  # noqa: E402
from conveyor.results import result_name  # noqa: E402
from conveyor.served import index_url  # noqa: E402
from ops import api  # noqa: E402
from ops import demo  # noqa: E402
from ops import github  # noqa: E402
from ops import services  # noqa: E402
from ops import setup  # noqa: E402
from ops.progress import triggered_builds  # noqa: E402
from tests.integration.helpers import TEST_ROOT  # noqa: E402
from tests.integration.helpers import traversable  # noqa: E402
from tests.integration.helpers import write_pipeline  # noqa: E402
from tests.integration.postgres import postgres_server  # noqa: E402

# the steps that run the project's own commands, and aptly's: the same work as the script's. A CI
# build runs the tests while its package build (steps/package.py) runs beside it; the publish
# comes after both.
CI_WORK = {"git", "virtualenv", "install", "tests", "coverage", "lint"}
PACKAGE_WORK = {"git", "version", "deb", "install-check"}
APTLY_WORK = {"current", "import", "snapshot", "publish"}
ELAPSED = re.compile(r"^helapsedTime=([0-9.]+)$", re.M)


def command_seconds(master: api.Master, step: dict) -> float:
    """The time the step's commands ran on the worker (their `elapsedTime`, to the microsecond;
    Buildbot's step times are whole seconds)."""
    total = 0.0
    for entry in master.get(f"steps/{step['stepid']}/logs")["logs"]:
        if entry["type"] == "s":
            for chunk in master.get(f"logs/{entry['logid']}/contents")["logchunks"]:
                total += sum(float(t) for t in ELAPSED.findall(chunk["content"]))
    return total


def work_seconds(master: api.Master, build: dict, names: set[str]) -> float:
    """The commands' time of the build's steps named in `names`, a target release's included
    (`tests-trixie`, `deb-bookworm`)."""
    steps = master.get(f"builds/{build['buildid']}/steps")["steps"]
    return sum(command_seconds(master, s) for s in steps if unsuffixed(s["name"]) in names)


def unsuffixed(step: str) -> str:
    """A step's name without its target release (`tests-trixie` → `tests`)."""
    name, _, release = step.rpartition("-")
    return name if name and release in conveyor_targets.SUFFIXES else step


def work(master: api.Master, build: dict, project) -> tuple[float, float, float]:
    """(the longest of the tests builds' commands: CI's own and the later target releases', which
    run side by side; the longest package build's (they run side by side too); the publish's
    aptly commands)."""
    tests = work_seconds(master, build, CI_WORK)
    package = aptly = 0.0
    packages = {b for _, b in project.package_builders}
    testing = {b for _, b in project.tests_builders}
    for child in triggered_builds(master, build["buildid"]):
        name = master.get(f"builders/{child['builderid']}")["builders"][0]["name"]
        if name in packages:
            package = max(package, work_seconds(master, child, PACKAGE_WORK))
        elif name in testing:
            tests = max(tests, work_seconds(master, child, CI_WORK))
        else:
            aptly += work_seconds(master, child, APTLY_WORK)
    return tests, package, aptly


def push_until_listed(
    settings, project, checkout: Path, before: str, timeline: bool = False
) -> tuple[float, dict]:
    """Deliver the push; the seconds until staging's `Packages`, fetched over HTTP as apt does
    (every 50 ms), lists a package of its commit (its `Conveyor-Commit`); and the CI build, once
    finished. With `timeline`, the builds' steps are read at each poll too, and when each was
    first seen begun and done is printed (to a poll: the steps' own times are whole seconds);
    the reads load the master, so such a run's figures are not the bench's."""
    after = github.git(checkout, "rev-parse", "HEAD")
    master = api.reader(settings)
    number = master.last_build_number(project.ci_builder)
    newest = master.get("builds?order=-buildid&limit=1")["builds"]
    first_new = (newest[0]["buildid"] + 1) if newest else 1
    # every release's component changes in one publish switch: the last one's index will do
    index = index_url(settings, project.upload_to, (project.targets or (None,))[-1])
    seen: dict[tuple[int, str], list] = {}
    started = time.monotonic()
    status, body = github.deliver(
        settings, "push", github.push_payload(checkout, project, before, after)
    )
    assert status in (200, 202), (status, body)
    deadline = started + 600
    while f"Conveyor-Commit: {after}" not in (api.fetch_text(index) or ""):
        assert time.monotonic() < deadline, f"{after[:12]} never reached {project.upload_to}"
        if timeline:
            observe(master, first_new, seen, time.monotonic() - started)
        time.sleep(0.05)
    listed = time.monotonic() - started
    if timeline:
        for (buildid, step), (begun, done) in sorted(seen.items(), key=lambda kv: kv[1][0]):
            print(
                f"    {begun:6.2f} – {done if done is not None else listed:6.2f} s  "
                f"build {buildid} {step}"
            )
        print(f"    {listed:6.2f} s  listed in {project.upload_to}")
    return listed, master.wait_for_build(project.ci_builder, number)


def observe(master: api.Master, first: int, seen: dict, now: float) -> None:
    """Note when each step of the builds from `first` on was first seen begun and done."""
    for build in master.get(f"builds?buildid__ge={first}")["builds"]:
        seen.setdefault((build["buildid"], "(build)"), [now, None])
        for step in master.get(f"builds/{build['buildid']}/steps")["steps"]:
            if step.get("started_at") is None:
                continue
            entry = seen.setdefault((build["buildid"], step["name"]), [now, None])
            if step.get("complete") and entry[1] is None:
                entry[1] = now
        if build.get("complete") and seen[(build["buildid"], "(build)")][1] is None:
            seen[(build["buildid"], "(build)")][1] = now


def print_steps(master: api.Master, build: dict) -> None:
    """Each build of the push (CI, package, publish): its steps, when they began (whole seconds
    after the CI build began) and their commands' time."""
    start = build["started_at"]
    for each in [build, *triggered_builds(master, build["buildid"])]:
        name = master.get(f"builders/{each['builderid']}")["builders"][0]["name"]
        print(f"    {name} #{each['number']}")
        for step in master.get(f"builds/{each['buildid']}/steps")["steps"]:
            if step.get("started_at") is not None and not step.get("hidden"):
                took = (step.get("complete_at") or step["started_at"]) - step["started_at"]
                print(
                    f"      +{step['started_at'] - start:3d} s  {step['name'][:28]:28s} "
                    f"{took:3d} s   commands {command_seconds(master, step):6.2f} s"
                )


def bare_repository(base: Path, settings, key: str) -> tuple[Path, str]:
    """An aptly root of the script's own, signed with the same key, one distribution `bare`."""
    root = base / "bare-aptly"
    root.mkdir()
    config = base / "bare-aptly.conf"
    config.write_text(
        json.dumps(
            {
                "rootDir": str(root),
                "architectures": ["amd64", "all"],
                "gpgProvider": "gpg",
                "skipContentsPublishing": True,
            }
        )
    )
    env = setup.gpg_env(settings)
    for argv in (
        ["snapshot", "create", "bare-empty", "empty"],
        [
            "publish",
            "snapshot",
            "-batch",
            f"-gpg-key={key}",
            "-architectures=amd64,all",
            "-distribution=bare",
            "-component=main",
            "bare-empty",
            ".",
        ],
    ):
        subprocess.run(
            ["aptly", f"-config={config}", *argv], env=env, check=True, capture_output=True
        )
    return config, "bare"


def fingerprint(settings) -> str:
    out = subprocess.run(
        ["gpg", "--list-secret-keys", "--with-colons"],
        env=setup.gpg_env(settings),
        capture_output=True,
        text=True,
    ).stdout
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr"))


def on_postgres(settings, pg):
    """The installation's pipeline.toml names the server (its password: a secret file)."""
    settings.file.write_text(
        settings.file.read_text().replace("[conveyor]\n", f'[conveyor]\ndb_url = "{pg.url}"\n', 1)
    )
    settings = settings_module.load(settings.file)
    setup.write_secret(settings, "db-password", pg.password)
    return settings


def median(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):5.1f} s  min {min(values):5.1f}  max {max(values):5.1f}"
    )


def main() -> int:
    services.stopped_by_signals()  # a killed bench stops what it started
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--targets",
        default="",
        help="the demo's target releases, comma-separated (e.g. bookworm,trixie); default: none, "
        "the worker's own release",
    )
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="print when each step was seen begun and done, to a poll (the polls load the "
        "master: a diagnosis, not the bench's figures)",
    )
    parser.add_argument(
        "--steps", action="store_true", help="print each build's steps and their times, run by run"
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="the master's database on a PostgreSQL server (Debian's, started "
        "for the run as tests/integration/test_postgres.py does; root), "
        "as a team's master has it; default: SQLite, as `make run`",
    )
    args = parser.parse_args()
    TEST_ROOT.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="bench-versus-", dir=TEST_ROOT) as tmp,
        contextlib.ExitStack() as stack,
    ):
        base = Path(tmp)
        releases = [r for r in args.targets.split(",") if r]
        if problem := conveyor_targets.problem(tuple(releases)):
            parser.error(problem)
        overrides = {"targets": json.dumps(releases)} if releases else {}
        settings = write_pipeline(base, **overrides)
        if args.postgres:
            settings = on_postgres(settings, stack.enter_context(postgres_server(base / "pg")))
        traversable(base)
        project = settings.projects[0]
        setup.prepare(settings)
        services.start(settings)
        try:
            config, dist = bare_repository(base, settings, fingerprint(settings))
            checkout = demo.ensure_demo_repo(settings, project)
            master = api.reader(settings)
            conveyor, bare, overhead = [], [], []
            for n in range(1, args.runs + 1):
                before = github.git(checkout, "rev-parse", "HEAD")
                (checkout / "BENCH.txt").write_text(f"run {n}\n")
                github.git(checkout, "add", "BENCH.txt")
                github.git(checkout, "commit", "-qm", f"bench run {n}")
                github.push_branch(checkout, project)
                head = github.git(checkout, "rev-parse", "HEAD")

                listed, build = push_until_listed(
                    settings, project, checkout, before, timeline=args.timeline
                )
                assert result_name(build["results"]) == "SUCCESS", api.describe(build)
                conveyor.append(listed)
                tests, package, aptly = work(master, build, project)
                # the longest chain of the same work: tests and package side by side, then aptly
                overhead.append(listed - max(tests, package) - aptly)
                if args.steps:
                    print_steps(master, build)

                started = time.monotonic()
                subprocess.run(
                    [
                        str(ROOT / "bench" / "bare-pipeline.sh"),
                        project.clone_url,
                        head,
                        str(n),
                        str(config),
                        str(settings.repository.gnupg_home),
                        fingerprint(settings),
                        dist,
                        str(setup.worker_dir(settings, project.workers[0]) / "bin"),
                        str(base / "bare-builder"),
                        *(f"{r}:{conveyor_targets.version('', r)}" for r in releases),
                    ],
                    check=True,
                    env=setup.gpg_env(settings),
                    capture_output=True,
                )
                bare.append(time.monotonic() - started)
                print(
                    f"run {n}: Conveyor {conveyor[-1]:5.1f} s (tests side {tests:4.1f} s, "
                    f"longest package build {package:4.1f} s, aptly {aptly:4.1f} s, overhead "
                    f"{overhead[-1]:4.1f} s)   "
                    f"bare script {bare[-1]:5.1f} s",
                    flush=True,
                )
        finally:
            services.stop(settings)
    print()
    print(f"push → staging, Conveyor        {median(conveyor)}  (n={len(conveyor)})")
    print(f"the same work, bare script      {median(bare)}  (n={len(bare)})")
    ratio = statistics.median(conveyor) / statistics.median(bare)
    print(f"ratio Conveyor / bare script    {ratio:5.2f}")
    print(f"Conveyor's own overhead         {median(overhead)}")
    print(f"the master's database           {settings.db_url.split(':', 1)[0]}")
    print("target releases                 " + (", ".join(releases) or "none (the worker's own)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
