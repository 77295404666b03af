"""Under CI=true a test that skips fails instead, saying why it could not run: CI must never
pass with part of the suite quietly left out (a worker not run as root, a tool missing because
`make system` was not run). Registered by tests/integration/conftest.py; the unit tests' few
deliberate skips (a case covered elsewhere) are not affected."""

from __future__ import annotations

import os

import pytest


def strict() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and strict():
        reason = str(
            report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        ).removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} could not run under CI=true, and CI must not skip it: {reason}"
        )
