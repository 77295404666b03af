"""Retention, end to end: with `[retention] snapshots_keep_states = 2`, two pushes give staging
three states; an admin forces the `retention` builder (nobody else may). The snapshot of
staging's first state goes, every snapshot of the last two states and every published one stays,
the published state (Packages, Release and its signatures) is byte for byte what it was, old
artifacts are gone and young ones are not, and a rollback within the window works. Buildbot's
janitor (old logs) runs too.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request

import pytest

from conveyor.results import result_name
from ops import api
from ops import demo
from ops import github
from ops import setup
from tests.integration.helpers import running_installation

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="the build worker's own user needs root"),
]

STAGING = "snowbird-staging"
DISTS = ("snowbird-development", STAGING, "snowbird")
PUBLISHED_FILES = ("Release", "Release.gpg", "InRelease", "main/binary-amd64/Packages")


@pytest.fixture(scope="module")
def installation():
    with running_installation(
        "retention", extra="[retention]\nsnapshots_keep_states = 2\n"
    ) as settings:
        yield settings


@pytest.fixture(scope="module")
def builds(installation):
    """Two pushes into staging: its states are now the empty one, then one per push."""
    project = installation.projects[0]
    checkout = demo.ensure_demo_repo(installation, project)
    found = []
    for n in range(2):
        before = github.git(checkout, "rev-parse", "HEAD")
        if n:
            github.git(checkout, "commit", "--quiet", "--allow-empty", "-m", "Second push")
            github.push_branch(checkout, project)
        build = github.push_and_wait(
            installation, project, checkout, before=before if n else github.ZERO
        )
        assert result_name(build["results"]) == "SUCCESS", api.describe(build)
        found.append(build)
    return found


def session(settings, user: str) -> api.Master:
    users = dict(
        line.split(":")[:2]
        for line in settings.read_secret(settings.auth.users_secret).splitlines()
    )
    master = api.Master(settings.web_url)
    master.login(user, users[user])
    return master


def published(settings) -> dict[str, bytes]:
    found = {}
    for dist in DISTS:
        for name in PUBLISHED_FILES:
            url = f"{settings.repository.url}dists/{dist}/{name}"
            with urllib.request.urlopen(url, timeout=30) as response:
                found[f"{dist}/{name}"] = response.read()
    return found


def snapshots(settings) -> set[str]:
    return set(setup.aptly(settings, "snapshot", "list", "-raw").stdout.split())


def history(settings, dist: str) -> list[dict]:
    return [
        json.loads(line)
        for line in (settings.history_dir / f"{dist}.jsonl").read_text().splitlines()
    ]


def test_retention_keeps_the_window_and_the_published_state(installation, builds):
    settings = installation
    staging = history(settings, STAGING)
    assert [e["action"] for e in staging] == ["create", "publish", "publish"]
    before_snapshots = snapshots(settings)
    assert {e["snapshot"] for d in DISTS for e in history(settings, d)} <= before_snapshots
    before = published(settings)
    # the first build's artifacts were made 40 days ago, the second's just now
    old = settings.artifacts_dir / "snowbird-ci" / str(builds[0]["number"])
    young = settings.artifacts_dir / "snowbird-ci" / str(builds[1]["number"])
    assert any(old.iterdir()) and any(young.iterdir())
    then = time.time() - 40 * 86400
    for path in [old, *old.rglob("*")]:
        os.utime(path, (then, then), follow_symlinks=False)

    # only admins may force it (default deny): a releaser is refused
    with pytest.raises(api.ApiError):
        session(settings, "releaser").force("retention-force", "retention", reason="no")
    admin = session(settings, "admin")
    build = admin.follow(admin.force("retention-force", "retention", reason="test"))
    assert result_name(build["results"]) == "SUCCESS", api.describe(build)
    props = {k: v for k, (v, _) in build["properties"].items()}
    assert props["snapshots_dropped"] == 1 and props["artifacts_pruned"] == 1

    after_snapshots = snapshots(settings)
    assert before_snapshots - after_snapshots == {staging[0]["snapshot"]}  # outside the window
    for dist in DISTS:  # the window of each distribution: its last two states
        assert {e["snapshot"] for e in history(settings, dist)[-2:]} <= after_snapshots
    assert published(settings) == before  # Packages, Release, signatures: byte for byte
    assert not old.exists() and any(young.iterdir())

    # a rollback to a state retention dropped: refused, saying so, and nothing changes
    releaser = session(settings, "releaser")
    refused = releaser.follow(
        releaser.force("rollback", "rollback", distribution=STAGING, state="1", reason="test")
    )
    assert result_name(refused["results"]) == "FAILURE", api.describe(refused)
    check = next(s for s in refused["steps"] if s["name"] == "check")
    assert check["state_string"].startswith(
        f"refused: state 1 ({staging[0]['snapshot']}) is no longer kept: retention keeps the "
        "states of each distribution's last 2 history entries"
    ), check["state_string"]
    assert published(settings) == before
    assert len(history(settings, STAGING)) == len(staging)

    # a rollback within the window: staging back to its first push
    rollback = releaser.follow(
        releaser.force("rollback", "rollback", distribution=STAGING, reason="test")
    )
    assert result_name(rollback["results"]) == "SUCCESS", api.describe(rollback)
    assert history(settings, STAGING)[-1]["snapshot"] == staging[1]["snapshot"]
    packages = published(settings)[f"{STAGING}/main/binary-amd64/Packages"].decode()
    first, second = (b["properties"]["package_version"][0] for b in builds)
    assert f"Version: {first}\n" in packages and f"Version: {second}\n" not in packages


def test_the_janitor_deletes_old_logs_nightly_and_when_an_admin_forces_it(installation):
    admin = session(installation, "admin")
    build = admin.follow(admin.force("__Janitor_force", "__Janitor", reason="test"))
    assert result_name(build["results"]) == "SUCCESS", api.describe(build)
    assert any("logchunks" in step["state_string"] for step in build["steps"])
