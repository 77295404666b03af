"""The web UI in a real headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium): anonymous users see the log-in and nothing else (private by default); a developer
sees the builders, a build's steps, its test and coverage summaries and links; a developer's
promote is refused; a releaser logs in and promotes with the form's button.
"""

from __future__ import annotations

import base64
import os
import shutil
import time

import pytest

from conveyor.results import result_name
from ops import api
from ops import cli
from ops import demo
from ops import github
from tests.integration.helpers import running_installation

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="installs the built package: needs root"),
]

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
PACKAGE = "snowbird"


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    with running_installation("ui") as settings:
        project = settings.projects[0]
        build = github.push_and_wait(settings, project, demo.ensure_demo_repo(settings, project))
        assert result_name(build["results"]) == "SUCCESS", api.describe(build)
        settings_build = (settings, build)
        yield settings_build


@pytest.fixture
def browser(tmp_path):
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail("chromium and chromium-driver are missing: run `make system`")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for_text(driver, text: str, timeout: float = 20) -> None:
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while text not in driver.find_element(By.TAG_NAME, "body").text:
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not on the page {driver.current_url}:\n"
                                 f"{driver.find_element(By.TAG_NAME, 'body').text[:2000]}")
        time.sleep(0.3)


def click_button(driver, label: str) -> None:
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + 20
    while True:
        buttons = [b for b in driver.find_elements(By.TAG_NAME, "button")
                   if b.text.strip() == label and b.is_displayed()]
        if buttons:
            buttons[0].click()
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"no {label!r} button on {driver.current_url}")
        time.sleep(0.3)


def log_in(driver, settings, user: str) -> None:
    """What a browser does when the user answers the log-in prompt of /auth/login: basic auth
    once, then the session cookie."""
    password = dict(line.split(":")[:2] for line in
                    settings.read_secret(settings.auth.users_secret).splitlines())[user]
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders",
                           {"headers": {"Authorization": f"Basic {token}"}})
    driver.get(settings.web_url + "auth/login")
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {}})


def promote_builder_url(settings) -> str:
    return f"{settings.web_url}#/builders/{api.builder_id(settings, 'promote')}"


def test_anonymous_users_see_the_log_in_and_no_builder(installation, browser):
    from selenium.webdriver.common.by import By
    settings, build = installation
    browser.get(settings.web_url + "#/builders")
    wait_for_text(browser, "Anonymous")  # the user menu, with its log-in
    browser.get(build["url"])
    time.sleep(3)  # what the UI would have shown by now
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "snowbird-ci" not in body and build["properties"]["package_version"][0] not in body


def test_a_developer_sees_builders_builds_tests_and_coverage(installation, browser):
    settings, build = installation
    log_in(browser, settings, "developer")
    browser.get(settings.web_url + "#/builders")
    for name in ("snowbird-ci", "promote", "rollback", "publish"):
        wait_for_text(browser, name)
    browser.get(build["url"])
    props = build["properties"]
    wait_for_text(browser, f"{props['tests_passed'][0]} passed, 0 failed")
    wait_for_text(browser, f"coverage {props['coverage_percent'][0]:.0f}%")
    wait_for_text(browser, f"version {props['package_version'][0]}")
    wait_for_text(browser, "coverage report")  # the link to the HTML report
    wait_for_text(browser, f"{PACKAGE}_{props['package_version'][0]}_amd64.deb")


def test_a_developers_promote_is_refused_in_the_form(installation, browser):
    settings, _ = installation
    before = api.last_build_number(settings, "promote")
    log_in(browser, settings, "developer")
    browser.get(promote_builder_url(settings))
    click_button(browser, "Promote")
    click_button(browser, "Start build")
    wait_for_text(browser, "you need to have role 'releasers'")
    time.sleep(1)
    assert api.last_build_number(settings, "promote") == before


def test_releaser_logs_in_and_promotes_with_the_button(installation, browser, tmp_path):
    settings, build = installation
    version = build["properties"]["package_version"][0]
    log_in(browser, settings, "releaser")
    before = api.last_build_number(settings, "promote")
    browser.get(promote_builder_url(settings))
    wait_for_text(browser, "releaser")  # the user menu shows who is logged in
    click_button(browser, "Promote")
    wait_for_text(browser, "Promote a package one step along its path")
    click_button(browser, "Start build")  # defaults: the newest of staging → the next step
    promoted = api.wait_for_build(settings, "promote", before, timeout=120)
    browser.save_screenshot(str(tmp_path / "promote.png"))
    assert result_name(promoted["results"]) == "SUCCESS", api.describe(promoted)
    assert promoted["properties"]["owner"][0] == "releaser"
    text = cli.fetch_text(f"{settings.repository.url}dists/{PACKAGE}/main/binary-amd64/Packages")
    assert f"Version: {version}\n" in text
    browser.get(promoted["url"])
    wait_for_text(browser, f"{PACKAGE} {version} in {PACKAGE}")  # the verify step's summary
