"""One push, one build; each push built once, and none lost.

The change hook (master/changes.py) records one change per commit of a push, as Buildbot's
GitHubEventHandler does, and marks them: `github_delivery` (the X-GitHub-Delivery id) on each;
on the head commit's change, which it records last, `push_head`, `push_changes` (the ids of
the push's other changes) and, for a force-push, `push_forced`. `PushScheduler` ignores the
other changes of a delivery and, on its head change, adds one buildset for all of them: one
build of the head commit, whose changes (and so the failure mail's authors) are every commit of
the push. Changes without
`github_delivery` (`buildbot sendchange` …) are built one by one, as by any
SingleBranchScheduler.

Whether a push is recorded (`verdict`, under the hook's lock):
- a push whose head the branch was last built at, or that is being built, or that an earlier
  build already covers, is "already received" (a replay, GitHub's "redeliver");
- a push whose scheduler is turned off is refused (409) and nothing is recorded: GitHub shows
  the failed delivery, and its "redeliver" builds it once the scheduler is on again;
- a push recorded but never built (the master stopped in between) is recorded again;
- a force-push back to a commit built before is built again, as a new version: staging then
  serves what the branch holds.

`PushLog` is Conveyor's own record in Buildbot's object state, written in place and so never
needing a DELETE: the delivery ids of the last WINDOW seconds (one value per day, BUCKETS days
round), per project and branch the head last recorded and the head last built. Buildbot's
changes are read through the data API only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from twisted.internet import defer
from twisted.python import log

from buildbot.data.resultspec import Filter
from buildbot.plugins import schedulers
from buildbot.util import datetime2epoch

from conveyor import buildprops
from master import dispatch

DELIVERY = "github_delivery"
HEAD = "push_head"
CHANGES = "push_changes"
# on the head change of a force-push: publish it even if seen before
FORCED = buildprops.PUSH_FORCED
DAY = 24 * 3600
BUCKETS = 8
WINDOW = 7 * DAY
IN_FLIGHT = 60  # seconds: a push recorded this recently and not yet built is being built


def mark(changes: list[dict[str, Any]], delivery: str, head: str | None) -> list[dict[str, Any]]:
    """The changes with `github_delivery` set; with a `head` revision (a push), the head's
    change, last, with `push_head`. A commit listed twice is recorded once."""
    if head is not None:
        unique = {c["revision"]: c for c in changes if c["revision"] != head}
        tail = [c for c in changes if c["revision"] == head][-1:]
        changes = list(unique.values()) + tail
    for change in changes:
        change.setdefault("properties", {})[DELIVERY] = delivery
        if head is not None and change["revision"] == head:
            change["properties"][HEAD] = True
    return changes


class PushLog:
    """Conveyor's record of deliveries and pushes: one object of Buildbot's object state.

    - "deliveries:<day % BUCKETS>": {"day": day, "ids": {delivery id: when}}, overwritten when
      its day comes round again;
    - "recorded:<project> <branch>": the head change the hook recorded last (change id,
      revision, when);
    - "built:<project> <branch>": the head change PushScheduler built last (change id,
      revision, when).
    """

    def __init__(self, master: Any) -> None:
        self.master = master

    def _now(self) -> float:
        return self.master.reactor.seconds()

    def _objectid(self) -> Any:
        return self.master.db.state.getObjectId("conveyor-github-hook", "PushLog")

    @defer.inlineCallbacks
    def _get(self, name: str) -> Any:
        objectid = yield self._objectid()
        value = yield self.master.db.state.getState(objectid, name, None)
        return value if isinstance(value, dict) else None

    @defer.inlineCallbacks
    def _set(self, name: str, value: dict[str, Any]) -> Any:
        objectid = yield self._objectid()
        yield self.master.db.state.setState(objectid, name, value)

    @defer.inlineCallbacks
    def seen(self, delivery: str) -> Any:
        """Was this delivery id recorded in the last WINDOW seconds?"""
        today = int(self._now() // DAY)
        for day in range(today - BUCKETS + 1, today + 1):
            bucket = yield self._get(f"deliveries:{day % BUCKETS}")
            if bucket and bucket.get("day") == day:
                when = (bucket.get("ids") or {}).get(delivery)
                if isinstance(when, (int, float)) and self._now() - when < WINDOW:
                    return True
        return False

    @defer.inlineCallbacks
    def record(self, delivery: str) -> Any:
        day = int(self._now() // DAY)
        name = f"deliveries:{day % BUCKETS}"
        bucket = yield self._get(name)
        if not bucket or bucket.get("day") != day:
            bucket = {"day": day, "ids": {}}  # that day came round again: the old ids go
        bucket["ids"][delivery] = self._now()
        yield self._set(name, bucket)

    def head(self, kind: str, project: str, branch: str) -> Any:
        """Deferred: the head change `kind` ("recorded" or "built") last, or None."""
        return self._get(f"{kind}:{project} {branch}")

    def set_head(
        self, kind: str, project: str, branch: str, change: int | None, revision: str
    ) -> Any:
        return self._set(
            f"{kind}:{project} {branch}",
            {"change": change, "revision": revision, "when": self._now()},
        )


@defer.inlineCallbacks
def newest_change(master: Any, project: str, branch: str, revision: str) -> Any:
    """Deferred: the newest change of `revision` on this project and branch (the data API,
    filtered in the database), or None."""
    found = yield master.data.get(
        ("changes",),
        filters=[
            Filter("project", "eq", [project]),
            Filter("branch", "eq", [branch]),
            Filter("revision", "eq", [revision]),
        ],
        order=["-changeid"],
        limit=1,
    )
    return found[0] if found else None


@defer.inlineCallbacks
def scheduler_refusal(master: Any, name: str | None) -> Any:
    """Deferred: why a push for scheduler `name` cannot be built now, or None."""
    if name is None:
        return None
    found = yield master.data.get(("schedulers",), filters=[Filter("name", "eq", [name])])
    if found and found[0].get("enabled"):
        return None
    state = "turned off" if found else "not running"
    return (
        f"the {name} scheduler is {state}: nothing recorded. Redeliver this push from "
        "GitHub (Settings > Webhooks > Recent Deliveries) once it is turned on again"
    )


@defer.inlineCallbacks
def verdict(
    master: Any,
    pushlog: PushLog,
    project: str,
    branch: str,
    delivery: str,
    head: str | None,
    forced: bool,
) -> Any:
    """Deferred: None to record this delivery, or the (status, answer) that records nothing."""
    if head is None:  # a pull request: once per delivery id
        if (yield pushlog.seen(delivery)):
            return 200, f"already received: delivery {delivery}; nothing recorded"
        return None
    earlier = yield newest_change(master, project, branch, head)
    if earlier is None:
        return None
    said = (
        f"delivery {delivery}"
        if (yield pushlog.seen(delivery))
        else f"{head} is already a change of {project} {branch}"
    )
    built = (yield pushlog.head("built", project, branch)) or {}
    recorded = (yield pushlog.head("recorded", project, branch)) or {}
    if (built.get("change") or 0) >= earlier["changeid"]:  # built, or a newer push was
        if not forced or built.get("revision") == head:
            return 200, f"already received: {said}; nothing recorded"
        log.msg(f"force-push of {project} {branch} back to {head[:12]}: built again")
        return None
    if (
        recorded.get("change") == earlier["changeid"]
        and pushlog._now() - recorded.get("when", 0) < IN_FLIGHT
    ):
        return 200, f"already received: {said}; it is being built"
    log.msg(f"{project} {branch} {head[:12]} was recorded but never built: recorded again")
    return None


@defer.inlineCallbacks
def record(
    master: Any,
    pushlog: PushLog,
    changes: list[dict[str, Any]],
    src: str,
    delivery: str,
    head: str | None,
    forced: bool = False,
    scheduler: str | None = None,
) -> Any:
    """(status, answer) of the hook, under its lock: the changes and the delivery, unless
    `verdict` or the scheduler (`scheduler_refusal`) says otherwise."""
    project, branch = changes[-1]["project"], changes[-1]["branch"]
    answer = yield verdict(master, pushlog, project, branch, delivery, head, forced)
    if answer is not None:
        return answer
    refusal = yield scheduler_refusal(master, scheduler)
    if refusal is not None:
        return 409, refusal
    ids: list[int] = []
    changeid = None
    for change in changes:
        if isinstance(change.get("when_timestamp"), datetime):
            change["when_timestamp"] = datetime2epoch(change["when_timestamp"])
        if head is not None and change["properties"].get(HEAD):
            change["properties"][CHANGES] = list(ids)
            if forced:
                change["properties"][FORCED] = True
        changeid = yield master.data.updates.addChange(src=src, **change)
        ids.append(changeid)
        log.msg(f"injected change {changeid}")
    if head is not None:
        yield pushlog.set_head("recorded", project, branch, changeid, head)
    yield pushlog.record(delivery)
    return 202, f"{len(changes)} change found"


class PushScheduler(dispatch.StartsAtOnce, schedulers.SingleBranchScheduler):
    """SingleBranchScheduler that builds a push once: on its head change, with all its changes.
    Pushes never merge (the CI builders' collapseRequests is false)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pushlog: PushLog | None = None

    def gotChange(self, change: Any, important: bool) -> Any:
        delivery = change.properties.getProperty(DELIVERY)
        if delivery is None:
            return super().gotChange(change, important)
        if not important or not change.properties.getProperty(HEAD):
            return defer.succeed(None)  # built with its push's head
        return self._build_push(change, delivery)

    @defer.inlineCallbacks
    def _build_push(self, change: Any, delivery: str) -> Any:
        listed = change.properties.getProperty(CHANGES) or []
        ids = sorted(
            {i for i in listed if isinstance(i, int) and i < change.number} | {change.number}
        )
        log.msg(
            f"{self.name}: one build for push {delivery} (head {change.revision[:12]}, "
            f"{len(ids)} change(s))"
        )
        yield self.addBuildsetForChanges(reason=self.reason, changeids=ids, priority=self.priority)
        if self.pushlog is None:
            self.pushlog = PushLog(self.master)
        yield self.pushlog.set_head(
            "built", change.project, change.branch, change.number, change.revision
        )
