"""The one browser driver of the tests: Playwright for Python driving Debian's chromium (no
browser download), headless. Used by test_board.py and test_web_ui.py."""

from __future__ import annotations

import base64
import contextlib
import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def chromium():
    """A headless chromium for a test module."""
    if not shutil.which(CHROMIUM):
        pytest.fail("chromium is missing: run `make system-tests`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def password(settings, user: str) -> str:
    return dict(
        line.split(":")[:2]
        for line in settings.read_secret(settings.auth.users_secret).splitlines()
    )[user]


def context(browser, settings, user: str | None = None):
    """A new browser context (its own cookies), logged in as `user` the way the UI's log-in
    does it: basic auth on /auth/login once, then the session cookie."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1400})
    if user:
        token = base64.b64encode(f"{user}:{password(settings, user)}".encode()).decode()
        answer = ctx.request.get(
            settings.web_url + "auth/login",
            headers={"Authorization": f"Basic {token}"},
            max_redirects=0,
        )
        assert answer.status in (200, 302), answer.status
    return ctx
