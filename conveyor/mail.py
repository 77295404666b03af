"""What Conveyor's mails and commit statuses say: facts in, subject, plain text and HTML out.

A failure/fix mail is made from a `MailFacts` record (filled by master/reporters/ from the
master's data API), a release mail from a `ReleaseFacts` record (the promote build's
properties). The bodies are Jinja templates in conveyor/templates/, as Buildbot's own
MessageFormatter renders its mails; everything here is plain Python, testable without a master.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import jinja2

from conveyor.results import FAILING
from conveyor.results import PASSING
from conveyor.results import format_percent
from conveyor.results import result_name

_TEMPLATES = jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates")
_TEXT = jinja2.Environment(
    loader=_TEMPLATES,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    autoescape=False,
    undefined=jinja2.StrictUndefined,
)
_HTML = jinja2.Environment(
    loader=_TEMPLATES,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)

GITHUB_DESCRIPTION_MAX = 140  # GitHub refuses longer commit status descriptions

# what a mail says happened
FAILED = "failed"
STILL_FAILING = "still failing"
FIXED = "fixed"


def mail_kind(results: int | None, previous: int | None, every_failure: bool) -> str | None:
    """Whether a finished build is worth a mail, and which: FAILED (the first failure, also of a
    builder's very first build), STILL_FAILING (only with every_failure), FIXED (passing after a
    failure), or None: green after green, cancelled, skipped, retried."""
    if results in FAILING:
        if previous in FAILING:
            return STILL_FAILING if every_failure else None
        return FAILED
    if results in PASSING and previous in FAILING:
        return FIXED
    return None


def display_branch(branch: str | None) -> str:
    """'main' stays 'main'; 'refs/pull/12/head' becomes 'PR #12'."""
    m = re.match(r"^refs/pull/(\d+)/(?:head|merge)$", branch or "")
    if m:
        return f"PR #{m.group(1)}"
    return branch or "(no branch)"


@dataclass
class ChangeFacts:
    revision: str
    title: str
    author: str


@dataclass
class MailFacts:
    """Everything a failure/fix mail says, gathered from one finished build."""

    project: str
    branch: str | None
    kind: str  # FAILED, STILL_FAILING or FIXED
    results: int
    previous_results: int | None
    builder: str
    number: int
    url: str
    revision: str | None = None
    changes: list[ChangeFacts] = field(default_factory=list)
    failing_step: str | None = None
    failing_step_summary: str | None = None
    tests_passed: int | None = None
    tests_failed: int | None = None
    tests_failed_names: list[str] = field(default_factory=list)
    tests_failures: list[dict] = field(default_factory=list)  # [{name, text}] from the JUnit XML
    coverage_percent: float | None = None
    coverage_threshold: float | None = None
    by_target: dict = field(default_factory=dict)  # {release: {passed, failed, coverage}}
    lint_problems: int | None = None
    lint_first: list[str] = field(default_factory=list)  # "file:line:col: code message"
    log_name: str | None = None
    log_tail: list[str] = field(default_factory=list)
    pull_request_url: str | None = None

    @property
    def short_revision(self) -> str:
        return (self.revision or "")[:7] or "HEAD"

    @property
    def result(self) -> str:
        return result_name(self.results)


def mail_subject(facts: MailFacts) -> str:
    """'[snowbird] main FAILURE 3f2a9c1: tests failed' — one line, no commit text in it."""
    if facts.kind == FIXED:
        reason = "fixed"
    else:
        what = facts.failing_step or "build"
        reason = f"{what} still failing" if facts.kind == STILL_FAILING else f"{what} failed"
    subject = (
        f"[{facts.project}] {display_branch(facts.branch)} {facts.result} "
        f"{facts.short_revision}: {reason}"
    )
    return " ".join(subject.split())  # never a newline (a header), whatever the names hold


def _headline(facts: MailFacts) -> str:
    where = f"{facts.project} {display_branch(facts.branch)}"
    build = f"{facts.builder} #{facts.number}"
    was = (
        f" (the previous build: {result_name(facts.previous_results)})"
        if facts.previous_results is not None
        else ""
    )
    if facts.kind == FIXED:
        return f"{where} is fixed: build {build} is {facts.result} at {facts.short_revision}{was}."
    if facts.kind == STILL_FAILING:
        return (
            f"{where} is still broken: build {build} is {facts.result} at "
            f"{facts.short_revision}{was}."
        )
    return f"{where} is broken: build {build} is {facts.result} at {facts.short_revision}{was}."


def _rows(facts: MailFacts) -> list[tuple[str, list[str]]]:
    """(label, lines) in the order both bodies show them."""
    rows: list[tuple[str, list[str]]] = [("Build", [facts.url])]
    if facts.pull_request_url:
        rows.append(("Pull request", [facts.pull_request_url]))
    # Buildbot's changes of a build: its own and those since the last green build (newest first)
    own = [c for c in facts.changes if facts.revision and c.revision == facts.revision]
    own = own or facts.changes[:1]
    earlier = [c for c in facts.changes if c not in own]
    if own:
        rows.append(("Commit", [f"{c.revision[:7]} {c.title} ({c.author})" for c in own]))
    elif facts.revision:
        rows.append(("Commit", [facts.short_revision]))
    if earlier:
        rows.append(
            ("Since last green", cut([f"{c.revision[:7]} {c.title} ({c.author})" for c in earlier]))
        )
    if facts.failing_step and facts.kind != FIXED:
        summary = f": {facts.failing_step_summary}" if facts.failing_step_summary else ""
        rows.append(("Failed step", [f"{facts.failing_step}{summary}"]))
    if facts.by_target:  # a line per target release: what its Python gave
        rows.append(("Tests", per_target(facts.by_target, tests_line)))
    elif facts.tests_passed is not None or facts.tests_failed is not None:
        rows.append(
            ("Tests", [f"{facts.tests_passed or 0} passed, {facts.tests_failed or 0} failed"])
        )
    if facts.tests_failed_names and facts.kind != FIXED:
        names = list(facts.tests_failed_names)
        if facts.tests_failed and facts.tests_failed > len(names):
            names.append(f"… and {facts.tests_failed - len(names)} more")
        rows.append(("Failing tests", names))
    if facts.coverage_percent is not None:
        threshold = (
            f" (threshold {format_percent(facts.coverage_threshold)}%)"
            if facts.coverage_threshold is not None
            else ""
        )
        lines = [f"{format_percent(facts.coverage_percent)}%{threshold}"]
        if facts.by_target:
            lines = per_target(facts.by_target, coverage_line) + (
                [f"threshold {format_percent(facts.coverage_threshold)}%"]
                if facts.coverage_threshold is not None
                else []
            )
        rows.append(("Coverage", lines))
    if facts.lint_problems:
        first = list(facts.lint_first) if facts.kind != FIXED else []
        rows.append(
            (
                "Lint",
                [f"{facts.lint_problems} problem(s)" + (", the first:" if first else "")] + first,
            )
        )
    return rows


def tests_line(figures: dict) -> str | None:
    if "passed" not in figures and "failed" not in figures:
        return None
    return f"{figures.get('passed', 0)} passed, {figures.get('failed', 0)} failed"


def coverage_line(figures: dict) -> str | None:
    coverage = figures.get("coverage")
    return None if coverage is None else f"{format_percent(coverage)}%"


def per_target(by_target: dict, line) -> list[str]:
    """'bookworm: 12 passed, 0 failed' …: each target release's figures, in build order (a
    release whose step did not get that far says so)."""
    return [f"{release}: {line(figures) or 'not run'}" for release, figures in by_target.items()]


LIST_MAX = 25  # entries of a list in a mail (commits since the last green, released commits)


def cut(items: list[str], limit: int = LIST_MAX) -> list[str]:
    """The first `limit` items, and a line that says how many more there are."""
    if len(items) <= limit:
        return list(items)
    return [*items[:limit], f"… and {len(items) - limit} more"]


FAILURE_LINES = 30  # lines of each failing test's text in a mail (the rest: the build's log)


def _failures(facts: MailFacts) -> list[tuple[str, list[str]]]:
    """(test name, lines of its failure text) of each failing test, as the JUnit XML gave it."""
    if facts.kind == FIXED:
        return []
    result = []
    for failure in facts.tests_failures:
        if not isinstance(failure, dict) or not failure.get("text"):
            continue
        lines = str(failure["text"]).splitlines()
        if len(lines) > FAILURE_LINES:
            lines = lines[:FAILURE_LINES] + [
                f'… ({len(lines) - FAILURE_LINES} more lines in the build\'s log "failures")'
            ]
        result.append((str(failure.get("name") or "?"), lines))
    return result


def _log_title(facts: MailFacts) -> str:
    return f"The last {len(facts.log_tail)} lines of {facts.failing_step} ({facts.log_name}):"


def _context(facts: MailFacts) -> dict[str, Any]:
    rows = _rows(facts)
    return {
        "headline": _headline(facts),
        "rows": rows,
        "width": max(len(label) for label, _ in rows) + 2,
        "log_tail": facts.log_tail if facts.kind != FIXED else [],
        "failures": _failures(facts),
        "log_title": _log_title(facts),
        "color": {FAILED: "#b00020", STILL_FAILING: "#b00020", FIXED: "#1b5e20"}[facts.kind],
    }


def render_text(facts: MailFacts) -> str:
    return _TEXT.get_template("failure.txt").render(_context(facts))


def render_html(facts: MailFacts) -> str:
    return _HTML.get_template("failure.html").render(_context(facts))


def render_mail(facts: MailFacts) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of a failure/fix mail."""
    return mail_subject(facts), render_text(facts), render_html(facts)


def status_description(
    results: int | None,
    failing_step: str | None,
    step_summary: str | None,
    tests_passed: int | None,
    tests_failed: int | None,
    coverage_percent: float | None,
    by_target: dict | None = None,
) -> str:
    """The one-line description of a finished build's GitHub commit status (≤ 140 chars); with
    target releases, each one's tests: 'success: bookworm 12 passed, trixie 12 passed, …'."""
    parts = []
    if results in PASSING:
        ran = {r: f for r, f in (by_target or {}).items() if "passed" in f}
        if ran:
            parts += [f"{release} {figures['passed']} passed" for release, figures in ran.items()]
        elif tests_passed is not None:
            parts.append(f"{tests_passed} passed")
        if coverage_percent is not None:
            parts.append(f"coverage {format_percent(coverage_percent)}%")
        text = (
            f"{result_name(results).lower()}: {', '.join(parts)}"
            if parts
            else result_name(results).lower()
        )
    elif results in FAILING and failing_step:
        text = f"{failing_step} failed"
        if step_summary:
            text += f": {step_summary}"
    else:
        text = result_name(results).lower()
    if len(text) > GITHUB_DESCRIPTION_MAX:
        text = text[: GITHUB_DESCRIPTION_MAX - 1] + "…"
    return text


@dataclass
class ReleaseFacts:
    """What a release mail says: a version reached the end of its path."""

    package: str
    version: str
    previous: str | None
    source: str
    target: str
    who: str
    url: str
    commits: list[str] = field(default_factory=list)
    approved_by: list[str] = field(default_factory=list)  # conveyor/approvals.py


def render_release(facts: ReleaseFacts) -> tuple[str, str]:
    """(subject, plain text) of the mail that tells the team a version reached production."""
    subject = f"[conveyor] {facts.package} {facts.version} released to {facts.target}"
    body = _TEXT.get_template("release.txt").render(
        package=facts.package,
        version=facts.version,
        previous=facts.previous,
        source=facts.source,
        target=facts.target,
        who=facts.who or "?",
        url=facts.url,
        commits=cut(facts.commits),
        count=len(facts.commits),
        approved_by=facts.approved_by,
    )
    return " ".join(subject.split()), body


def render_request(request: dict, url: str, board_url: str) -> tuple[str, str]:
    """(subject, plain text) of the mail that tells the team a promotion into production waits
    for approvals (`request`: conveyor.approvals.Request.as_json)."""
    subject = (
        f"[conveyor] {request['package']} {request['version']} waits for approval into "
        f"{request['to']}: {len(request['approved_by'])} of {request['needed']} "
        f"(request {request['request']})"
    )
    body = _TEXT.get_template("request.txt").render(
        r=request,
        url=url,
        board=board_url,
        others=[request["requested_by"], *request["approved_by"]],
    )
    return " ".join(subject.split())[:200], body


def render_publish_failure(
    project: str, version: str | None, distribution: str, commit: str | None, reason: str, url: str
) -> tuple[str, str]:
    """(subject, plain text) of the mail that tells the admins a publish failed for good."""
    short = reason.split(" (")[0].split(": ")[0]  # its first words: the body has the rest
    subject = f"[conveyor] publish of {project} {version or ''} into {distribution} failed: {short}"
    body = _TEXT.get_template("publish_failed.txt").render(
        project=project,
        version=version,
        distribution=distribution,
        commit=commit,
        reason=reason,
        url=url,
    )
    return " ".join(subject.split())[:200], body
