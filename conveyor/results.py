"""Build results as Buildbot numbers them, by name, and how Conveyor writes its figures.

The numbers are Buildbot's (buildbot.process.results); a unit test checks that they agree, so
that the CLI and the mail can name a result without importing Buildbot.
"""

from __future__ import annotations

SUCCESS, WARNINGS, FAILURE, SKIPPED, EXCEPTION, RETRY, CANCELLED = range(7)
NAMES = ("SUCCESS", "WARNINGS", "FAILURE", "SKIPPED", "EXCEPTION", "RETRY", "CANCELLED")
FAILING = (FAILURE, EXCEPTION)
PASSING = (SUCCESS, WARNINGS)


def result_name(results: int | None) -> str:
    """'SUCCESS', 'FAILURE' …; 'UNKNOWN' for a build that has no result (yet)."""
    if results is None or not 0 <= results < len(NAMES):
        return "UNKNOWN"
    return NAMES[results]


def format_percent(value: float) -> str:
    """93.0 -> '93', 93.33 -> '93.33'."""
    return f"{value:g}"
