"""Every build gets a fresh environment, made by uv (the default) or by pip (`installer =
"pip"`): a file that one build's tests leave in the virtualenv is gone in the next build, with
either installer, and the install step's command shows which one ran."""

from __future__ import annotations

import os

import pytest

from conveyor.results import result_name
from ops import api
from ops import demo
from ops import github
from ops import services
from tests.integration.helpers import running_installation

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds Debian packages: needs root"),
]

LEFTOVER_TEST = "tests/test_fresh_environment.py"
LEFTOVER_SOURCE = '''"""A build's environment is its own: nothing of an earlier build's is in it."""
import sys
from pathlib import Path


def test_nothing_was_left_in_the_environment_{n}():
    marker = Path(sys.prefix) / "left-by-a-build"
    assert not marker.exists(), marker.read_text()
    marker.write_text("left by build {n}")
'''


@pytest.fixture(scope="module")
def installation():
    with running_installation("environments") as settings:
        yield settings


def push(settings, n: int) -> dict:
    project = settings.projects[0]
    checkout = demo.ensure_demo_repo(settings, project)
    before = github.git(checkout, "rev-parse", "HEAD")
    github.commit_file(checkout, LEFTOVER_TEST, LEFTOVER_SOURCE.format(n=n), f"Fresh env {n}")
    github.push_branch(checkout, project)
    build = github.push_and_wait(settings, project, checkout, before=before)
    assert result_name(build["results"]) == "SUCCESS", api.describe(build)
    return build


def install_command(settings, build: dict) -> str:
    """The argv line that the install step's log starts with (Buildbot writes it as a header)."""
    log = api.api(settings, f"builds/{build['buildid']}/steps/install/logs/stdio/contents")
    return log["logchunks"][0]["content"].splitlines()[0]


def test_uv_makes_a_fresh_environment_for_every_build(installation):
    first, second = push(installation, 1), push(installation, 2)
    for build in (first, second):
        assert "uv pip install --python ../venv/bin/python" in install_command(installation, build)
        assert build["properties"]["tests_failed"][0] == 0


def test_pip_is_the_fallback_and_fresh_too(installation):
    text = installation.file.read_text()
    installation.file.write_text(
        text.replace("[projects.snowbird]\n", '[projects.snowbird]\ninstaller = "pip"\n')
    )
    services.start(installation)  # a running master: reconfig
    build = push(installation, 3)
    command = install_command(installation, build)
    assert "-m pip install --disable-pip-version-check" in command and "uv pip" not in command
