"""A build's properties written in one database transaction.

Buildbot 4.3 writes a build's properties (`data.properties.setBuildProperties`: when the build
starts, and after each step that set some) one property per transaction: a thread-pool round
trip and a commit each, which on SQLite (WAL) is an fsync. A build starts with 20–30 properties
(its change's, its scheduler's, the trigger's), so each of the three builds between a push and
staging (CI, package, publish) spent 0.1–0.25 s of its start there, on the push's critical
path. This service gives `master.data.updates.setBuildProperties` the same work in one
transaction: the same rows, the same update message, after the same comparison with what is
stored. The upstream method comes back when the service stops.

Buildbot is pinned (requirements.txt); tests/unit/test_properties.py runs this against its own
database schema and compares the result with upstream's.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from buildbot.util import service
from twisted.internet import defer


def _write(db: Any, buildid: int, changed: dict) -> defer.Deferred:
    """Insert or update each (name → (value, source)) of `changed`, in one transaction: what
    `db.builds.setBuildProperty` does for one."""
    table = db.model.build_properties
    for name, (_, source) in changed.items():
        db.builds.checkLength(table.c.name, name)
        db.builds.checkLength(table.c.source, source)

    def thd(conn: Any) -> None:
        for name, (value, source) in changed.items():
            where = sa.and_(table.c.buildid == buildid, table.c.name == name)
            stored = conn.execute(sa.select(table.c.value, table.c.source).where(where)).fetchone()
            value_js = json.dumps(value)
            if stored is None:
                conn.execute(table.insert(), {"buildid": buildid, "name": name,
                                              "value": value_js, "source": source})
            elif stored.value != value_js or stored.source != source:
                conn.execute(table.update().where(where), {"value": value_js, "source": source})

    return db.pool.do_with_transaction(thd)


class OneTransactionProperties(service.BuildbotService):
    """Installs `set_build_properties` as the master's `setBuildProperties` while it runs."""

    name = "conveyor-build-properties"

    def checkConfig(self) -> None:
        pass

    @defer.inlineCallbacks
    def startService(self) -> Any:
        updates = self.master.data.updates
        self._upstream = updates.setBuildProperties
        updates.setBuildProperties = self.set_build_properties
        yield super().startService()

    @defer.inlineCallbacks
    def stopService(self) -> Any:
        self.master.data.updates.setBuildProperties = self._upstream
        yield super().stopService()

    @defer.inlineCallbacks
    def set_build_properties(self, buildid: int, properties: Any) -> Any:
        """Upstream's `setBuildProperties`, with one transaction for all that changed."""
        stored = yield self.master.data.get(("builds", str(buildid), "properties"))
        real = properties.getProperties()
        rendered = yield real.render(real.asDict())
        changed = {name: pair for name, pair in rendered.items()
                   if not (name in stored and stored[name] == pair)}
        if changed:
            yield _write(self.master.db, buildid, changed)
            yield self.master.data.rtypes.property.generateUpdateEvent(buildid, changed)
