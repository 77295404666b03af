"""Waiting made visible: each step of a build printed as it finishes, with its summary line and
its time, and the steps of the builds it triggers (CI → publish) below it.

On a terminal the running step is a live line that the next one replaces; in a pipe or a log
there are only whole lines, one per finished step.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

from conveyor.results import result_name

SKIPPED = 3
# Buildbot's own bookkeeping, not the build's work
BOOKKEEPING = ("worker_preparation", "locks_acquire")
NAME, SUMMARY = 28, 44


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _seconds(step: dict, now: float) -> float:
    start = step.get("started_at")
    start = now if start is None else start
    return max(0.0, (step.get("complete_at") or now) - start)


class StepPrinter:
    """Feed it a build and its steps at every poll (`update`); it prints what is new."""

    def __init__(self, stream: TextIO | None = None, live: bool | None = None):
        self.stream = stream or sys.stdout
        if live is None:
            live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.live = live
        self.printed: set[tuple[int, int]] = set()  # (buildid, stepid)
        self.headers: set[int] = set()
        self.pending = ""  # the live line on screen, if any

    def _write(self, text: str) -> None:
        if self.pending:
            self.stream.write("\r\x1b[2K")
            self.pending = ""
        self.stream.write(text)
        self.stream.flush()

    def line(self, step: dict, indent: str, now: float) -> str:
        result = result_name(step.get("results"))
        mark = "" if not step.get("complete") or result == "SUCCESS" else f"  [{result}]"
        return (
            f"{indent}{_fit(step['name'], NAME):<{NAME}}  "
            f"{step.get('state_string') or '':<{SUMMARY}}"
            f" {_seconds(step, now):4.0f} s{mark}"
        )

    def header(self, build: dict, builder: str, indent: str) -> None:
        if build["buildid"] not in self.headers:
            self.headers.add(build["buildid"])
            self._write(f"{indent}{builder} #{build['number']}\n")

    def update(
        self,
        build: dict,
        steps: list[dict],
        builder: str = "",
        indent: str = "  ",
        now: float | None = None,
        children=None,
    ) -> dict | None:
        """Print the steps of `build` that finished since the last call, each after the steps
        of the builds it triggered (children(step) -> [(build, steps, builder name)]). Returns
        the step that is running, the innermost one (or None)."""
        now = time.time() if now is None else now
        if builder:
            self.header(build, builder, indent[:-2])
        for step in steps:
            key = (build["buildid"], step["stepid"])
            if step.get("hidden") or step["name"] in BOOKKEEPING or key in self.printed:
                continue
            if step.get("started_at") is None:
                return None  # steps run in order: the rest have not begun
            inner = None
            for child, child_steps, name in children(step) if children else ():
                inner = self.update(child, child_steps, name, indent + "    ", now) or inner
            if not step.get("complete"):
                return inner or {**step, "indent": indent}
            self.printed.add(key)
            if step.get("results") != SKIPPED:
                self._write(self.line(step, indent, now) + "\n")
        return None

    def show_running(self, step: dict | None, now: float | None = None) -> None:
        """On a terminal: the running step as a live line (with its time so far)."""
        if not self.live or step is None:
            return
        now = time.time() if now is None else now
        text = self.line(
            {**step, "state_string": step.get("state_string") or "…"}, step.get("indent", "  "), now
        )
        # one screen line, or the next \r would not clear all of it
        text = _fit(text, shutil.get_terminal_size().columns - 1)
        self._write(text)
        self.pending = text

    def finish(self) -> None:
        """Clear the live line, if one is on screen."""
        self._write("")


def follow_with_progress(master, build: dict, printer: StepPrinter, builder: str = "") -> None:
    """One poll of `build`: its finished steps, each after the steps of the builds it triggered
    (a Trigger step: CI's "publish to <distribution>"), indented below it."""
    steps = master.get(f"builds/{build['buildid']}/steps")["steps"]
    kids = None
    names: dict[int, str] = {}

    def children(step: dict) -> list:
        """The builds `step` triggered: those that began after it began, and before any later
        step began (Buildbot's times are whole seconds: a build triggered by the step after
        `step` may begin in the second `step` ended)."""
        nonlocal kids
        if kids is None:
            kids = triggered_builds(master, build["buildid"])
        begun_steps = [s for s in steps if s.get("started_at") is not None]
        found = []
        for child in kids:
            begun = child.get("started_at") or 0
            # the last step linking the child's request (CI's "package" waits for the package
            # build its "start package" began), else the last step begun before it
            owner = None
            linking = [candidate for candidate in begun_steps if _links(candidate, child)]
            if linking:
                owner = linking[-1]
                if owner.get("complete") and not child.get("complete"):
                    continue  # started, not waited for: the step that waits for it is to come
            for candidate in begun_steps if owner is None else ():
                if candidate["started_at"] <= begun:
                    owner = candidate
            if owner is None or owner["stepid"] != step["stepid"]:
                continue
            if child["builderid"] not in names:
                names[child["builderid"]] = master.get(f"builders/{child['builderid']}")[
                    "builders"
                ][0]["name"]
            found.append(
                (
                    child,
                    master.get(f"builds/{child['buildid']}/steps")["steps"],
                    names[child["builderid"]],
                )
            )
        return found

    running = printer.update(build, steps, builder=builder, children=children)
    if running is None:
        printer.finish()
    else:
        printer.show_running(running)


def _links(step: dict, build: dict) -> bool:
    """Whether `step` links the build request of `build` (Buildbot's `#/buildrequests/<id>`)."""
    suffix = f"/buildrequests/{build.get('buildrequestid')}"
    return any((url.get("url") or "").endswith(suffix) for url in step.get("urls") or [])


def triggered_builds(master, buildid: int) -> list[dict]:
    """The builds that build `buildid` triggered (through its buildsets' requests)."""
    found = []
    for buildset in master.get(f"buildsets?parent_buildid={int(buildid)}")["buildsets"]:
        for request in master.get(f"buildrequests?buildsetid={buildset['bsid']}")["buildrequests"]:
            found += master.get(f"builds?buildrequestid={request['buildrequestid']}&order=number")[
                "builds"
            ]
    return found
