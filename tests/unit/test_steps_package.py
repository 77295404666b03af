"""Unit tests of steps/package.py (the package build beside the tests) and of the version a
package build stamps: the CI build's. Buildbot's fake master and database; the wait itself, the
trigger and the whole of it run end to end in tests/integration/test_parallel_package.py."""

from types import SimpleNamespace
from unittest import mock

from twisted.internet import defer
from twisted.trial import unittest

from buildbot.process import buildstep
from buildbot.process.results import CANCELLED
from buildbot.process.results import FAILURE
from buildbot.process.results import SKIPPED
from buildbot.process.results import SUCCESS
from buildbot.test import fakedb
from buildbot.test.fake import fakemaster
from buildbot.test.reactor import TestReactorMixin

from steps import debian
from steps import package
from tests.unit import stepcase
from tests.unit.test_steps_debian import CHANGELOG
from tests.unit.test_steps_debian import SHA

CHILD = SimpleNamespace(id=31, builderid=4, number=9, results=SUCCESS)
PROPS = {
    "package_version": ("1.4.0+ci20261126.143005.57.g3f2a9c1", "StampVersion"),
    "source_package": ("snowbird", "StampVersion"),
    "commit_time": (1764150000, "x"),
    "debs": (["snowbird_1.4.0_amd64.deb"], "BuildDebianPackage"),
    "artifacts_path": ("snowbird-package/9", "UploadPackages"),
    "got_revision": (SHA, "Git"),
}


class StampVersionOfACiBuildTest(stepcase.StepTestCase):
    build_number = 3  # the package build's own number: not in the version

    def test_a_package_build_stamps_the_ci_builds_number_and_time(self):
        # commit_time comes from the checkout (steps/checkout.py): no `git log` for it
        self.setup(
            debian.StampVersion(),
            got_revision=SHA,
            ci_number=57,
            ci_submitted=1795703405,
            commit_time=1764150000,
            changelog_head=CHANGELOG,
        )
        self.build.getUrl = mock.Mock(return_value=defer.succeed("http://m/#/builders/4/builds/3"))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("package_version", "1.4.0+ci20261126.143005.57.g3f2a9c1")
        return self.run_step()


TRIXIE = SimpleNamespace(id=32, builderid=5, number=4, results=SUCCESS)
TRIXIE_PROPS = {
    **PROPS,
    "debs": (["snowbird_1.4.0+deb13_amd64.deb"], "BuildDebianPackage"),
    "buildinfos": (["snowbird_1.4.0+deb13_amd64.buildinfo"], "BuildDebianPackage"),
    "artifacts_path": ("snowbird-package-trixie/4", "UploadPackages"),
}


class AwaitPackageTest(stepcase.StepTestCase):
    def setup_await(
        self, child=CHILD, props=PROPS, failing=None, children=None, waited=None, **build_props
    ):
        """`children`: {build request: its build (None: none began)}, default request 5's
        `child`; `waited`: what _wait returns (a failing request, or None when all passed)."""
        step = self.setup(package.AwaitPackage(), **build_props)
        self.build.results, self.build.stopped = SUCCESS, False  # so far, in a real Build
        step._wait = mock.Mock(return_value=defer.succeed(waited))
        children = {5: child} if children is None else children
        self.master.db.builds.getBuilds = mock.Mock(
            side_effect=lambda buildrequestid: defer.succeed(
                [children[buildrequestid]] if children.get(buildrequestid) else []
            )
        )
        answers = {
            ("builders", 4): {"name": "snowbird-package"},
            ("builders", 5): {"name": "snowbird-package-trixie"},
            ("builds", 31, "properties"): props,
            ("builds", 32, "properties"): TRIXIE_PROPS,
            ("builds", 31, "steps"): [failing] if failing else [],
            ("builds", 32, "steps"): [failing] if failing else [],
            ("steps", 77, "logs"): [],
        }
        self.answer_data(answers)
        return step

    def test_a_good_package_build_hands_over_version_debs_and_where_they_are(self):
        self.setup_await(package_requests=[5], got_revision=SHA)
        self.expect_outcome(result=SUCCESS)
        for key in package.HANDED_OVER:
            self.expect_property(key, PROPS[key][0])
        self.expect_property("debs", ["snowbird_1.4.0_amd64.deb"])
        self.expect_property("artifact_paths", {"snowbird_1.4.0_amd64.deb": "snowbird-package/9"})
        self.expect_result_summary(
            {"step": "version 1.4.0+ci20261126.143005.57.g3f2a9c1 from snowbird-package #9"}
        )
        return self.run_step()

    def test_the_target_releases_package_builds_are_handed_over_together(self):
        self.setup_await(children={5: CHILD, 6: TRIXIE}, package_requests=[5, 6], got_revision=SHA)
        self.expect_outcome(result=SUCCESS)
        # each release's .debs, in the targets' order, and where each package build put them
        self.expect_property("debs", ["snowbird_1.4.0_amd64.deb", "snowbird_1.4.0+deb13_amd64.deb"])
        self.expect_property(
            "artifact_paths",
            {
                "snowbird_1.4.0_amd64.deb": "snowbird-package/9",
                "snowbird_1.4.0+deb13_amd64.deb": "snowbird-package-trixie/4",
                "snowbird_1.4.0+deb13_amd64.buildinfo": "snowbird-package-trixie/4",
            },
        )
        self.expect_result_summary(
            {
                "step": "version 1.4.0+ci20261126.143005.57.g3f2a9c1 from snowbird-package #9, "
                "snowbird-package-trixie #4"
            }
        )
        return self.run_step()

    def test_the_release_that_failed_is_told_and_nothing_is_handed_over(self):
        failing = {
            "stepid": 77,
            "name": "deb-trixie",
            "results": FAILURE,
            "hidden": False,
            "state_string": "package (failure)",
        }
        self.setup_await(
            children={5: CHILD, 6: SimpleNamespace(**{**vars(TRIXIE), "results": FAILURE})},
            failing=failing,
            waited=6,
            package_requests=[5, 6],
            got_revision=SHA,
        )
        self.expect_outcome(result=FAILURE)
        self.expect_property("beside_failed_step", 77)
        self.expect_no_property("debs")
        self.expect_result_summary({"step": "deb-trixie failed in snowbird-package-trixie #4"})
        return self.run_step()

    def test_a_package_of_another_commit_than_the_tested_one_is_refused(self):
        self.setup_await(package_requests=[5], got_revision="b" * 40)
        self.expect_outcome(result=FAILURE)
        self.expect_no_property("debs")
        self.expect_result_summary(
            {"step": f"snowbird-package #9 built {SHA[:12]}, this build {'b' * 12}"}
        )
        return self.run_step()

    def test_a_failed_package_build_fails_naming_its_step(self):
        failing = {
            "stepid": 77,
            "name": "deb",
            "results": FAILURE,
            "hidden": False,
            "state_string": "package (failure)",
        }
        self.setup_await(
            child=SimpleNamespace(**{**vars(CHILD), "results": FAILURE}),
            failing=failing,
            package_requests=[5],
            got_revision=SHA,
        )
        self.expect_outcome(result=FAILURE)
        self.expect_property("beside_failed_step", 77)
        self.expect_no_property("debs")
        self.expect_result_summary({"step": "deb failed in snowbird-package #9"})
        return self.run_step()

    def test_a_ci_build_that_already_failed_cancels_its_package_builds(self):
        step = self.setup_await(package_requests=[5, 6])
        self.build.results = FAILURE
        self.expect_outcome(result=SKIPPED)
        self.expect_result_summary({"step": "package builds stopped: nothing is published"})
        d = self.run_step()

        def check(_):
            reason = {"reason": "the CI build failed: nothing of it is published"}
            assert self.master.data.control.call_args_list == [
                mock.call("cancel", reason, ("buildrequests", 5)),
                mock.call("cancel", reason, ("buildrequests", 6)),
            ]
            step._wait.assert_not_called()

        return d.addCallback(check)

    def test_no_package_build_started_fails(self):
        self.setup_await()
        self.expect_outcome(result=FAILURE)
        self.expect_result_summary({"step": "no package build was started"})
        return self.run_step()

    def test_a_package_build_cancelled_before_it_began_fails(self):
        self.setup_await(child=None, package_requests=[5])
        self.expect_outcome(result=FAILURE)
        return self.run_step()

    def test_a_cancelled_package_build_cancels(self):
        self.setup_await(
            child=SimpleNamespace(**{**vars(CHILD), "results": CANCELLED}), package_requests=[5]
        )
        self.expect_outcome(result=CANCELLED)
        return self.run_step()


class CancelEarlierAttemptsTest(TestReactorMixin, unittest.TestCase):
    """StartPackage in build 12 of CI request 7, on Buildbot's fake master and its database
    (SQLite in memory); the cancel goes to the data API's control, recorded here."""

    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        self.master = yield fakemaster.make_master(self, wantDb=True, wantData=True)
        yield self.master.db.insert_test_data(
            [
                fakedb.Master(id=92),
                fakedb.Worker(id=13, name="build"),
                fakedb.Builder(id=1, name="snowbird-ci"),
                fakedb.Builder(id=2, name="snowbird-package"),
                fakedb.Buildset(id=39),
                fakedb.BuildRequest(id=7, buildsetid=39, builderid=1),
                fakedb.Buildset(id=38),
                fakedb.BuildRequest(id=6, buildsetid=38, builderid=1),
                # another CI build (request 6) with its own package build: buildset 41, request 91
                fakedb.Build(
                    id=15, number=1, buildrequestid=6, builderid=1, workerid=13, masterid=92
                ),
                fakedb.Buildset(id=41, parent_buildid=15),
                fakedb.BuildRequest(id=91, buildsetid=41, builderid=2),
                # a triggered buildset has the sourcestamps of its CI build (Buildbot's query of
                # build requests joins them)
                fakedb.SourceStamp(id=50),
                fakedb.BuildsetSourceStamp(buildsetid=41, sourcestampid=50),
            ]
        )
        self.cancelled = []

        def control(action, args, path):
            self.cancelled.append((action, path))
            return defer.succeed(None)

        self.master.data.control = control

    @defer.inlineCallbacks
    def attempt(self, earlier: bool):
        """Build 12 of request 7; with `earlier`, request 7 ran before as build 11 (its master
        died) and build 11 had started buildset 40's package request 90."""
        rows = []
        if earlier:
            rows += [
                fakedb.Build(
                    id=11, number=2, buildrequestid=7, builderid=1, workerid=13, masterid=92
                ),
                fakedb.Buildset(id=40, parent_buildid=11),
                fakedb.BuildRequest(id=90, buildsetid=40, builderid=2),
                fakedb.BuildsetSourceStamp(buildsetid=40, sourcestampid=50),
            ]
        rows.append(
            fakedb.Build(id=12, number=3, buildrequestid=7, builderid=1, workerid=13, masterid=92)
        )
        yield self.master.db.insert_test_data(rows)
        step = buildstep.create_step_from_step_or_factory(
            package.StartPackage(schedulers=["snowbird-package"])
        )
        step.build = SimpleNamespace(requests=[SimpleNamespace(id=7)], buildid=12)
        step.master = self.master
        yield step._cancel_earlier_attempts()

    @defer.inlineCallbacks
    def test_a_ci_request_run_again_cancels_the_package_build_its_first_attempt_started(self):
        yield self.attempt(earlier=True)
        self.assertEqual(self.cancelled, [("cancel", ("buildrequests", 90))])

    @defer.inlineCallbacks
    def test_a_first_attempt_cancels_nothing(self):
        yield self.attempt(earlier=False)
        self.assertEqual(self.cancelled, [])
