"""The web UI in a real headless Chromium (Debian's chromium, driven by Playwright for Python,
as in test_board.py: tests/integration/browser.py): anonymous users see the log-in and
nothing else (private by default); a developer sees the builders, a build's steps, its test
and coverage summaries and links; a developer's promote is refused; a releaser logs in and
promotes with the form's button.
"""

from __future__ import annotations

import os
import re
import time

import pytest

from conveyor.results import result_name
from ops import api
from ops import cli
from ops import demo
from ops import github
from tests.integration.browser import chromium
from tests.integration.browser import context
from tests.integration.helpers import running_installation

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="installs the built package: needs root"),
]

PACKAGE = "snowbird"


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    with running_installation("ui") as settings:
        project = settings.projects[0]
        build = github.push_and_wait(settings, project, demo.ensure_demo_repo(settings, project))
        assert result_name(build["results"]) == "SUCCESS", api.describe(build)
        settings_build = (settings, build)
        yield settings_build


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


def page_of(browser, settings, user: str | None = None):
    return context(browser, settings, user).new_page()


def wait_for_text(page, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while text not in page.inner_text("body"):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{text!r} not on the page {page.url}:\n{page.inner_text('body')[:2000]}"
            )
        time.sleep(0.3)


def click_button(page, label: str) -> None:
    """Click the first visible button whose text is `label`."""
    page.locator("button:visible", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")).first.click(
        timeout=20_000
    )


def promote_builder_url(settings) -> str:
    return f"{settings.web_url}#/builders/{api.builder_id(settings, 'promote')}"


def test_anonymous_users_see_the_log_in_and_no_builder(installation, browser):
    settings, build = installation
    page = page_of(browser, settings)
    page.goto(settings.web_url + "#/builders")
    wait_for_text(page, "Anonymous")  # the user menu, with its log-in
    page.goto(build["url"])
    time.sleep(3)  # what the UI would have shown by now
    body = page.inner_text("body")
    assert "snowbird-ci" not in body and build["properties"]["package_version"][0] not in body


def test_a_developer_sees_builders_builds_tests_and_coverage(installation, browser):
    settings, build = installation
    page = page_of(browser, settings, "developer")
    page.goto(settings.web_url + "#/builders")
    for name in ("snowbird-ci", "promote", "rollback", "publish"):
        wait_for_text(page, name)
    page.goto(build["url"])
    props = build["properties"]
    wait_for_text(page, f"{props['tests_passed'][0]} passed, 0 failed")
    wait_for_text(page, f"coverage {props['coverage_percent'][0]:.0f}%")
    wait_for_text(page, f"version {props['package_version'][0]}")
    wait_for_text(page, "coverage report")  # the link to the HTML report
    wait_for_text(page, f"{PACKAGE}_{props['package_version'][0]}_amd64.deb")


def test_a_developers_promote_is_refused_in_the_form(installation, browser):
    settings, _ = installation
    before = api.last_build_number(settings, "promote")
    page = page_of(browser, settings, "developer")
    page.goto(promote_builder_url(settings))
    click_button(page, "Promote")
    click_button(page, "Start build")
    wait_for_text(page, "you need to have role 'releasers'")
    time.sleep(1)
    assert api.last_build_number(settings, "promote") == before


def test_releaser_logs_in_and_promotes_with_the_button(installation, browser, tmp_path):
    settings, build = installation
    version = build["properties"]["package_version"][0]
    page = page_of(browser, settings, "releaser")
    before = api.last_build_number(settings, "promote")
    page.goto(promote_builder_url(settings))
    wait_for_text(page, "releaser")  # the user menu shows who is logged in
    click_button(page, "Promote")
    wait_for_text(page, "Promote a package one step along its path")
    click_button(page, "Start build")  # defaults: the newest of staging → the next step
    promoted = api.wait_for_build(settings, "promote", before, timeout=120)
    page.screenshot(path=str(tmp_path / "promote.png"))
    assert result_name(promoted["results"]) == "SUCCESS", api.describe(promoted)
    assert promoted["properties"]["owner"][0] == "releaser"
    text = cli.fetch_text(f"{settings.repository.url}dists/{PACKAGE}/main/binary-amd64/Packages")
    assert f"Version: {version}\n" in text
    page.goto(promoted["url"])
    wait_for_text(page, f"{PACKAGE} {version} in {PACKAGE}")  # the verify step's summary
