"""One push, one build; each delivery recorded once.

The change hook (master/changes.py) records one change per commit of a push, as Buildbot's
GitHubEventHandler does, and marks them: `github_delivery` (the X-GitHub-Delivery id) on each,
`push_head` on the head commit's change only, which it records last. `PushScheduler` ignores
the other changes of a delivery and, on its head change, adds one buildset for all of them:
one build of the head commit, whose changes (and so the failure mail's authors) are every
commit of the push. Changes without `github_delivery` (`buildbot sendchange` …) are built one
by one, as by any SingleBranchScheduler.

`DeliveryLog` keeps the delivery ids the hook recorded for WINDOW seconds (7 days) in the
master's database (Buildbot's object state); `head_is_recorded` tells whether a head commit is
already a change of that project and branch (GitHub's "redeliver" sends a new id).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from twisted.internet import defer
from twisted.python import log

from buildbot.plugins import schedulers
from buildbot.util import datetime2epoch

from master import dispatch


DELIVERY = "github_delivery"
HEAD = "push_head"
WINDOW = 7 * 24 * 3600
PRUNE_EVERY = 3600


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


def head_is_recorded(master: Any, project: str, branch: str, revision: str) -> Any:
    """Deferred: is `revision` already a change of this project and branch?"""
    def thd(conn: Any) -> bool:
        table = master.db.model.changes
        query = sa.select(table.c.changeid).where(
            table.c.project == project, table.c.branch == branch,
            table.c.revision == revision).limit(1)
        return conn.execute(query).first() is not None
    return master.db.pool.do(thd)


def changes_of_delivery(master: Any, delivery: str, project: str, branch: str) -> Any:
    """Deferred: the ids of the changes of one delivery on this project and branch, in order."""
    def thd(conn: Any) -> list[int]:
        changes, props = master.db.model.changes, master.db.model.change_properties
        query = (sa.select(changes.c.changeid)
                 .select_from(changes.join(props, props.c.changeid == changes.c.changeid))
                 .where(props.c.property_name == DELIVERY,
                        props.c.property_value == json.dumps([delivery, "Change"]),
                        changes.c.project == project, changes.c.branch == branch)
                 .order_by(changes.c.changeid))
        return [row.changeid for row in conn.execute(query)]
    return master.db.pool.do(thd)


class DeliveryLog:
    """X-GitHub-Delivery ids recorded in the last WINDOW seconds, one object-state row each
    ("delivery:<id>" -> when), pruned at most every PRUNE_EVERY seconds."""

    def __init__(self, master: Any) -> None:
        self.master = master
        self._pruned = 0.0

    def _now(self) -> float:
        return self.master.reactor.seconds()

    def _objectid(self) -> Any:
        return self.master.db.state.getObjectId("conveyor-github-hook", "DeliveryLog")

    @defer.inlineCallbacks
    def seen(self, delivery: str) -> Any:
        objectid = yield self._objectid()
        when = yield self.master.db.state.getState(objectid, f"delivery:{delivery}", None)
        return isinstance(when, (int, float)) and self._now() - when < WINDOW

    @defer.inlineCallbacks
    def record(self, delivery: str) -> Any:
        objectid = yield self._objectid()
        yield self.master.db.state.setState(objectid, f"delivery:{delivery}", self._now())
        if self._now() - self._pruned >= PRUNE_EVERY:
            self._pruned = self._now()
            yield self.prune(objectid)

    def prune(self, objectid: int) -> Any:
        oldest = self._now() - WINDOW

        def thd(conn: Any) -> int:
            table = self.master.db.model.object_state
            rows = conn.execute(sa.select(table.c.name, table.c.value_json).where(
                table.c.objectid == objectid, table.c.name.startswith("delivery:"))).all()
            old = [row.name for row in rows if _older(row.value_json, oldest)]
            for start in range(0, len(old), 500):
                conn.execute(table.delete().where(table.c.objectid == objectid,
                                                  table.c.name.in_(old[start:start + 500])))
            conn.commit()
            return len(old)
        return self.master.db.pool.do(thd)


def _older(value_json: str, oldest: float) -> bool:
    try:
        when = json.loads(value_json)
    except ValueError:
        return True
    return not isinstance(when, (int, float)) or when < oldest


@defer.inlineCallbacks
def record(master: Any, deliveries: DeliveryLog, changes: list[dict[str, Any]], src: str,
           delivery: str, head: str | None) -> Any:
    """(status, answer) of the hook, under its lock: the changes and the delivery, unless the
    delivery, or the push's head on its project and branch, is already recorded."""
    if (yield deliveries.seen(delivery)):
        return 200, f"already received: delivery {delivery}; nothing recorded"
    project, branch = changes[-1]["project"], changes[-1]["branch"]
    if head is not None and (yield head_is_recorded(master, project, branch, head)):
        yield deliveries.record(delivery)
        return 200, (f"already received: {head} is already a change of {project} {branch}; "
                     "nothing recorded")
    for change in changes:
        if isinstance(change.get("when_timestamp"), datetime):
            change["when_timestamp"] = datetime2epoch(change["when_timestamp"])
        changeid = yield master.data.updates.addChange(src=src, **change)
        log.msg(f"injected change {changeid}")
    yield deliveries.record(delivery)
    return 202, f"{len(changes)} change found"


class PushScheduler(dispatch.StartsAtOnce, schedulers.SingleBranchScheduler):
    """SingleBranchScheduler that builds a push once: on its head change, with all its changes.
    Pushes never merge (the CI builders' collapseRequests is false)."""

    def gotChange(self, change: Any, important: bool) -> Any:
        delivery = change.properties.getProperty(DELIVERY)
        if delivery is None:
            return super().gotChange(change, important)
        if not important or not change.properties.getProperty(HEAD):
            return defer.succeed(None)  # built with its push's head
        return self._build_push(change, delivery)

    @defer.inlineCallbacks
    def _build_push(self, change: Any, delivery: str) -> Any:
        ids = yield changes_of_delivery(self.master, delivery, change.project, change.branch)
        ids = sorted({i for i in ids if i <= change.number} | {change.number})
        log.msg(f"{self.name}: one build for push {delivery} (head {change.revision[:12]}, "
                f"{len(ids)} change(s))")
        yield self.addBuildsetForChanges(reason=self.reason, changeids=ids,
                                         priority=self.priority)

