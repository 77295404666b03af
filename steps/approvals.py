"""Approval steps (conveyor/approvals.py): a promotion into a distribution that needs approvals
records a request and ends; each `approve` build records one approval, and the one that
completes the count promotes what was requested, against the state the requester saw.

All three run on the repository's worker, under the repository lock, for a moment: they read
and append `<history>/<dist>.requests.jsonl`, which is served beside the history.
"""

from __future__ import annotations

import posixpath
from datetime import UTC
from datetime import datetime

from twisted.internet import defer

from buildbot.process import results

from conveyor import approvals
from conveyor import buildprops
from conveyor import release
from steps.promotion import rebuilt
from steps.repository import HistoryStep

APPROVE_COMMAND = "bin/conveyor approve {dist} {number}"


class RequestLog(HistoryStep):
    """Base: a step that reads and appends a distribution's request log."""

    @property
    def log_path(self) -> str:
        return posixpath.join(self.history_dir, f"{self.distribution}.requests.jsonl")

    def read_log(self):
        """-> (the file's text, its events)"""
        return self.read_lines(self.log_path)

    @defer.inlineCallbacks
    def append(self, text: str, events: list[dict]):
        added = "".join(approvals.log_line(e) for e in events)
        yield self.downloadFileContentToWorker(
            self.log_path, text + added, abandonOnFailure=True, mode=0o644
        )
        log = yield self.addLog("requests")
        yield log.addStdout(added)


class RequestApproval(RequestLog):
    """In a promote build into a distribution that needs approvals (`needed`): record the
    request (what ResolvePromotion resolved, against the state this build read under the lock)
    and end the build there (`AWAITING_APPROVAL`); it supersedes the pending one."""

    name = "approvals"
    description = "recording the request"
    descriptionDone = "request recorded"

    def __init__(self, needed: dict[str, int], expire_hours: int, **kwargs):
        self.needed = needed  # {distribution: approvals}
        self.expire_hours = expire_hours
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def run(self):
        text, events = yield self.read_log()
        number, now = self.build.number, datetime.now(UTC)
        plan = {
            "package": self.getProperty("package"),
            "version": self.getProperty(buildprops.PACKAGE_VERSION),
            "from": self.getProperty("from_dist"),
            "to": self.distribution,
            "basis_snapshot": self.getProperty("current_snapshot"),
            "basis_state": self.getProperty("basis_state"),
        }
        who = self.getProperty("owner") or ""
        added = approvals.closing_before(events, number, now)
        added.append(
            approvals.new_request(
                number,
                who,
                plan,
                self.needed[self.distribution],
                self.expire_hours,
                now,
                (yield self.build.getUrl()),
            )
        )
        yield self.append(text, added)
        request = approvals.requests(events + added)[number]
        self.setProperty(buildprops.AWAITING_APPROVAL, True, "RequestApproval")
        self.setProperty(buildprops.PENDING_REQUEST, request.as_json(now), "RequestApproval")
        self.summary = (
            f"waiting for approval: {approvals.summary(request)}; to approve: "
            + APPROVE_COMMAND.format(dist=self.distribution, number=number)
        )
        return results.SUCCESS


class RecordApproval(RequestLog):
    """An `approve` build (properties `distribution`, `request`; its owner approves): record
    the approval when the rules allow it (conveyor.approvals.check_approval); when it completes
    the count, set what the promotion steps after it read, as the request recorded them."""

    name = "approve"
    description = "recording the approval"
    descriptionDone = "approval"

    @defer.inlineCallbacks
    def run(self):
        text, events = yield self.read_log()
        now, who = datetime.now(UTC), self.getProperty("owner") or ""
        try:
            if (yield rebuilt(self)):
                raise release.ReleaseError(
                    "an approval is not rebuilt: approve with the approve button or "
                    "bin/conveyor approve"
                )
            number = int(self.getProperty("request") or 0)
            request = approvals.check_approval(events, number, who, now)
        except release.ReleaseError as exc:
            stale = approvals.open_request(events)
            if stale is not None and stale.expired(now):  # recorded, so the board says so
                expiry = {"event": "expired", "request": stale.number}
                yield self.append(text, [{**expiry, "when": now.isoformat(timespec="seconds")}])
            log = yield self.addLog("refused")
            yield log.addStderr(f"refused: {exc}\n")
            self.summary = f"refused: {exc}"
            return results.FAILURE
        event = {
            "event": "approved",
            "request": number,
            "who": who,
            "when": now.isoformat(timespec="seconds"),
            "build": (yield self.build.getUrl()),
        }
        yield self.append(text, [event])
        request.approvals.append(event)
        if request.missing():
            self.setProperty(buildprops.AWAITING_APPROVAL, True, "RecordApproval")
            self.setProperty(buildprops.PENDING_REQUEST, request.as_json(now), "RecordApproval")
            self.summary = f"{who} approved: {approvals.summary(request)}"
            return results.SUCCESS
        for name, value in (
            ("package", request.package),
            ("version", request.version),
            ("from_dist", request.source),
            ("to_dist", request.target),
            ("basis_snapshot", request.basis_snapshot),
            ("basis_state", request.basis_state),
            ("who", request.who),
            (buildprops.APPROVED_BY, request.approvers),
            (buildprops.APPROVAL_REQUEST, number),
        ):
            self.setProperty(name, value, "RecordApproval")
        self.summary = (
            f"{who} approved request {number}: approved by {', '.join(request.approvers)}, "
            f"promoting {request.package} {request.version} into {request.target}"
        )
        return results.SUCCESS


class CloseRequest(RequestLog):
    """The end of the approve build that promoted (or tried to): the request is `promoted`,
    or `refused` with the failing step's reason (ask again: the approvals were for a change
    that can no longer be made as it was seen)."""

    name = "close request"
    description = "closing the request"
    descriptionDone = "request closed"

    def __init__(self, **kwargs):
        kwargs.setdefault("alwaysRun", True)
        kwargs.setdefault("haltOnFailure", False)
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def run(self):
        text, events = yield self.read_log()
        number = self.getProperty(buildprops.APPROVAL_REQUEST)
        event = {
            "request": number,
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "build": (yield self.build.getUrl()),
        }
        if self.getProperty("recorded"):
            event["event"] = "promoted"
        else:
            event["event"] = "refused"
            event["why"] = self.failure() or "the promotion did not complete: see the build"
        yield self.append(text, [event])
        self.summary = f"request {number} {event['event']}"
        if event["event"] == "refused":
            self.summary += f": {event['why']}; ask again"
        return results.SUCCESS

    def failure(self) -> str | None:
        """The summary of the first step of this build that failed."""
        for step in self.build.executedSteps:
            if step is not self and step.results in (results.FAILURE, results.EXCEPTION):
                return step.getResultSummary().get("step")
        return None
