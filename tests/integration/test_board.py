"""The release board in a real headless Chromium (Debian's chromium, driven by Playwright for
Python; no browser is downloaded), inside Buildbot's web UI at #/releases.

One installation for the module, in this order: a push makes build #1, which publishes into
staging; anyone sees its version, commit and build on the board; the developer sees no
button, and a forged POST with the developer's session gets 403; two red pushes, and the
board shows the failing test "failing since #2" with its failure text; the releaser presses
"Promote to snowbird", confirms, and the board shows the version in production with its
history entry. Screenshots of the board, before and after the promotion, are kept
($CONVEYOR_TEST_ARTIFACTS, by default tests/artifacts/).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from conveyor.results import result_name
from ops import api
from ops import cli
from ops import demo
from ops import github
from tests.integration.browser import chromium
from tests.integration.browser import context
from tests.integration.helpers import running_installation

pytestmark = [pytest.mark.integration]

PACKAGE, STAGING, PRODUCTION = "snowbird", "snowbird-staging", "snowbird"
ARTIFACTS = Path(
    os.environ.get("CONVEYOR_TEST_ARTIFACTS") or Path(__file__).resolve().parents[1] / "artifacts"
)


@pytest.fixture(scope="module")
def installation():
    with running_installation("board") as settings:
        project = settings.projects[0]
        checkout = demo.ensure_demo_repo(settings, project)
        build = github.push_and_wait(settings, project, checkout)
        assert result_name(build["results"]) == "SUCCESS", api.describe(build)
        yield settings, project, checkout, build


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


def board_page(browser, settings, user: str | None = None):
    """A new browser context (its own cookies) on the board, logged in as `user`."""
    page = context(browser, settings, user).new_page()
    page.goto(settings.web_url + "#/releases")
    page.wait_for_selector(".conveyor-board")
    return page


def screenshot(page, name: str) -> None:
    """The whole board as a PNG, kept as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    assert (ARTIFACTS / name).stat().st_size > 10_000


def cell(page, dist: str):
    return page.locator(f"#cell-{PACKAGE}-{dist}")


def test_the_board_shows_the_version_in_staging_its_commit_and_its_build(installation, browser):
    from playwright.sync_api import expect

    settings, project, _, build = installation
    version = build["properties"]["package_version"][0]
    page = board_page(browser, settings, "developer")
    staging = cell(page, STAGING)
    expect(staging.locator(".conveyor-version")).to_have_text(version)
    commit = staging.locator("a.conveyor-commit")
    expect(commit).to_have_text(build["revision"][:7])
    expect(commit).to_have_attribute(
        "href", f"https://github.com/{project.github}/commit/{build['revision']}"
    )
    made_by = staging.locator("a.conveyor-build")
    expect(made_by).to_have_text(f"CI build #{build['number']}")
    assert made_by.get_attribute("href").endswith(f"/builds/{build['number']}")
    expect(staging.locator(".conveyor-who")).to_contain_text("publish by")
    expect(cell(page, PRODUCTION)).to_contain_text("nothing yet")
    # the commit waits between staging and production, with its author and subject
    step = page.locator(f"#step-{PACKAGE}-{STAGING}-{PRODUCTION}")
    expect(step).to_contain_text(f"{version} waits")
    expect(step.locator(".conveyor-commits li")).to_contain_text(build["revision"][:7])
    # a developer: no button
    expect(page.locator("button.conveyor-force")).to_have_count(0)
    # the same data as JSON, beside the page
    data = page.request.get(settings.web_url + "plugins/wsgi_dashboards/releases/board.json")
    (path,) = data.json()["paths"]
    assert [c["version"] for c in path["cells"]] == [None, version, None]
    assert path["steps"][1]["commits"][0]["revision"] == build["revision"]
    page.context.close()


def test_anonymous_users_get_neither_the_board_nor_its_json(installation, browser):
    settings, *_ = installation
    context = browser.new_context()
    for path in ("index.html", "board.json"):
        answer = context.request.get(f"{settings.web_url}plugins/wsgi_dashboards/releases/{path}")
        assert answer.status == 401, (path, answer.status)
        assert "log in to the web UI" in answer.text() and PACKAGE not in answer.text()
    context.close()


def test_the_developer_sees_no_button_and_a_forged_post_gets_403(installation, browser):
    from playwright.sync_api import expect

    settings, _, _, build = installation
    version = build["properties"]["package_version"][0]
    page = board_page(browser, settings, "developer")
    expect(page.locator(".conveyor-user")).to_have_text("developer")
    expect(page.locator(f"#step-{PACKAGE}-{STAGING}-{PRODUCTION}")).to_contain_text(
        f"{version} waits"
    )
    expect(page.get_by_role("button", name=f"Promote to {PRODUCTION}")).to_have_count(0)
    expect(page.locator("button.conveyor-force")).to_have_count(0)
    before = api.last_build_number(settings, "promote")
    answer = page.request.post(
        settings.web_url + "api/v2/forceschedulers/promote",
        headers={"Content-Type": "application/json"},
        data=json.dumps(
            {
                "jsonrpc": "2.0",
                "method": "force",
                "id": 1,
                "params": {
                    "builderid": api.builder_id(settings, "promote"),
                    "package": PACKAGE,
                    "version": version,
                    "from_dist": STAGING,
                    "to_dist": PRODUCTION,
                    "reason": "forged",
                },
            }
        ),
    )
    assert answer.status == 403, answer.text()
    assert "you need to have role" in answer.text()
    assert api.last_build_number(settings, "promote") == before
    page.context.close()


def test_a_red_build_shows_its_failing_test_since_when_and_its_failure_text(installation, browser):
    from playwright.sync_api import expect

    settings, project, checkout, _ = installation
    numbers = []
    for message in ("Check that the version has four parts", "Touch the README"):
        before = github.git(checkout, "rev-parse", "HEAD")
        if not numbers:
            github.commit_file(checkout, demo.RED_TEST, demo.RED_SOURCE.format(parts=4), message)
        else:
            github.commit_file(checkout, "NOTES.md", "still red\n", message)
        github.push_branch(checkout, project)
        red = github.push_and_wait(settings, project, checkout, before=before)
        assert result_name(red["results"]) == "FAILURE", api.describe(red)
        numbers.append(red["number"])
    page = board_page(browser, settings, "developer")
    ci = page.locator(f"#ci-{project.name}")
    failure = ci.locator(".conveyor-failure").first
    expect(failure).to_contain_text("test_version_has_three_parts")
    expect(failure.locator(".conveyor-since")).to_have_text(f"failing since #{numbers[0]}")
    expect(failure.locator("pre")).to_contain_text(re.compile(r"assert 3 == 4|assert .* == 4"))
    expect(ci.locator(f"tr[data-number='{numbers[1]}'] td").nth(1)).to_have_text("FAILURE")
    expect(ci.locator("svg.conveyor-trend circle")).to_have_count(1)  # red: no coverage
    page.context.close()


def test_the_cli_gives_the_same_figures(installation, capsys):
    """bin/conveyor status and status --json, against the same installation."""
    settings, _, _, build = installation
    version = build["properties"]["package_version"][0]
    assert cli.main(["--settings", str(settings.file), "status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (path,) = data["paths"]
    assert [c["version"] for c in path["cells"]] == [None, version, None]
    step = path["steps"][1]
    assert (step["version"], step["commits"][-1]["revision"]) == (version, build["revision"])
    (ci,) = data["ci"]
    assert ci["failing"][0]["since"] == ci["red_build"] - 1
    assert cli.main(["--settings", str(settings.file), "status"]) == 0
    text = capsys.readouterr().out
    assert f"{STAGING} → {PRODUCTION}: {version} waits, 1 commit(s)" in text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "status.txt").write_text(text)


def test_the_releaser_promotes_with_the_button(installation, browser):
    from playwright.sync_api import expect

    settings, _, _, build = installation
    version = build["properties"]["package_version"][0]
    page = board_page(browser, settings, "releaser")
    before = api.last_build_number(settings, "promote")
    dialogs = []

    def confirm(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", confirm)
    screenshot(page, "board-before-promotion.png")
    step = page.locator(f"#step-{PACKAGE}-{STAGING}-{PRODUCTION}")
    step.get_by_role("button", name=f"Promote to {PRODUCTION}").click()
    expect(step.locator(".conveyor-answer")).to_contain_text("requested")
    assert dialogs == [f"Promote {PACKAGE} {version} from {STAGING} to {PRODUCTION}?"]
    promoted = api.wait_for_build(settings, "promote", before, timeout=120)
    assert result_name(promoted["results"]) == "SUCCESS", api.describe(promoted)
    assert promoted["properties"]["owner"][0] == "releaser"
    page.reload()
    production = cell(page, PRODUCTION)
    expect(production.locator(".conveyor-version")).to_have_text(version)
    expect(production.locator(".conveyor-who")).to_contain_text("promote by releaser")
    latest = page.locator(f"#history-{PRODUCTION} li").first
    expect(latest).to_contain_text("promote")
    expect(latest).to_contain_text(f"{PACKAGE} {version}")
    expect(latest).to_contain_text(f"from {STAGING}")
    expect(latest).to_contain_text("by releaser")
    assert latest.locator("a").get_attribute("href") == promoted["url"]  # the promote build
    expect(step).to_contain_text("nothing newer waits")
    # production's only earlier state is the empty one it started with: no "Roll back" button
    # (a rollback to it must name it: bin/conveyor rollback snowbird --to 1)
    expect(page.locator(f"#history-{PRODUCTION} button")).to_have_count(0)
    screenshot(page, "board.png")
    page.context.close()
