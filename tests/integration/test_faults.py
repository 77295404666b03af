"""Faults end in a known state: the master killed mid-publish, aptly's database held by another
process for a while (waited for), the master's database lost. Real master, workers, aptly and
web server.

Needs root (the build worker's own user) and `make system`.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import time
import urllib.request

import pytest

from conveyor import debformats
from conveyor.results import result_name
from ops import api
from ops import demo
from ops import github
from ops import services
from ops import setup
from tests.integration.helpers import running_installation
from tests.integration.helpers import session

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="the build worker's own user needs root"),
]


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    with running_installation("faults") as settings:
        yield settings


@pytest.fixture(scope="module")
def checkout(installation):
    return demo.ensure_demo_repo(installation, installation.projects[0])


def staging_stanzas(settings) -> list[dict]:
    url = f"{settings.repository.url}dists/snowbird-staging/main/binary-amd64/Packages"
    with urllib.request.urlopen(url, timeout=30) as response:
        return debformats.parse_packages_stanzas(response.read().decode())


def new_commit(settings, checkout, text: str) -> tuple[str, str]:
    """(before, after) of a new commit pushed to the demo's bare repository."""
    before = github.git(checkout, "rev-parse", "HEAD")
    (checkout / "FAULTS.txt").write_text(text)
    github.git(checkout, "add", "FAULTS.txt")
    github.git(checkout, "commit", "-qm", text)
    github.push_branch(checkout, settings.projects[0])
    return before, github.git(checkout, "rev-parse", "HEAD")


def deliver_push(settings, checkout, before: str, after: str) -> None:
    status, body = github.deliver(
        settings, "push", github.push_payload(checkout, settings.projects[0], before, after)
    )
    assert status in (200, 202), body


def wait_until_settled(settings, timeout: float = 240) -> None:
    """No build running and no request waiting."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            running = api.api(settings, "builds?complete=false")["builds"]
            waiting = api.api(settings, "buildrequests?complete=false")["buildrequests"]
        except api.ApiError:  # the master is still starting
            running = waiting = [None]
        if not running and not waiting:
            return
        time.sleep(1)
    raise AssertionError(f"builds still running after {timeout} s: {running} {waiting}")


def kill_master_once(settings, builder: str, after: int, step: str | None = None) -> None:
    """Once `builder` has a build numbered above `after` (that has begun `step`, if given): the
    master killed (SIGKILL), then started again; returns when nothing runs or waits any more."""
    builderid = api.builder_id(settings, builder)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        builds = api.api(settings, f"builders/{builderid}/builds?number__gt={after}")["builds"]
        steps = (
            api.api(settings, f"builds/{builds[0]['buildid']}/steps")["steps"]
            if builds and step
            else []
        )
        if builds and (step is None or any(s["name"] == step and s["started_at"] for s in steps)):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"no build of {builder} {'reached ' + step if step else 'started'}")
    pid = int((settings.master_dir / "twistd.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    while services.alive(pid):
        time.sleep(0.1)
    services.start_master(settings)
    wait_until_settled(settings)


def test_the_master_killed_mid_publish_publishes_the_commit_once(installation, checkout):
    settings = installation
    before, after = new_commit(settings, checkout, "killed mid-publish")
    publish_before = api.last_build_number(settings, "publish")
    # what a publish killed between its snapshot and its switch leaves: a snapshot nobody uses
    setup.aptly(settings, "snapshot", "create", "snowbird-staging-killed-debris", "empty")
    deliver_push(settings, checkout, before, after)
    kill_master_once(settings, "publish", publish_before)  # the publish build has started

    builds = api.api(settings, "builds")["builds"]
    assert all(b["complete"] for b in builds)  # nothing left "building"
    from_commit = [
        s["Version"] for s in staging_stanzas(settings) if s.get("Conveyor-Commit") == after
    ]
    assert len(from_commit) == 1, from_commit  # one version of the commit, not two

    # the retention build at the master's start dropped the debris, and only that
    retention_builds = api.api(
        settings, "builders/{}/builds".format(api.builder_id(settings, "retention"))
    )["builds"]
    assert retention_builds and all(
        result_name(b["results"]) == "SUCCESS" for b in retention_builds
    ), retention_builds
    left = set(setup.aptly(settings, "snapshot", "list", "-raw").stdout.split())
    assert "snowbird-staging-killed-debris" not in left
    published = {
        p["Sources"][0]["Name"]
        for p in json.loads(setup.aptly(settings, "publish", "list", "-json").stdout)
        if p.get("Sources")
    }
    recorded = {
        json.loads(line)["snapshot"]
        for path in settings.history_dir.glob("*.jsonl")
        for line in path.read_text().splitlines()
        if line.strip()
    }
    assert published <= left and left <= published | recorded, left - published - recorded


def test_a_locked_aptly_database_is_waited_for_and_the_commit_still_published(
    installation, checkout
):
    # another aptly process (a backup, an operator) holds the database for 40 s while the
    # commit's publish runs: the publish tries again, and the commit reaches staging without a
    # new push
    settings = installation
    before, after = new_commit(settings, checkout, "while aptly is locked")
    project = settings.projects[0]
    ci_before = api.last_build_number(settings, project.ci_builder)
    publish_before = api.last_build_number(settings, "publish")
    with open(settings.repository.aptly_root / "db" / "LOCK", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # what another aptly process holds
        deliver_push(settings, checkout, before, after)
        builderid = api.builder_id(settings, "publish")
        deadline = time.monotonic() + 300
        while not api.api(settings, f"builders/{builderid}/builds?number__gt={publish_before}")[
            "builds"
        ]:
            assert time.monotonic() < deadline, "no publish started"
            time.sleep(0.5)
        time.sleep(40)
    build = api.wait_for_build(settings, project.ci_builder, ci_before, timeout=300)
    assert result_name(build["results"]) == "SUCCESS", api.describe(build)
    assert any(s.get("Conveyor-Commit") == after for s in staging_stanzas(settings))

    (publish,) = api.api(settings, f"builders/{builderid}/builds?number__gt={publish_before}")[
        "builds"
    ]
    logs = ""
    for step in api.api(settings, f"builds/{publish['buildid']}/steps")["steps"]:
        for log in api.api(settings, f"steps/{step['stepid']}/logs")["logs"]:
            chunks = api.api(settings, f"logs/{log['logid']}/contents")["logchunks"]
            logs += "".join(chunk["content"] for chunk in chunks)
    assert "aptly's database is locked by another process: trying again in" in logs


def test_a_lost_master_database_comes_back_with_start(installation, checkout, capsys):
    settings = installation
    pid = int((settings.master_dir / "twistd.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    while services.alive(pid):
        time.sleep(0.2)
    (settings.master_dir / "state.sqlite").unlink()

    services.start(settings)
    assert "the master's database is missing: made a fresh one" in capsys.readouterr().out

    before, after = new_commit(settings, checkout, "after the database was lost")
    build = github.push_and_wait(settings, settings.projects[0], checkout, before=before)
    assert result_name(build["results"]) == "SUCCESS", api.describe(build)
    assert any(s.get("Conveyor-Commit") == after for s in staging_stanzas(settings))


def test_the_master_killed_mid_package_builds_the_package_once_more(installation, checkout):
    """Both requests run again after the restart: the CI build's (which starts a package build of
    its own) and its old package build's, which nobody would publish. That one is cancelled."""
    settings = installation
    project = settings.projects[0]
    before, after = new_commit(settings, checkout, "killed mid-package")
    package_id = api.builder_id(settings, project.package_builders[0][1])
    package_before = api.last_build_number(settings, project.package_builders[0][1])
    deliver_push(settings, checkout, before, after)
    kill_master_once(settings, project.package_builders[0][1], package_before, step="deb")

    from_commit = [
        s["Version"] for s in staging_stanzas(settings) if s.get("Conveyor-Commit") == after
    ]
    assert len(from_commit) == 1, from_commit
    after_restart = api.api(
        settings, f"builders/{package_id}/builds?number__gt={package_before + 1}"
    )["builds"]
    results = sorted(result_name(b["results"]) for b in after_restart)
    # the CI build's new package build succeeded; the old one, run again, was cancelled
    assert results.count("SUCCESS") == 1, results
    assert set(results) <= {"SUCCESS", "CANCELLED"}, results


def test_promote_newest_during_a_publish_promotes_what_was_newest_when_asked(
    installation, checkout
):
    # a push's publish is running (held up: aptly's database is busy, and it holds the
    # repository's lock) when a releaser asks for "the newest of staging": the promotion, which
    # runs after the publish, takes the version staging served when it was asked for
    settings = installation
    project = settings.projects[0]
    releaser = session(settings, "releaser")
    newest = debformats.newest({s["Version"] for s in staging_stanzas(settings)})
    before, after = new_commit(settings, checkout, "published while a promotion is asked")
    ci_before = api.last_build_number(settings, project.ci_builder)
    publish_before = api.last_build_number(settings, "publish")
    builderid = api.builder_id(settings, "publish")
    with open(settings.repository.aptly_root / "db" / "LOCK", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        deliver_push(settings, checkout, before, after)
        deadline = time.monotonic() + 300
        while not api.api(settings, f"builders/{builderid}/builds?number__gt={publish_before}")[
            "builds"
        ]:
            assert time.monotonic() < deadline, "no publish started"
            time.sleep(0.5)
        brid = releaser.force(
            "promote",
            "promote",
            package="snowbird",
            version="",
            from_dist="snowbird-staging",
            to_dist="snowbird",
            reason="newest",
        )
    build = releaser.follow(brid)
    assert result_name(build["results"]) == "SUCCESS", api.describe(build)
    ci = api.wait_for_build(settings, project.ci_builder, ci_before, timeout=300)
    assert result_name(ci["results"]) == "SUCCESS", api.describe(ci)
    (publish,) = api.api(settings, f"builders/{builderid}/builds?number__gt={publish_before}")[
        "builds"
    ]
    check = next(step for step in build["steps"] if step["name"] == "check")
    assert publish["complete_at"] <= check["started_at"]  # the publish ran first (its lock)
    published = [
        s["Version"] for s in staging_stanzas(settings) if s.get("Conveyor-Commit") == after
    ]
    assert published and published[0] != newest
    assert build["properties"]["package_version"][0] == newest
    url = f"{settings.repository.url}dists/snowbird/main/binary-amd64/Packages"
    with urllib.request.urlopen(url, timeout=30) as response:
        production = response.read().decode()
    assert f"Version: {newest}\n" in production
    assert f"Version: {published[0]}\n" not in production
