"""From the master's data API to the facts a mail or a commit status tells (conveyor.mail).

Which step failed, the tail of its log, the build's changes and figures, and the previous build
of the same builder and branch.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.python import log

from buildbot.data import resultspec
from buildbot.process.results import CANCELLED
from buildbot.process.results import RETRY
from buildbot.process.results import SKIPPED
from buildbot.reporters import utils as reporter_utils

from conveyor import buildprops
from conveyor.mail import FIXED
from conveyor.mail import ChangeFacts
from conveyor.mail import MailFacts
from steps.buildlogs import failing_step
from steps.buildlogs import log_tail
from steps.buildlogs import step_summary

PREVIOUS_BUILDS_SEARCHED = 50


def prop(build: dict, name: str, default: Any = None) -> Any:
    value = (build.get("properties") or {}).get(name)
    return value[0] if value else default


@defer.inlineCallbacks
def gather_facts(master: Any, build: dict, project: str, kind: str) -> Any:
    """MailFacts of a finished build (with properties and steps, as the generator fetched it)."""
    changes = yield master.data.get(("builds", build["buildid"], "changes"))
    sourcestamps = (build.get("buildset") or {}).get("sourcestamps") or []
    revision = (
        prop(build, "got_revision")
        or prop(build, "revision")
        or next((ss.get("revision") for ss in sourcestamps if ss.get("revision")), None)
    )
    if isinstance(revision, dict):  # got_revision per codebase
        revision = next(iter(revision.values()), None)
    prev = build.get("prev_build")
    facts = MailFacts(
        project=project,
        branch=prop(build, "branch"),
        kind=kind,
        results=build["results"],
        previous_results=prev["results"] if prev else None,
        builder=build["builder"]["name"],
        number=build["number"],
        url=build.get("url")
        or reporter_utils.getURLForBuild(master, build["builderid"], build["number"]),
        revision=revision,
        changes=[
            ChangeFacts(
                revision=c.get("revision") or "",
                title=((c.get("comments") or "").strip().splitlines() or [""])[0],
                author=c.get("author") or "",
            )
            for c in (changes or [])
        ],
        tests_passed=prop(build, buildprops.TESTS_PASSED),
        tests_failed=prop(build, buildprops.TESTS_FAILED),
        tests_failed_names=list(prop(build, buildprops.TESTS_FAILED_NAMES) or []),
        tests_failures=list(prop(build, buildprops.TESTS_FAILURES) or []),
        coverage_percent=prop(build, buildprops.COVERAGE_PERCENT),
        coverage_threshold=prop(build, buildprops.COVERAGE_THRESHOLD),
        by_target=dict(prop(build, buildprops.BY_TARGET) or {}),
        lint_problems=prop(build, buildprops.LINT_PROBLEMS),
        lint_first=list(prop(build, buildprops.LINT_FIRST) or []),
        pull_request_url=prop(build, "pullrequesturl"),
    )
    step = failing_step(build)
    inner = prop(build, buildprops.BESIDE_FAILED_STEP)
    if step is not None and inner:
        # the CI build failed for a build beside it, a package or a tests build
        # (steps/beside.py; when a package failed first, the tests side stopped:
        # steps/failfast.py): tell of that build's failing step, as if it were the CI build's own
        step = (yield master.data.get(("steps", inner))) or step
    if step is not None and kind != FIXED:
        facts.failing_step = step["name"]
        facts.failing_step_summary = step_summary(step)
        try:
            facts.log_name, facts.log_tail = yield log_tail(master, step)
        except Exception as exc:  # a mail without the log beats no mail
            log.msg(f"conveyor mail: no log tail for {facts.builder} #{facts.number}: {exc!r}")
    return facts


@defer.inlineCallbacks
def previous_build(master: Any, build: dict) -> Any:
    """The last finished build of the same builder and branch before this one, not counting
    cancelled, skipped or retried builds; None if there is none."""
    branch = prop(build, "branch")
    candidates = yield master.data.get(
        ("builders", build["builderid"], "builds"),
        filters=[resultspec.Filter("number", "lt", [build["number"]])],
        order=["-number"],
        limit=PREVIOUS_BUILDS_SEARCHED,
    )
    for candidate in candidates or []:
        if not candidate.get("complete") or candidate.get("results") in (
            None,
            CANCELLED,
            SKIPPED,
            RETRY,
        ):
            continue
        props = yield master.data.get(("builds", candidate["buildid"], "properties"))
        if (props.get("branch") or [None])[0] == branch:
            return candidate
    return None
