"""A CI build's test figures, as its properties: each target release's (BY_TARGET), their sums,
the lowest coverage and the failing tests. Set by the tests' own steps (steps/python.py) and by
AwaitTests, which takes over the later releases' figures from their tests builds
(steps/beside.py): one way to add them up for both."""

from __future__ import annotations

from conveyor import buildprops

MAX_FAILED_NAMES = 20  # length limit of the tests_failed_names property
MAX_FAILURE_TEXT = 2000  # characters of each failure's text kept in tests_failures
OUTCOMES = (
    (buildprops.TESTS_PASSED, "passed"),
    (buildprops.TESTS_FAILED, "failed"),
    ("tests_skipped", "skipped"),
)


def copy_by_target(step) -> dict:
    """The build's BY_TARGET, a copy to change: {release: figures}."""
    return {k: dict(v) for k, v in (step.getProperty(buildprops.BY_TARGET) or {}).items()}


def by_target_with(step, target: str, figures: dict) -> dict:
    """BY_TARGET with `figures` added to `target`'s (set on the build): {release: figures}."""
    by_target = copy_by_target(step)
    by_target.setdefault(target, {}).update(figures)
    step.setProperty(buildprops.BY_TARGET, by_target, step.__class__.__name__)
    return by_target


def totals(by_target: dict) -> dict[str, int]:
    """The sums of every release's passed, failed and skipped tests."""
    return {o: sum(t.get(o, 0) for t in by_target.values()) for _, o in OUTCOMES}


def lowest_coverage(by_target: dict) -> float | None:
    """The build's coverage: its lowest release's (None before any coverage)."""
    coverages = [t["coverage"] for t in by_target.values() if "coverage" in t]
    return min(coverages) if coverages else None


def set_tests(step, counts: dict[str, int], failures: list[dict]) -> None:
    """The build's sums of tests (`counts`: passed, failed, skipped) and its failing tests
    ({name, text}: the first MAX_FAILED_NAMES, each text cut to MAX_FAILURE_TEXT)."""
    source = step.__class__.__name__
    for name, outcome in OUTCOMES:
        step.setProperty(name, counts[outcome], source)
    listed = failures[:MAX_FAILED_NAMES]
    step.setProperty(buildprops.TESTS_FAILED_NAMES, [f["name"] for f in listed], source)
    step.setProperty(
        buildprops.TESTS_FAILURES,
        [{"name": f["name"], "text": f["text"][:MAX_FAILURE_TEXT]} for f in listed],
        source,
    )
