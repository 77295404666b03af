"""A project as teams have them, through Conveyor with no edits: tests/packages/tally, a
hatchling project (its test dependencies an extra of pyproject.toml) with its own debian/
(dh + pybuild, `3.0 (quilt)`, a Debian revision), whose Build-Depends (python3-hatchling,
python3-toolz) the worker host lacks and whose rules need root
(a chown, no `Rules-Requires-Root: no`). Its package is built in a throwaway chroot of the
worker's release (worker/bin/conveyor-chroot-build), installed and smoke-tested by the install
check, and published into staging; nothing is installed on the host.

Needs root (the build user and its subordinate ids) and Debian's archive (the chroot's
Build-Depends)."""

from __future__ import annotations

import os
import subprocess

import pytest

from conveyor.results import result_name
from ops import api
from ops import demo
from ops import github
from tests.integration.helpers import ROOT
from tests.integration.helpers import installed_version
from tests.integration.helpers import running_installation
from tests.integration.helpers import staging_index

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="a separate build user needs root"),
]

TALLY = ROOT / "tests" / "packages" / "tally"
PROJECT = """
[projects.tally]
github = "acme/tally"
clone_url = "var/git/tally.git"
branch = "main"
packages = ["python3-tally"]
path = ["tally-staging", "tally"]
upload_to = "tally-staging"
requirements = []
extras = ["test"]
coverage_threshold = 50
smoke = ["python3", "-c", "import tally; assert tally.most_common('a b a') == 'a'"]
"""
HOST_LACKS = ("python3-toolz", "python3-hatchling")


@pytest.fixture(scope="module")
def installation():
    with running_installation("real-project", extra=PROJECT) as settings:
        yield settings


def step_log(settings, build: dict, name: str) -> str:
    steps = api.api(settings, f"builds/{build['buildid']}/steps")["steps"]
    step = next(s for s in steps if s["name"] == name)
    logs = api.api(settings, f"steps/{step['stepid']}/logs")["logs"]
    stdio = next(entry for entry in logs if entry["slug"] == "stdio")
    return "".join(
        chunk["content"]
        for chunk in api.api(settings, f"logs/{stdio['logid']}/contents")["logchunks"]
    )


def test_a_pybuild_package_goes_green_into_staging_unedited(installation):
    settings = installation
    assert [installed_version(p) for p in HOST_LACKS] == [None, None]
    project = next(p for p in settings.projects if p.name == "tally")
    checkout = demo.ensure_demo_repo(settings, project, source=TALLY)
    build = github.push_and_wait(settings, project, checkout)
    assert result_name(build["results"]) == "SUCCESS", api.describe(build)

    builderid = api.builder_id(settings, project.package_builders[0][1])
    package = api.api(settings, f"builds?builderid={builderid}&order=-number&limit=1")["builds"][0]
    log = step_log(settings, package, "deb")
    # built in a chroot of this machine's release, its Build-Depends installed there
    assert "in a throwaway overlay of" in log and "installing them from the" in log, log[-3000:]
    assert "python3-toolz" in log and "python3-hatchling" in log
    assert "conveyor-chroot-build: built in" in log
    version = api.api(settings, f"builds/{package['buildid']}/properties")["properties"][0][
        "package_version"
    ][0]
    index = staging_index(settings, "tally-staging")
    assert "Package: python3-tally\n" in index and f"Version: {version}\n" in index, index
    # its test dependencies came from pyproject's extra, the project installed editable: so
    # coverage measured the package itself (not only the tests, which run in full: 100 %)
    props = api.api(settings, f"builds/{build['buildid']}/properties")["properties"][0]
    assert props["tests_passed"][0] == 2
    assert 50 < props["coverage_percent"][0] < 100, props["coverage_percent"]
    # the install check installed it (Depends on python3-toolz, from Debian's archive) and ran
    # the smoke command in its throwaway root
    check = step_log(settings, package, "install-check")
    assert "smoke" in check
    # and nothing of the project's is on the host
    assert [installed_version(p) for p in HOST_LACKS] == [None, None]
    assert (
        subprocess.run(["/usr/bin/python3", "-c", "import toolz"], capture_output=True).returncode
        != 0
    )
