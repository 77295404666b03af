"""A burst of pushes: ten signed `push` events, one commit each, delivered at once from a few
threads. Every push gets a build of its own (its head commit checked out), each build its own
version, and every version ends up in staging's `Packages`: none lost, none merged.

The installation has two build workers on this machine: one Buildbot worker runs one build of a
builder at a time, so two CI builds run side by side only on two. (How long the burst takes is a
figure for bench/burst.py, not a test.)
"""

from __future__ import annotations

import concurrent.futures
import time

import pytest

from conveyor.results import result_name
from ops import api
from ops import demo
from ops import github
from tests.integration.helpers import running_installation

pytestmark = pytest.mark.integration

PUSHES = 10


@pytest.fixture(scope="module")
def installation():
    with running_installation("burst", extra="\n[workers.build-2]\n") as settings:
        yield settings


@pytest.fixture(scope="module")
def burst(installation):
    """(the ten head commits, the CI builds once all have finished)."""
    settings, project = installation, installation.projects[0]
    checkout = demo.ensure_demo_repo(settings, project)
    master = api.reader(settings)
    number = master.last_build_number(project.ci_builder)
    pairs, before = [], github.git(checkout, "rev-parse", "HEAD")
    for n in range(PUSHES):
        after = github.commit_file(checkout, "BURST.txt", f"push {n}\n", f"burst push {n}")
        pairs.append((before, after))
        before = after
    github.push_branch(checkout, project)
    payloads = [github.push_payload(checkout, project, b, a) for b, a in pairs]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda p: github.deliver(settings, "push", p), payloads))
    assert answers == [(202, "1 change found")] * PUSHES

    builder = master.builder_id(project.ci_builder)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        builds = master.get(
            f"builders/{builder}/builds?number__gt={number}&order=number"
            "&property=got_revision&property=package_version"
        )["builds"]
        if len(builds) >= PUSHES and all(b["complete"] for b in builds):
            break
        time.sleep(1)
    return [after for _, after in pairs], builds


def prop(build: dict, name: str):
    return (build["properties"].get(name) or [None])[0]


def test_every_push_in_a_burst_is_its_own_build(burst):
    heads, builds = burst
    assert len(builds) == PUSHES, f"{len(builds)} CI builds for {PUSHES} pushes"
    assert all(b["complete"] for b in builds), "the burst did not drain within 15 minutes"
    assert [result_name(b["results"]) for b in builds] == ["SUCCESS"] * PUSHES
    assert sorted(prop(b, "got_revision") for b in builds) == sorted(heads)


def test_every_push_in_a_burst_is_published_with_its_own_version(installation, burst):
    _, builds = burst
    versions = [prop(b, "package_version") for b in builds]
    assert None not in versions and len(set(versions)) == PUSHES, versions
    project = installation.projects[0]
    missing = set(versions) - set(
        api.listed_versions(installation, project.upload_to, project.packages[0])
    )
    assert not missing, f"not in staging's Packages: {sorted(missing)}"
