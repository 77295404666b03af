"""One push, one build; each delivery recorded once (master/pushes.py, through the hook)."""

from __future__ import annotations

import copy
import json
from typing import Any

from twisted.internet import defer
from twisted.trial import unittest

from buildbot.changes.filter import ChangeFilter
from buildbot.test import fakedb
from buildbot.test.reactor import TestReactorMixin
from buildbot.test.util.scheduler import SchedulerMixin

from master import pushes
from tests.unit.test_hook import GitHubHookTest
from tests.unit.test_hook import fixture
from tests.unit.test_hook import make_request

SHAS = [f"{i:x}" * 40 for i in range(1, 4)]  # 111…, 222…, 333…


def pushed(first: int, last: int) -> dict:
    """A push of SHAS[first..last], its head the last."""
    data = three_commit_push(head=SHAS[last])
    data["commits"] = data["commits"][first : last + 1]
    return data


def three_commit_push(head: str = SHAS[-1]) -> dict:
    data = json.loads(fixture("push-with-new-branch.payload.json"))
    commits = []
    for sha in SHAS:
        commit = copy.deepcopy(data["head_commit"])
        commit.update(
            id=sha,
            message=f"commit {sha[:3]}",
            author={"name": f"Author {sha[0]}", "email": f"a{sha[0]}@example.com"},
        )
        commits.append(commit)
    head_commit = next((c for c in commits if c["id"] == head), None) or dict(
        copy.deepcopy(commits[-1]), id=head
    )
    data.update(created=False, before=SHAS[0], after=head, commits=commits, head_commit=head_commit)
    return data


class DeliveryTest(GitHubHookTest):
    @defer.inlineCallbacks
    def push(self, data: dict | bytes, delivery: bytes | None = b"d-1") -> Any:
        body = data if isinstance(data, bytes) else json.dumps(data).encode()
        request = make_request(b"push", body, headers={b"X-GitHub-Delivery": delivery})
        yield request.test_render(self.hook)
        return request

    @defer.inlineCallbacks
    def test_each_commit_is_a_change_the_head_last_and_marked(self) -> Any:
        request = yield self.push(three_commit_push(head=SHAS[1]))
        self.assertEqual(request.written, b"3 change found")
        self.assertEqual([c["revision"] for c in self.changes], [SHAS[0], SHAS[2], SHAS[1]])
        self.assertEqual(
            [c["properties"].get("push_head") for c in self.changes], [None, None, True]
        )
        self.assertEqual({c["properties"]["github_delivery"] for c in self.changes}, {"d-1"})
        # the properties Buildbot's handler sets stay; each change keeps its own author
        self.assertEqual(self.changes[0]["properties"]["event"], "push")
        self.assertIn("github_distinct", self.changes[0]["properties"])
        self.assertEqual(
            [c["author"] for c in self.changes],
            ["Author 1 <a1@example.com>", "Author 3 <a3@example.com>", "Author 2 <a2@example.com>"],
        )

    @defer.inlineCallbacks
    def test_a_head_not_listed_in_commits_is_built_too(self) -> Any:
        request = yield self.push(three_commit_push(head="f" * 40))
        self.assertEqual(request.written, b"4 change found")
        self.assertEqual(self.changes[-1]["revision"], "f" * 40)
        self.assertTrue(self.changes[-1]["properties"]["push_head"])

    @defer.inlineCallbacks
    def test_a_commit_listed_twice_is_one_change(self) -> Any:
        data = three_commit_push()
        data["commits"] = data["commits"] + data["commits"][:1]
        request = yield self.push(data)
        self.assertEqual(request.written, b"3 change found")

    def built(self, revision: str = SHAS[-1]) -> Any:
        """What PushScheduler records once it has built the push (the newest change of
        `revision`)."""
        change = max(
            (c for c in self.changes_in_db() if c.revision == revision), key=lambda c: c.changeid
        )
        return pushes.PushLog(self.master).set_head(
            "built", "codertocat/hello-world", "master", change.changeid, revision
        )

    def changes_in_db(self) -> list[Any]:
        return self.successResultOf(self.master.db.changes.getChanges())

    @defer.inlineCallbacks
    def test_the_head_change_lists_the_other_changes_of_its_push(self) -> Any:
        yield self.push(three_commit_push())
        ids = sorted(c.changeid for c in self.changes_in_db())
        head = max(self.changes_in_db(), key=lambda c: c.changeid)
        self.assertEqual(head.properties["push_changes"], (ids[:-1], "Change"))

    @defer.inlineCallbacks
    def test_the_same_delivery_twice_is_recorded_once(self) -> Any:
        first = yield self.push(three_commit_push())
        again = yield self.push(three_commit_push())
        self.assertEqual(first.written, b"3 change found")
        again.setResponseCode.assert_called_with(200)
        self.assertEqual(again.written, b"already received: delivery d-1; it is being built")
        yield self.built()
        again = yield self.push(three_commit_push())
        self.assertEqual(again.written, b"already received: delivery d-1; nothing recorded")
        self.assertEqual(len(self.changes), 3)

    @defer.inlineCallbacks
    def test_concurrent_copies_of_a_delivery_record_once(self) -> Any:
        body = json.dumps(three_commit_push()).encode()
        requests = [
            make_request(b"push", body, headers={b"X-GitHub-Delivery": b"d-2"}) for _ in range(3)
        ]
        yield defer.gatherResults([r.test_render(self.hook) for r in requests])
        self.assertEqual(
            sorted(r.written.split(b":")[0] for r in requests),
            [b"3 change found", b"already received", b"already received"],
        )
        self.assertEqual(len(self.changes), 3)

    @defer.inlineCallbacks
    def test_without_a_delivery_id_the_same_body_is_recorded_once(self) -> Any:
        yield self.push(three_commit_push(), delivery=None)
        yield self.built()
        again = yield self.push(three_commit_push(), delivery=None)
        self.assertTrue(again.written.startswith(b"already received: delivery sha256-"))
        self.assertEqual(len(self.changes), 3)

    @defer.inlineCallbacks
    def test_redelivery_of_a_head_already_built_is_already_received(self) -> Any:
        # a redelivery under a new delivery id: the head is a change already, and built
        yield self.push(three_commit_push())
        yield self.built()
        request = yield self.push(three_commit_push(), delivery=b"d-new")
        request.setResponseCode.assert_called_with(200)
        self.assertEqual(
            request.written,
            (
                f"already received: {SHAS[-1]} is already a change of codertocat/hello-world "
                "master; nothing recorded"
            ).encode(),
        )
        self.assertEqual(len(self.changes), 3)

    @defer.inlineCallbacks
    def test_an_older_push_delivered_again_after_a_newer_one_was_built_records_nothing(self) -> Any:
        yield self.push(pushed(0, 1), delivery=b"d-old")
        yield self.push(pushed(2, 2), delivery=b"d-newer")
        yield self.built(SHAS[2])  # the newer push's build covers the older one
        request = yield self.push(pushed(0, 1), delivery=b"d-old")
        self.assertEqual(request.written, b"already received: delivery d-old; nothing recorded")

    @defer.inlineCallbacks
    def test_a_push_recorded_but_never_built_is_recorded_again(self) -> Any:
        # the master stopped after recording it, before its scheduler built it
        yield self.push(three_commit_push())
        self.reactor.advance(pushes.IN_FLIGHT + 1)
        request = yield self.push(three_commit_push())
        request.setResponseCode.assert_called_with(202)
        self.assertEqual(request.written, b"3 change found")
        self.assertEqual(len(self.changes), 6)
        self.assertTrue(
            any("was recorded but never built: recorded again" in line for line in self.logged)
        )

    @defer.inlineCallbacks
    def test_a_force_push_back_to_a_commit_built_before_is_built_again(self) -> Any:
        yield self.push(pushed(0, 1), delivery=b"d-1")
        yield self.built(SHAS[1])
        yield self.push(pushed(2, 2), delivery=b"d-2")
        yield self.built(SHAS[2])
        back = pushed(1, 1)
        back.update(forced=True, before=SHAS[2], commits=[])
        request = yield self.push(back, delivery=b"d-3")
        self.assertEqual(request.written, b"1 change found")
        self.assertEqual(self.changes[-1]["revision"], SHAS[1])
        self.assertTrue(self.changes[-1]["properties"]["push_head"])
        yield self.built(SHAS[1])
        # the same force-push again: the branch was last built at that commit
        request = yield self.push(back, delivery=b"d-4")
        self.assertEqual(
            request.written,
            (
                f"already received: {SHAS[1]} is already a change of codertocat/hello-world "
                "master; nothing recorded"
            ).encode(),
        )
        # not forced, a commit built before is a replay
        request = yield self.push(pushed(0, 1), delivery=b"d-5")
        self.assertTrue(request.written.startswith(b"already received"))

    @defer.inlineCallbacks
    def test_an_ignored_delivery_is_not_remembered(self) -> Any:
        data = three_commit_push()
        data["ref"] = "refs/heads/other"
        request = yield self.push(data)
        self.assertEqual(request.written, b"no change found")
        request = yield self.push(three_commit_push())
        self.assertEqual(request.written, b"3 change found")


class SchedulerOffTest(GitHubHookTest):
    """A push for a scheduler that is turned off is refused, and its redelivery builds."""

    schedulers = {"codertocat/hello-world": "hello-push"}

    @defer.inlineCallbacks
    def setUp(self) -> Any:
        yield super().setUp()
        yield self.master.db.insert_test_data(
            [fakedb.Scheduler(id=5, name="hello-push", enabled=0)]
        )

    @defer.inlineCallbacks
    def test_refused_while_off_then_built_when_redelivered(self) -> Any:
        request = yield self.post(
            b"push",
            json.dumps(three_commit_push()).encode(),
            headers={b"X-GitHub-Delivery": b"d-1"},
        )
        request.setResponseCode.assert_called_with(409)
        self.assertEqual(
            request.written,
            (
                b"the hello-push scheduler is turned off: nothing recorded. Redeliver this push "
                b"from GitHub (Settings > Webhooks > Recent Deliveries) once it is turned on again"
            ),
        )
        self.assertEqual(self.changes, [])
        yield self.master.db.schedulers.enable(5, True)
        request = yield self.post(
            b"push",
            json.dumps(three_commit_push()).encode(),
            headers={b"X-GitHub-Delivery": b"d-1"},
        )
        request.setResponseCode.assert_called_with(202)
        self.assertEqual(len(self.changes), 3)

    @defer.inlineCallbacks
    def test_a_pull_request_is_not_refused(self) -> Any:
        # pull requests have their own scheduler (master/pullrequests.py)
        request = yield self.post(b"pull_request", fixture("pull_request-opened.payload.json"))
        request.setResponseCode.assert_called_with(202)
        self.assertEqual(request.written, b"1 change found")


class PushLogTest(TestReactorMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def setUp(self) -> Any:
        from buildbot.test.fake import fakemaster

        self.setup_test_reactor()
        self.master = yield fakemaster.make_master(self, wantDb=True)
        self.log = pushes.PushLog(self.master)

    @defer.inlineCallbacks
    def test_ids_are_kept_for_seven_days_then_forgotten_in_place(self) -> Any:
        self.reactor.advance(1_000_000)
        yield self.log.record("a")
        self.assertTrue((yield self.log.seen("a")))
        self.assertFalse((yield self.log.seen("b")))
        self.reactor.advance(pushes.WINDOW - 10)
        self.assertTrue((yield self.log.seen("a")))
        self.reactor.advance(20)
        self.assertFalse((yield self.log.seen("a")))
        # a week and a day later, the day's value is written over: no row grows, none deleted
        self.reactor.advance(pushes.DAY)
        yield self.log.record("c")
        objectid = yield self.log._objectid()
        names = [f"deliveries:{n}" for n in range(pushes.BUCKETS)]
        values = []
        for name in names:
            values.append((yield self.master.db.state.getState(objectid, name, None)))
        kept = [v["ids"] for v in values if v]
        self.assertIn({"c": self.reactor.seconds()}, kept)
        self.assertNotIn("a", {k for ids in kept for k in ids})


class PushSchedulerTest(SchedulerMixin, TestReactorMixin, unittest.TestCase):
    OBJECTID, SCHEDULERID = 19, 9

    @defer.inlineCallbacks
    def setUp(self) -> Any:
        self.setup_test_reactor()
        yield self.setUpScheduler()
        self.sched = pushes.PushScheduler(
            name="snowbird-push",
            builderNames=["snowbird-ci"],
            treeStableTimer=None,
            change_filter=ChangeFilter(project="sprintly/snowbird", branch="main"),
        )
        yield self.attachScheduler(
            self.sched,
            self.OBJECTID,
            self.SCHEDULERID,
            overrideBuildsetMethods=True,
            createBuilderDB=True,
        )
        yield self.sched.configureService()

    @defer.inlineCallbacks
    def change(
        self, number: int, delivery: str | None, head: bool = False, listed: tuple[int, ...] = ()
    ) -> Any:
        props: dict[str, Any] = {}
        if delivery is not None:
            props["github_delivery"] = delivery
        if head:
            props["push_head"] = True
            props["push_changes"] = list(listed)
        change = self.makeFakeChange(
            number=number,
            revision=f"{number:040x}",
            branch="main",
            project="sprintly/snowbird",
            properties=props,
        )
        return (yield self.addFakeChange(change))

    def built(self) -> list[list[int]]:
        return [kwargs["changeids"] for _, kwargs in self.addBuildsetCalls]

    @defer.inlineCallbacks
    def test_a_push_is_one_buildset_of_all_its_changes(self) -> Any:
        other = yield self.change(1, "d-0", head=True)  # an earlier push
        changes = []
        for n in (2, 3, 4, 5):
            changes.append((yield self.change(n, "d-1", head=n == 5, listed=(2, 3, 4))))
        for change in changes:
            yield self.sched.gotChange(change, True)
        self.assertEqual(self.built(), [[2, 3, 4, 5]])
        built = yield pushes.PushLog(self.master).head("built", "sprintly/snowbird", "main")
        self.assertEqual((built["change"], built["revision"]), (5, f"{5:040x}"))
        yield self.sched.gotChange(other, True)
        self.assertEqual(self.built(), [[2, 3, 4, 5], [1]])

    @defer.inlineCallbacks
    def test_two_pushes_are_two_builds(self) -> Any:
        for delivery, numbers in (("d-1", (1, 2)), ("d-2", (3, 4))):
            for n in numbers:
                change = yield self.change(n, delivery, head=n == numbers[-1], listed=numbers[:-1])
                yield self.sched.gotChange(change, True)
        self.assertEqual(self.built(), [[1, 2], [3, 4]])

    @defer.inlineCallbacks
    def test_a_change_from_elsewhere_is_built_alone(self) -> Any:
        change = yield self.change(7, None)
        yield self.sched.gotChange(change, True)
        self.assertEqual(self.built(), [[7]])
