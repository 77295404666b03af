"""The lint step, end to end: the demo app declares ruff (pinned in its requirements-dev.txt);
a push that brings a lint problem shows the count and the first problem, with file and line, in
the web UI's step summary and in the failure mail, and with `lint_below = "failure"` nothing of
it is published. The demo as shipped lints clean, and is published."""

from __future__ import annotations

import os

import pytest

from conveyor.results import result_name
from ops import api
from ops import demo
from ops import github
from ops import mailsink
from ops import services
from tests.integration.helpers import free_port
from tests.integration.helpers import running_installation
from tests.integration.helpers import staging_index

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds Debian packages: needs root"),
]

LINT = '["ruff", "check", "--output-format=json", "."]'
PROBLEM = "snowbird/lint_me.py"


@pytest.fixture(scope="module")
def installation():
    with running_installation(
        "lint",
        extra=f'[mail]\nsmtp_port = {free_port()}\nfrom = "conveyor@example.com"\n',
        project={"lint": LINT, "lint_below": '"failure"'},
    ) as settings:
        yield settings


def step(build: dict, name: str) -> dict:
    return next(s for s in build["steps"] if s["name"] == name)


def test_a_clean_push_passes_lint_and_is_published(installation):
    project = installation.projects[0]
    checkout = demo.ensure_demo_repo(installation, project)
    build = github.push_and_wait(installation, project, checkout)
    assert result_name(build["results"]) == "SUCCESS", api.describe(build)
    assert step(build, "lint")["state_string"] == "no lint problems"
    assert build["properties"]["lint_problems"][0] == 0
    version = build["properties"]["package_version"][0]
    assert f"Version: {version}\n" in staging_index(installation)


def test_a_lint_problem_is_counted_shown_and_mailed_and_stops_the_publish(installation):
    project = installation.projects[0]
    checkout = demo.ensure_demo_repo(installation, project)
    before = github.git(checkout, "rev-parse", "HEAD")
    github.commit_file(checkout, PROBLEM, "import os\n", "Add a module with an unused import")
    github.push_branch(checkout, project)
    index = staging_index(installation)
    mail_dir = services.mail_dir(installation)
    known = set(mailsink.messages(mail_dir))

    build = github.push_and_wait(installation, project, checkout, before=before)

    assert result_name(build["results"]) == "FAILURE", build["url"]
    lint = step(build, "lint")
    first = f"{PROBLEM}:1:8: F401 `os` imported but unused"
    assert lint["state_string"].startswith(f"1 lint problem, first: {first}")
    assert build["properties"]["lint_problems"][0] == 1
    # lint_below = "failure": the build stopped there, and its package build with it; nothing
    # reached staging
    assert step(build, "package")["state_string"].startswith("package build stopped")
    assert all(
        s["name"] != f"publish to {project.upload_to}"
        for s in build["steps"]
        if s.get("results") is not None and s["results"] != 3
    )
    assert staging_index(installation) == index

    mails = mailsink.wait_for_mail(mail_dir, known, timeout=30)
    assert mails, "no failure mail"
    text = mailsink.text_of(mailsink.read(mails[0]))
    assert "Failed step  lint: 1 lint problem" in text
    assert first in text
