"""The approval steps (steps/approvals.py) on Buildbot's fake build: what each writes into the
request log, and what it leaves for the promotion's steps after it."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from unittest import mock

from twisted.internet import defer

from buildbot.process.results import FAILURE
from buildbot.process.results import SUCCESS
from buildbot.test.steps import ExpectDownloadFile
from buildbot.test.steps import ExpectUploadFile

from conveyor import approvals
from conveyor import buildprops
from steps import approvals as approval_steps
from tests.unit.stepcase import StepTestCase

LOG = "/srv/www/history/snowbird.requests.jsonl"
URL = "http://ci/#/builders/9/builds/12"


def requested(number=7, who="alice", hours=72):
    plan = {
        "package": "snowbird",
        "version": "1.2+ci1",
        "from": "snowbird-staging",
        "to": "snowbird",
        "basis_snapshot": "snowbird@3",
        "basis_state": 3,
    }
    return approvals.new_request(number, who, plan, 2, hours, datetime.now(UTC), "http://b/7")


def text(*events) -> str:
    return "".join(approvals.log_line(e) for e in events)


class ApprovalStepCase(StepTestCase):
    def setup(self, step, **props):
        result = super().setup(step, **props)
        self.build.getUrl = mock.Mock(return_value=defer.succeed(URL))
        self.build.requests = []  # no rebuild
        return result

    def expect_log(self, before: str, written: list):
        self.expect_commands(
            ExpectUploadFile(
                workersrc=LOG, workdir="wkdir", blocksize=32768, maxsize=None, writer=mock.ANY
            )
            .upload_string(before)
            .exit(0),
            ExpectDownloadFile(
                workerdest=LOG,
                workdir="wkdir",
                blocksize=32768,
                maxsize=None,
                reader=mock.ANY,
                mode=0o644,
            )
            .download_string(written.append, size=100000)
            .exit(0),
        )


class RequestApprovalTest(ApprovalStepCase):
    def test_a_request_supersedes_the_pending_one_and_ends_the_promotion(self):
        written: list = []
        self.setup(
            approval_steps.RequestApproval(
                needed={"snowbird": 2},
                expire_hours=48,
                history_dir="/srv/www/history",
                distribution="snowbird",
            ),
            owner="bob",
            package="snowbird",
            package_version="1.3+ci2",
            from_dist="snowbird-staging",
            current_snapshot="snowbird@4",
            basis_state=4,
        )
        self.expect_log(text(requested()), written)
        self.expect_outcome(result=SUCCESS)
        self.expect_property(buildprops.AWAITING_APPROVAL, True)
        d = self.run_step()

        def check(_):
            events = approvals.parse_log(written[0])
            assert [e["event"] for e in events] == ["requested", "superseded", "requested"]
            assert events[1]["by"] == 12 and events[1]["request"] == 7
            new = approvals.requests(events)[12]
            assert (new.who, new.version, new.basis_snapshot, new.needed) == (
                "bob",
                "1.3+ci2",
                "snowbird@4",
                2,
            )
            assert new.build == URL
            step = self.get_nth_step(0)
            assert "bin/conveyor approve snowbird 12" in step.summary

        return d.addCallback(check)


class RecordApprovalTest(ApprovalStepCase):
    def approve(self, who: str, request: str = "7"):
        self.setup(
            approval_steps.RecordApproval(history_dir="/srv/www/history", distribution="snowbird"),
            owner=who,
            request=request,
        )

    def test_the_requester_is_refused_and_nothing_is_written(self):
        self.approve("alice")
        self.expect_commands(
            ExpectUploadFile(
                workersrc=LOG, workdir="wkdir", blocksize=32768, maxsize=None, writer=mock.ANY
            )
            .upload_string(text(requested()))
            .exit(0)
        )
        self.expect_outcome(result=FAILURE)
        d = self.run_step()
        d.addCallback(
            lambda _: self.assertIn(
                "the requester cannot approve their own request", self.get_nth_step(0).summary
            )
        )
        return d

    def test_the_approval_that_completes_the_count_sets_what_was_requested(self):
        written: list = []
        self.approve("dave")
        carol = {"event": "approved", "request": 7, "who": "carol", "when": "x"}
        self.expect_log(text(requested(), carol), written)
        self.expect_outcome(result=SUCCESS)
        self.expect_property("version", "1.2+ci1")
        self.expect_property("to_dist", "snowbird")
        self.expect_property("basis_snapshot", "snowbird@3")
        self.expect_property("who", "alice")
        self.expect_property(buildprops.APPROVED_BY, ["carol", "dave"])
        self.expect_property(buildprops.APPROVAL_REQUEST, 7)
        d = self.run_step()

        def check(_):
            last = approvals.parse_log(written[0])[-1]
            assert (last["event"], last["who"], last["build"]) == ("approved", "dave", URL)

        return d.addCallback(check)

    def test_an_approval_short_of_the_count_promotes_nothing(self):
        written: list = []
        self.approve("carol")
        self.expect_log(text(requested()), written)
        self.expect_outcome(result=SUCCESS)
        self.expect_property(buildprops.AWAITING_APPROVAL, True)
        return self.run_step()
