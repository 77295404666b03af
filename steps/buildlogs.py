"""A build's failing step and the tail of its log, from the master's data API: what a mail and a
commit status (master/reporters/facts.py) and a CI build waiting for its package build
(steps/package.py) quote of a failure."""

from __future__ import annotations

import re
from typing import Any

from twisted.internet import defer

from conveyor.results import FAILING

LOG_TAIL_LINES = 30
LOG_LOOKBACK_LINES = 400  # read at most this many lines from the end of the failing log
DIGEST_LOGS = ("problems", "stdio")  # the log a mail quotes, the first a step has


def step_summary(step: dict) -> str | None:
    """The step's summary without the trailing ' (failure)' Buildbot appends to its own
    summaries (a step's `descriptionDone`; a sentence of steps/summary.py has none)."""
    text = step.get("state_string") or ""
    text = re.sub(r"\s*\((failure|exception|warnings|cancelled|skipped)\)$", "", text)
    return text or None


def failing_step(build: dict) -> dict | None:
    """The first step that failed (or raised): the one a mail and a status name."""
    for step in build.get("steps") or []:
        if step.get("results") in FAILING and not step.get("hidden"):
            return step
    for step in build.get("steps") or []:
        if step.get("results") in FAILING:
            return step
    return None


@defer.inlineCallbacks
def log_tail(master: Any, step: dict, lines: int = LOG_TAIL_LINES) -> Any:
    """(log name, the last `lines` output lines of the step's digest log — e.g. the lint
    step's `problems` — or of its stdio log, or of its first log)."""
    logs = yield master.data.get(("steps", step["stepid"], "logs"))
    logs = list(logs or [])
    chosen = next((entry for slug in DIGEST_LOGS for entry in logs if entry["slug"] == slug), None)
    if chosen is None and logs:
        chosen = logs[0]
    if chosen is None or not chosen.get("num_lines"):
        return None, []
    count = chosen["num_lines"]
    first = max(0, count - LOG_LOOKBACK_LINES)
    content = yield master.data.get(
        ("logs", chosen["logid"], "contents"), offset=first, limit=count - first
    )
    text = (content or {}).get("content") or ""
    out = []
    for line in text.splitlines():
        if chosen.get("type") == "s":
            # stdio lines start with their stream: o(ut), e(rr), h(eader: argv, env, exit code)
            if line[:1] == "h":
                continue
            line = line[1:]
        out.append(line)
    return chosen["name"], out[-lines:]
