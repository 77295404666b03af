"""Target releases, end to end: the demo with `targets = ["bookworm", "trixie"]`. Each push builds
a package per release in a chroot of that release (conveyor-chroot-build), in a package build of
its own beside the other release's, each installed, smoke-tested and purged by the install check
in a root of its own release (piuparts), each attested by its own build, and both land in
staging, one component per release. A promotion moves both, a rollback moves both back, and a
push whose trixie build fails publishes nothing, not even its bookworm package.

Needs root (the build user and its subordinate ids) and Debian's archive (the chroots'
Build-Depends, trixie's base).
"""

from __future__ import annotations

import base64
import json
import os
import urllib.request
from pathlib import Path

import pytest

from conveyor import debformats
from conveyor import provenance
from conveyor import targets
from conveyor.results import result_name
from conveyor.served import index_url
from ops import api
from ops import demo
from ops import github
from ops.progress import triggered_builds
from steps import failfast
from tests.integration.helpers import running_installation
from tests.integration.helpers import session
from tests.integration.helpers import version_gt
from tests.integration.test_promotion import promote

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds as the build user: needs root"),
]

RELEASES = ("bookworm", "trixie")
PYTHON = {"bookworm": "3.11", "trixie": "3.13"}
STAGING, PRODUCTION = "snowbird-staging", "snowbird"
SLOW_SECONDS = 90  # a test that takes that long on bookworm


@pytest.fixture(scope="module")
def installation():
    with running_installation(
        "targets",
        project={
            "targets": '["bookworm", "trixie"]',
            "install_check": "true",
            "smoke": '["/opt/venvs/snowbird/bin/snowbird", "--version"]',
        },
    ) as settings:
        yield settings


def push(settings, message: str | None = None, change=None) -> dict:
    """Push the demo (a first push, or a commit with `message`); the CI build."""
    project = settings.projects[0]
    checkout = demo.ensure_demo_repo(settings, project)
    before = github.git(checkout, "rev-parse", "HEAD")
    if message:
        change(checkout)
        github.git(checkout, "commit", "-qam", message)
        github.git(checkout, "push", "-q", "origin", "HEAD:refs/heads/main")
    return github.push_and_wait(
        settings, project, checkout, before=before if message else github.ZERO
    )


def listed(settings, dist: str) -> dict[str, dict[str, str]]:
    """{release: {version: Depends}} of snowbird in each component, as apt reads them."""
    found = {}
    for release in RELEASES:
        with urllib.request.urlopen(index_url(settings, dist, release), timeout=30) as answer:
            text = answer.read().decode()
        found[release] = {
            s["Version"]: s.get("Depends", "")
            for s in debformats.parse_packages_stanzas(text)
            if s["Package"] == "snowbird"
        }
    return found


def package_build(settings, release: str) -> dict:
    """The last package build of `release` (each release has a package builder of its own)."""
    builder = dict((t, b) for t, b in settings.projects[0].package_builders)[release]
    builderid = api.builder_id(settings, builder)
    return api.api(settings, f"builds?builderid={builderid}&order=-number&limit=1")["builds"][0]


def steps_of(settings, build: dict) -> dict[str, dict]:
    return {s["name"]: s for s in api.api(settings, f"builds/{build['buildid']}/steps")["steps"]}


@pytest.fixture(scope="module")
def versions(installation):
    """Two pushes in staging, each with a package per release: (older, newer) CI versions."""
    first = push(installation)
    assert result_name(first["results"]) == "SUCCESS", api.describe(first)

    def notes(checkout):
        (checkout / "NOTES.md").write_text("Second release.\n")
        github.git(checkout, "add", "NOTES.md")

    second = push(installation, "Write release notes", notes)
    assert result_name(second["results"]) == "SUCCESS", api.describe(second)
    found = tuple(b["properties"]["package_version"][0] for b in (first, second))
    assert version_gt(found[1], found[0])
    return found


def test_each_release_gets_a_package_built_and_checked_in_its_own_release(installation, versions):
    older, newer = versions
    staging = listed(installation, STAGING)
    for release in RELEASES:
        # one component per release, each with its release's package of both commits
        assert set(staging[release]) == {targets.version(v, release) for v in versions}
        # built in a chroot of that release: bound to that release's Python
        depends = staging[release][targets.version(newer, release)]
        assert f"python3 (>= {PYTHON[release]})" in depends, depends
    builds = {release: package_build(installation, release) for release in RELEASES}
    for release in RELEASES:
        steps = steps_of(installation, builds[release])
        assert steps[f"deb-{release}"]["results"] == 0, steps[f"deb-{release}"]
        check = steps[f"install-check-{release}"]
        # installed, purged and smoke-tested in a root of its release (piuparts)
        assert check["results"] == 0 and "smoke passed" in check["state_string"], check
        # each release's package build builds that release only
        assert not any(n.endswith(tuple(set(RELEASES) - {release})) for n in steps), list(steps)
    # side by side: each began before the other ended
    first, second = (builds[r] for r in RELEASES)
    assert (
        first["started_at"] < second["complete_at"] and second["started_at"] < first["complete_at"]
    )
    # each .deb's signed provenance names the project and the build of its own release
    for release in RELEASES:
        version = targets.version(newer, release)
        deb = f"snowbird_{debformats.deb_filename_version(version)}_amd64.deb"
        url = installation.repository.url + provenance.provenance_path(deb)
        with urllib.request.urlopen(url, timeout=30) as answer:
            envelope = json.loads(answer.read())
        statement = json.loads(base64.b64decode(envelope["payload"]))
        assert statement["predicate"]["buildDefinition"]["externalParameters"] == {
            "repository": installation.projects[0].clone_url,
            "ref": "refs/heads/main",
            "project": "snowbird",
            "target": release,
        }
        invocation = statement["predicate"]["runDetails"]["metadata"]["invocationId"]
        builderid = builds[release]["builderid"]
        assert invocation.endswith(f"#/builders/{builderid}/builds/{builds[release]['number']}")


def test_the_tests_run_on_each_releases_python_side_by_side_and_each_gives_its_figures(
    installation, versions
):
    builderid = api.builder_id(installation, installation.projects[0].ci_builder)
    builds = api.api(installation, f"builds?builderid={builderid}&order=-number&property=*")[
        "builds"
    ]
    (build,) = [b for b in builds if b["properties"]["package_version"][0] == versions[1]]
    # bookworm's tests in the CI build, trixie's in a tests build of its own beside it
    (trixie,) = [
        b
        for b in triggered_builds(api.reader(installation), build["buildid"])
        if b["builderid"] == api.builder_id(installation, "snowbird-tests-trixie")
    ]
    ran = {"bookworm": build, "trixie": trixie}
    for release in RELEASES:
        steps = steps_of(installation, ran[release])
        assert steps[f"tests-{release}"]["results"] == 0, steps[f"tests-{release}"]
        chunks = api.api(
            installation,
            f"builds/{ran[release]['buildid']}/steps/tests-{release}/logs/stdio/contents",
        )["logchunks"]
        # pytest's header: the release's own Python ran the tests, in its virtualenv
        log = "".join(c["content"] for c in chunks)
        assert f"Python {PYTHON[release]}." in log, log[-2000:]
    ci_tests = steps_of(installation, build)["tests-bookworm"]
    trixie_tests = steps_of(installation, trixie)["tests-trixie"]
    # side by side: trixie's tests began before bookworm's ended
    assert trixie_tests["started_at"] <= ci_tests["complete_at"], (trixie_tests, ci_tests)
    figures = build["properties"]["by_target"][0]
    assert list(figures) == list(RELEASES)  # each release's own, for the mail and the board
    for release in RELEASES:
        assert figures[release]["passed"] > 0 and figures[release]["failed"] == 0
        assert figures[release]["coverage"] >= installation.projects[0].coverage_threshold
    passed = sum(figures[r]["passed"] for r in RELEASES)
    assert build["properties"]["tests_passed"][0] == passed


def test_promote_moves_every_release_and_rollback_moves_them_back(installation, versions):
    older, newer = versions
    releaser = session(installation, "releaser")
    for version in versions:
        build = promote(releaser, version=version)
        assert result_name(build["results"]) == "SUCCESS", api.describe(build)
    production = listed(installation, PRODUCTION)
    assert {r: set(production[r]) for r in RELEASES} == {
        r: {targets.version(v, r) for v in versions} for r in RELEASES
    }

    brid = releaser.force("rollback", "rollback", distribution=PRODUCTION, state="", reason="test")
    build = releaser.follow(brid)
    assert result_name(build["results"]) == "SUCCESS", api.describe(build)
    production = listed(installation, PRODUCTION)
    # every release back to the state before the newer promotion: the older package only
    assert {r: set(production[r]) for r in RELEASES} == {
        r: {targets.version(older, r)} for r in RELEASES
    }


def test_a_push_whose_trixie_build_fails_publishes_nothing(installation, versions):
    def breaks_on_trixie(checkout):
        rules = checkout / "debian" / "rules"
        rules.write_text(
            rules.read_text()
            + "\noverride_dh_auto_configure:\n\ttest $(PY_MINOR) -lt 13\n\tdh_auto_configure\n"
        )

    build = push(installation, "Break the trixie build", breaks_on_trixie)
    assert result_name(build["results"]) == "FAILURE"
    trixie = package_build(installation, "trixie")
    assert steps_of(installation, trixie)["deb-trixie"]["results"] == 2
    # the CI build tells of trixie's failing step; bookworm's build, beside it, was built or
    # stopped when trixie's failed, and is not published alone
    waited = steps_of(installation, build)["package"]
    assert (
        waited["state_string"]
        == f"deb-trixie failed in snowbird-package-trixie #{trixie['number']}"
    )
    bookworm = package_build(installation, "bookworm")
    assert result_name(bookworm["results"]) in ("SUCCESS", "CANCELLED"), bookworm
    staging = listed(installation, STAGING)
    for release in RELEASES:
        assert {targets.base_of(v, RELEASES)[0] for v in staging[release]} == set(versions)
    assert debformats.newest(set(staging["bookworm"])) == targets.version(versions[1], "bookworm")


def test_a_push_whose_trixie_tests_fail_is_red_with_trixies_failure(installation, versions):
    def fails_on_trixie(checkout):
        # the demo's own rules (an earlier test broke trixie's package build)
        rules = Path(__file__).resolve().parents[2] / "examples" / "snowbird" / "debian" / "rules"
        (checkout / "debian" / "rules").write_text(rules.read_text())
        # and bookworm's tests are slow: the red is told without waiting for them
        (checkout / "tests" / "test_python.py").write_text(
            "import sys\nimport time\n\n\ndef test_runs_before_python_3_13():\n"
            "    assert sys.version_info < (3, 13)\n\n\ndef test_takes_long_before_3_13():\n"
            f"    if sys.version_info < (3, 13):\n        time.sleep({SLOW_SECONDS})\n"
        )
        github.git(checkout, "add", "tests/test_python.py")

    build = push(installation, "Insist on Python before 3.13", fails_on_trixie)
    assert result_name(build["results"]) == "FAILURE"
    steps = steps_of(installation, build)
    # the CI build's own bookworm tests were stopped when trixie's failed, long before their end
    (stopped,) = [s for s in steps.values() if s["state_string"] == failfast.STOPPED_BY_TESTS]
    assert stopped["name"] in ("install-bookworm", "tests-bookworm"), stopped
    assert build["complete_at"] - build["started_at"] < SLOW_SECONDS
    (trixie,) = [
        b
        for b in triggered_builds(api.reader(installation), build["buildid"])
        if b["builderid"] == api.builder_id(installation, "snowbird-tests-trixie")
    ]
    waited = steps["release-tests"]
    # the CI build tells of trixie's failing step, and takes over its failing test, which the
    # failure mail, the GitHub status and the board read there
    assert waited["state_string"] == (
        f"tests-trixie failed in snowbird-tests-trixie #{trixie['number']}"
    )
    names = build["properties"]["tests_failed_names"][0]
    assert names == ["tests.test_python::test_runs_before_python_3_13 [trixie]"], names
    figures = build["properties"]["by_target"][0]
    assert figures["trixie"]["failed"] == 1 and not figures.get("bookworm", {}).get("failed")
    failed_step = build["properties"]["beside_failed_step"][0]
    assert api.api(installation, f"steps/{failed_step}")["steps"][0]["name"] == "tests-trixie"
    # nothing of the commit is published: staging still has the two good commits only
    staging = listed(installation, STAGING)
    assert {targets.base_of(v, RELEASES)[0] for v in staging["trixie"]} == set(versions)
