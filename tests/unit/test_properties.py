"""A build's properties in one transaction (master/properties.py), against Buildbot's own
database schema and its own `setBuildProperties` as the reference."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.trial import unittest

from buildbot.data import properties as upstream
from buildbot.process.properties import Properties
from buildbot.test import fakedb
from buildbot.test.fake import fakemaster
from buildbot.test.reactor import TestReactorMixin

from master.properties import OneTransactionProperties

OURS, THEIRS = 50, 51  # two builds: one written by master/properties.py, one by Buildbot


def props(**values: Any) -> Properties:
    p = Properties()
    for name, value in values.items():
        p.setProperty(name, value, "Test")
    return p


class OneTransactionTest(TestReactorMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def setUp(self) -> Any:
        self.setup_test_reactor()
        self.master = yield fakemaster.make_master(self, wantMq=True, wantDb=True, wantData=True)
        yield self.master.db.insert_test_data([
            fakedb.Master(id=92),
            fakedb.Worker(id=13, name="build"),
            fakedb.Builder(id=77, name="snowbird-ci"),
            fakedb.Buildset(id=98),
            fakedb.BuildRequest(id=11, buildsetid=98, builderid=77),
            fakedb.BuildRequest(id=12, buildsetid=98, builderid=77),
            fakedb.Build(id=OURS, number=1, builderid=77, buildrequestid=11, workerid=13,
                         masterid=92),
            fakedb.Build(id=THEIRS, number=2, builderid=77, buildrequestid=12, workerid=13,
                         masterid=92),
        ])
        self.service = OneTransactionProperties()
        yield self.service.setServiceParent(self.master)
        yield self.service.startService()  # (the fake master does not run its services)
        self.transactions = 0
        pool = self.master.db.pool
        real = pool.do_with_transaction

        def counted(thd: Any, *args: Any, **kw: Any) -> Any:
            self.transactions += 1
            return real(thd, *args, **kw)

        pool.do_with_transaction = counted

    def updates(self, buildid: int) -> list[dict]:
        return [body for key, body in self.master.mq.productions
                if key == ("builds", str(buildid), "properties", "update")]

    @defer.inlineCallbacks
    def both(self, p: Properties) -> Any:
        """Write `p` for OURS through the service and for THEIRS through Buildbot's own method;
        the transactions ours took."""
        before = self.transactions
        yield self.service.set_build_properties(OURS, p)
        ours = self.transactions - before
        yield upstream.Properties(self.master).setBuildProperties(THEIRS, p)
        return ours

    @defer.inlineCallbacks
    def test_a_builds_properties_go_in_one_transaction_as_buildbot_would_write_them(self) -> Any:
        p = props(event="push", branch="main", buildnumber=1, revision="a" * 40,
                  debs=["snowbird_1.0_amd64.deb"], ci={"number": 3, "url": "http://x/3"})
        took = yield self.both(p)
        self.assertEqual(took, 1)
        ours = yield self.master.db.builds.getBuildProperties(OURS)
        self.assertEqual(ours, (yield self.master.db.builds.getBuildProperties(THEIRS)))
        self.assertEqual(ours["debs"], (["snowbird_1.0_amd64.deb"], "Test"))
        self.assertEqual(self.updates(OURS), self.updates(THEIRS))
        self.assertEqual(len(self.updates(OURS)), 1)

    @defer.inlineCallbacks
    def test_only_what_changed_is_written_and_announced(self) -> Any:
        yield self.both(props(branch="main", got_revision="a" * 40))
        p = props(branch="main", got_revision="b" * 40, commit_time=1700000000)
        took = yield self.both(p)
        self.assertEqual(took, 1)
        self.assertEqual(self.updates(OURS)[-1], {"got_revision": ("b" * 40, "Test"),
                                                  "commit_time": (1700000000, "Test")})
        self.assertEqual(self.updates(OURS), self.updates(THEIRS))
        self.assertEqual((yield self.master.db.builds.getBuildProperties(OURS)),
                         (yield self.master.db.builds.getBuildProperties(THEIRS)))
        # nothing changed: no transaction, no message
        took = yield self.both(p)
        self.assertEqual(took, 0)
        self.assertEqual(len(self.updates(OURS)), 2)

    @defer.inlineCallbacks
    def test_a_property_that_cannot_be_stored_leaves_none_of_the_others_half_written(self) -> Any:
        # (Buildbot's own writes `ok` and then fails at `bad`: one transaction each)
        p = props(ok=1)
        p.properties["bad"] = (object(), "Test")  # (setProperty would refuse it)
        with self.assertRaises(TypeError):
            yield self.service.set_build_properties(OURS, p)
        self.assertEqual((yield self.master.db.builds.getBuildProperties(OURS)), {})
        self.assertEqual(self.updates(OURS), [])
        self.flushLoggedErrors(TypeError)  # (the database pool logs what failed in its thread)

    @defer.inlineCallbacks
    def test_the_master_uses_it_while_the_service_runs_and_buildbots_own_after(self) -> Any:
        self.assertEqual(self.master.data.updates.setBuildProperties,
                         self.service.set_build_properties)
        yield self.service.stopService()
        self.assertNotEqual(self.master.data.updates.setBuildProperties,
                            self.service.set_build_properties)
