"""Unit tests of steps/package.py (the package build beside the tests) and of the version a
package build stamps: the CI build's. The master's data API and database are mocks; the wait
itself, the trigger and the whole of it run end to end in tests/integration/
test_parallel_package.py."""

from types import SimpleNamespace
from unittest import mock

from twisted.internet import defer

from buildbot.process import buildstep
from buildbot.process.results import CANCELLED
from buildbot.process.results import FAILURE
from buildbot.process.results import SKIPPED
from buildbot.process.results import SUCCESS

from steps import debian
from steps import package
from tests.unit import stepcase
from tests.unit.test_steps_debian import CHANGELOG
from tests.unit.test_steps_debian import SHA

CHILD = SimpleNamespace(id=31, builderid=4, number=9, results=SUCCESS)
PROPS = {"package_version": ("1.4.0+ci20261126.143005.57.g3f2a9c1", "StampVersion"),
         "source_package": ("snowbird", "StampVersion"), "commit_time": (1764150000, "x"),
         "debs": (["snowbird_1.4.0_amd64.deb"], "BuildDebianPackage"),
         "artifacts_path": ("snowbird-package/9", "UploadPackages"),
         "got_revision": (SHA, "Git")}


class StampVersionOfACiBuildTest(stepcase.StepTestCase):
    build_number = 3  # the package build's own number: not in the version

    def test_a_package_build_stamps_the_ci_builds_number_and_time(self):
        # commit_time comes from the checkout (steps/checkout.py): no `git log` for it
        self.setup(debian.StampVersion(), got_revision=SHA, ci_number=57,
                   ci_submitted=1795703405, commit_time=1764150000, changelog_head=CHANGELOG)
        self.build.getUrl = mock.Mock(return_value=defer.succeed("http://m/#/builders/4/builds/3"))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("package_version", "1.4.0+ci20261126.143005.57.g3f2a9c1")
        return self.run_step()


class AwaitPackageTest(stepcase.StepTestCase):
    def setup_await(self, child=CHILD, props=PROPS, failing=None, **build_props):
        step = self.setup(package.AwaitPackage(), **build_props)
        self.build.results, self.build.stopped = SUCCESS, False  # so far, in a real Build
        step._wait = mock.Mock(return_value=defer.succeed(None))
        self.master.db.builds.getBuilds = mock.Mock(
            return_value=defer.succeed([child] if child else []))
        answers = {("builders", 4): {"name": "snowbird-package"},
                   ("builds", 31, "properties"): props,
                   ("builds", 31, "steps"): [failing] if failing else [],
                   ("steps", 77, "logs"): []}
        real = self.master.data.get
        self.master.data.get = mock.Mock(side_effect=lambda path, **kw: defer.succeed(
            answers[tuple(path)]) if tuple(path) in answers else real(path, **kw))
        self.master.data.control = mock.Mock(return_value=defer.succeed(None))
        return step

    def test_a_good_package_build_hands_over_version_debs_and_where_they_are(self):
        self.setup_await(package_request=5, got_revision=SHA)
        self.expect_outcome(result=SUCCESS)
        for key in package.HANDED_OVER:
            self.expect_property(key, PROPS[key][0])
        self.expect_result_summary(
            {"step": "version 1.4.0+ci20261126.143005.57.g3f2a9c1 from snowbird-package #9"})
        return self.run_step()

    def test_a_package_of_another_commit_than_the_tested_one_is_refused(self):
        self.setup_await(package_request=5, got_revision="b" * 40)
        self.expect_outcome(result=FAILURE)
        self.expect_no_property("debs")
        self.expect_result_summary(
            {"step": f"snowbird-package #9 built {SHA[:12]}, the tests ran on {'b' * 12}"})
        return self.run_step()

    def test_a_failed_package_build_fails_naming_its_step(self):
        failing = {"stepid": 77, "name": "deb", "results": FAILURE, "hidden": False,
                   "state_string": "package (failure)"}
        self.setup_await(child=SimpleNamespace(**{**vars(CHILD), "results": FAILURE}),
                         failing=failing, package_request=5, got_revision=SHA)
        self.expect_outcome(result=FAILURE)
        self.expect_property("package_failed_step", 77)
        self.expect_no_property("debs")
        self.expect_result_summary({"step": "deb failed in snowbird-package #9"})
        return self.run_step()

    def test_a_ci_build_that_already_failed_cancels_its_package_build(self):
        step = self.setup_await(package_request=5)
        self.build.results = FAILURE
        self.expect_outcome(result=SKIPPED)
        d = self.run_step()

        def check(_):
            self.master.data.control.assert_called_once_with(
                "cancel", {"reason": "the CI build failed: nothing of it is published"},
                ("buildrequests", 5))
            step._wait.assert_not_called()
        return d.addCallback(check)

    def test_no_package_build_started_fails(self):
        self.setup_await()
        self.expect_outcome(result=FAILURE)
        self.expect_result_summary({"step": "no package build was started"})
        return self.run_step()

    def test_a_package_build_cancelled_before_it_began_fails(self):
        self.setup_await(child=None, package_request=5)
        self.expect_outcome(result=FAILURE)
        return self.run_step()

    def test_a_cancelled_package_build_cancels(self):
        self.setup_await(child=SimpleNamespace(**{**vars(CHILD), "results": CANCELLED}),
                         package_request=5)
        self.expect_outcome(result=CANCELLED)
        return self.run_step()


def start_package_after(earlier_builds: list[int], buildsets: list, requests: dict):
    """A StartPackage in build 12 of CI request 7, which ran before as `earlier_builds`."""
    step = buildstep.create_step_from_step_or_factory(
        package.StartPackage(scheduler="snowbird-package"))
    step.build = SimpleNamespace(requests=[SimpleNamespace(id=7)], buildid=12)
    cancelled = []
    step.master = SimpleNamespace(
        db=SimpleNamespace(
            builds=SimpleNamespace(getBuilds=lambda buildrequestid: defer.succeed(
                [SimpleNamespace(id=i) for i in [*earlier_builds, 12]])),
            buildsets=SimpleNamespace(getBuildsets=lambda complete: defer.succeed(buildsets)),
            buildrequests=SimpleNamespace(getBuildRequests=lambda bsid, complete: defer.succeed(
                [SimpleNamespace(buildrequestid=r) for r in requests.get(bsid, [])]))),
        data=SimpleNamespace(control=lambda action, args, path: defer.succeed(
            cancelled.append((action, path)))))
    return step, cancelled


def test_a_ci_request_run_again_cancels_the_package_build_its_first_attempt_started():
    # request 7 ran as build 11 (its master died); build 11 had started buildset 40's request
    # 90; buildset 41 is another CI build's package build
    step, cancelled = start_package_after(
        [11], [SimpleNamespace(bsid=40, parent_buildid=11),
               SimpleNamespace(bsid=41, parent_buildid=15)], {40: [90], 41: [91]})
    step._cancel_earlier_attempts()
    assert cancelled == [("cancel", ("buildrequests", 90))]


def test_a_first_attempt_cancels_nothing():
    step, cancelled = start_package_after(
        [], [SimpleNamespace(bsid=41, parent_buildid=15)], {41: [91]})
    step._cancel_earlier_attempts()
    assert cancelled == []
