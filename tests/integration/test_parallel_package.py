"""The package build runs beside the tests (steps/package.py), end to end.

A push is one CI build that starts its package build (`snowbird-package`) first and runs the
tests meanwhile; the two overlap, the CI build links its package build and takes over its version
and packages, and only then publishes. A failing test publishes nothing and stops the package
build. A failing package build fails the CI build, which names the package build's failing step
and quotes its log, in the web UI and in the failure mail; and it does so at once, stopping the
tests that still run (steps/failfast.py)."""

from __future__ import annotations

import os
import time

import pytest

from conveyor.results import result_name
from ops import api
from ops import demo
from ops import github
from ops import mailsink
from ops import services
from ops.progress import triggered_builds
from tests.integration.helpers import free_port
from tests.integration.helpers import mail_about
from tests.integration.helpers import running_installation
from tests.integration.helpers import staging_index

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds Debian packages: needs root"),
]


@pytest.fixture(scope="module")
def installation():
    with running_installation(
        "parallel", extra=f'[mail]\nsmtp_port = {free_port()}\nfrom = "conveyor@example.com"\n'
    ) as s:
        yield s


SLOW_SECONDS = 300
SLOW_TEST = "tests/test_slow.py"
SLOW_SOURCE = f"""import time


def test_takes_long():
    time.sleep({SLOW_SECONDS})
"""


STOPPED = "stopped: the package build failed"


def step(build: dict, name: str) -> dict:
    return next(s for s in build["steps"] if s["name"] == name)


def children(settings, build: dict) -> dict[str, dict]:
    """The builds the CI build triggered, by builder name, with their steps."""
    found = {}
    for child in triggered_builds(api.reader(settings), build["buildid"]):
        name = api.api(settings, f"builders/{child['builderid']}")["builders"][0]["name"]
        child["steps"] = api.api(settings, f"builds/{child['buildid']}/steps")["steps"]
        child["properties"] = api.api(settings, f"builds/{child['buildid']}?property=*")["builds"][
            0
        ]["properties"]
        found[name] = child
    return found


def push(settings, checkout, path: str, content: str, message: str) -> tuple[str, dict]:
    project = settings.projects[0]
    before = github.git(checkout, "rev-parse", "HEAD")
    sha = github.commit_file(checkout, path, content, message)
    github.push_branch(checkout, project)
    return sha, github.push_and_wait(settings, project, checkout, before=before)


def test_the_package_is_built_while_the_tests_run_and_published_after_both(installation):
    project = installation.projects[0]
    checkout = demo.ensure_demo_repo(installation, project)
    build = github.push_and_wait(installation, project, checkout)
    assert result_name(build["results"]) == "SUCCESS", api.describe(build)

    parts = children(installation, build)
    package = parts[project.package_builders[0][1]]
    assert result_name(package["results"]) == "SUCCESS"
    deb = step(package, "deb")
    tests = step(build, "tests")
    # side by side: the package build began before the tests ended, and its package build
    # (dpkg-buildpackage) was still running when the tests began
    assert package["started_at"] <= tests["complete_at"]
    assert tests["started_at"] < deb["complete_at"]
    assert "deb" not in [s["name"] for s in build["steps"]]

    # one CI build per push, linked to its part; the version and the .debs are the package
    # build's, and that is what reached staging
    waited = step(build, "package")
    version = build["properties"]["package_version"][0]
    assert (
        waited["state_string"]
        == f"version {version} from {project.package_builders[0][1]} #{package['number']}"
    )
    assert any(
        url["url"].endswith(f"/builders/{package['builderid']}/builds/{package['number']}")
        for url in waited["urls"]
    ), waited["urls"]
    where = f"{project.package_builders[0][1]}/{package['number']}"
    assert build["properties"]["artifact_paths"][0] == {
        name: where
        for name in [*package["properties"]["debs"][0], *package["properties"]["buildinfos"][0]]
    }
    assert package["properties"]["package_version"][0] == version
    assert f"Version: {version}\n" in staging_index(installation)
    # the version carries the CI build's number, not the package build's
    assert f".{build['number']}.g" in version
    assert result_name(parts["publish"]["results"]) == "SUCCESS"


def test_a_failing_test_publishes_nothing_and_stops_the_package_build(installation):
    project = installation.projects[0]
    checkout = demo.ensure_demo_repo(installation, project)
    index = staging_index(installation)
    _, build = push(
        installation, checkout, demo.RED_TEST, demo.RED_SOURCE.format(parts=4), "A test that fails"
    )

    assert result_name(build["results"]) == "FAILURE", api.describe(build)
    assert step(build, "tests")["results"] != 0
    waited = step(build, "package")
    assert result_name(waited["results"]) == "SKIPPED"
    assert waited["state_string"].startswith("package build stopped: nothing is published")
    assert f"publish to {project.upload_to}" not in [
        s["name"] for s in build["steps"] if result_name(s["results"]) != "SKIPPED"
    ]
    parts = children(installation, build)
    assert "publish" not in parts
    package = parts[project.package_builders[0][1]]
    deadline = time.monotonic() + 60
    while not package["complete"] and time.monotonic() < deadline:  # being stopped
        time.sleep(0.5)
        package = api.api(installation, f"builds/{package['buildid']}")["builds"][0]
    assert result_name(package["results"]) == "CANCELLED"
    assert staging_index(installation) == index

    # back to green for the next test
    _, build = push(
        installation,
        checkout,
        demo.RED_TEST,
        demo.RED_SOURCE.format(parts=3),
        "The test passes again",
    )
    assert result_name(build["results"]) == "SUCCESS", api.describe(build)
    # this second publish imported its own package only: the first one's is gone from the
    # repository worker's incoming/ (the publish builder serves every project)
    incoming = (
        installation.state_dir
        / "workers"
        / installation.repository.worker
        / "publish"
        / "build"
        / "incoming"
    )
    assert sorted(p.name for p in incoming.iterdir()) == build["properties"]["debs"][0]


def test_a_failing_package_build_fails_the_ci_build_which_tells_why(installation):
    project = installation.projects[0]
    checkout = demo.ensure_demo_repo(installation, project)
    index = staging_index(installation)
    mail_dir = services.mail_dir(installation)
    known = set(mailsink.messages(mail_dir))
    rules = (checkout / "debian" / "rules").read_text()
    broken = rules.replace(
        "\trm -rf build snowbird.egg-info debian/debs\n",
        "\techo 'rules: broken on purpose (a test)' >&2; exit 1\n",
        1,
    )
    assert broken != rules
    # and a test that takes long: the red package is reported without waiting for it
    github.commit_file(checkout, SLOW_TEST, SLOW_SOURCE, "A slow test")
    _, build = push(installation, checkout, "debian/rules", broken, "Break debian/rules")

    assert result_name(build["results"]) == "FAILURE", api.describe(build)
    # the step the CI build was at (the package fails within seconds: the virtualenv, the
    # install or the tests) stopped, and the tests never ran to their end
    (stopped,) = [s for s in build["steps"] if s["state_string"] == STOPPED]
    assert stopped["name"] in ("virtualenv", "install", "tests"), build["steps"]
    assert stopped["complete_at"] - build["started_at"] < SLOW_SECONDS  # the slow test never ended
    assert all(s["state_string"] == STOPPED for s in build["steps"] if s["name"] == "tests")
    package = children(installation, build)[project.package_builders[0][1]]
    waited = step(build, "package")
    assert (
        waited["state_string"]
        == f"deb failed in {project.package_builders[0][1]} #{package['number']}"
    )
    assert staging_index(installation) == index

    # the mail tells of the package build's failing step as the CI build's own, with its log
    mail = mail_about(mail_dir, known, build["revision"][:7])
    assert mail["Subject"] == f"[snowbird] main FAILURE {build['revision'][:7]}: deb failed"
    text = mailsink.text_of(mail)
    assert "Failed step  deb" in text
    assert "rules: broken on purpose (a test)" in text
    assert build["url"] in text

    github.commit_file(checkout, "debian/rules", rules, "Restore debian/rules")
    github.git(checkout, "rm", "--quiet", SLOW_TEST)
    github.git(checkout, "commit", "--quiet", "-m", "Drop the slow test")
    github.push_branch(checkout, project)
