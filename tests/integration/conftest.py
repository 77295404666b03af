"""Integration tests: under CI=true a test that would skip fails (tests/strict.py)."""

from tests.strict import pytest_runtest_makereport  # noqa: F401
