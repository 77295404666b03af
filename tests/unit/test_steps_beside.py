"""Unit tests of steps/beside.py: the wait for the builds beside a CI build (the first failure ends
it and stops the others; a package build's failure ends the wait for the tests builds), and
AwaitTests, which takes over the later target releases' figures as the CI build's own. The
whole of it runs end to end in tests/integration/test_targets.py."""

from types import SimpleNamespace
from unittest import mock

from twisted.internet import defer
from twisted.trial import unittest

from buildbot.process import buildstep
from buildbot.process.results import FAILURE
from buildbot.process.results import SKIPPED
from buildbot.process.results import SUCCESS
from buildbot.process.results import WARNINGS

from steps import beside
from steps import package
from tests.unit import stepcase
from tests.unit.test_steps_debian import SHA

WATCHES: dict = {}


class FakeWatch:
    """A RequestWatch whose request completes when the test says so."""

    def __init__(self, master, brid):
        self.brid = brid
        self.completed = defer.Deferred()
        self.stopped = False
        WATCHES[brid] = self

    def start(self):
        return defer.succeed(None)

    def stop(self):
        self.stopped = True
        return defer.succeed(None)


class WaitTest(unittest.TestCase):
    """AwaitBeside._wait: done when every build passed, or as soon as one failed; then the others
    are cancelled, since nothing of the commit is published."""

    def setUp(self):
        WATCHES.clear()
        patcher = mock.patch.object(beside, "RequestWatch", FakeWatch)
        patcher.start()
        self.addCleanup(patcher.stop)

    def step(self, cls=beside.AwaitTests, brids=(5, 6, 7), **props):
        step = buildstep.create_step_from_step_or_factory(cls())
        step.master = SimpleNamespace(
            data=SimpleNamespace(control=mock.Mock(return_value=defer.succeed(None)))
        )
        step.brids = list(brids)
        step.getProperty = lambda name, default=None: props.get(name, default)
        return step

    def test_the_first_failure_ends_the_wait_and_cancels_the_builds_still_running(self):
        step = self.step()
        waited = step._wait()
        WATCHES[5].completed.callback({"complete": True, "results": SUCCESS})
        assert not waited.called
        WATCHES[7].completed.callback({"complete": True, "results": FAILURE})
        assert self.successResultOf(waited) == 7
        step.master.data.control.assert_called_once_with(
            "cancel",
            {"reason": "tests build request #7 failed: nothing of this commit is published"},
            ("buildrequests", 6),
        )
        assert all(w.stopped for w in WATCHES.values())

    def test_all_passed_ends_the_wait_with_no_failure(self):
        step = self.step()
        waited = step._wait()
        for brid in (6, 5):
            WATCHES[brid].completed.callback({"complete": True, "results": WARNINGS})
        assert not waited.called
        WATCHES[7].completed.callback({"complete": True, "results": SUCCESS})
        assert self.successResultOf(waited) is None
        step.master.data.control.assert_not_called()

    def test_a_failing_package_build_ends_the_wait_for_the_tests_builds(self):
        step = self.step(brids=(5,), package_requests=[3, 4])
        waited = step._wait()
        WATCHES[3].completed.callback({"complete": True, "results": SUCCESS})
        assert not waited.called  # a package build that passed is no news
        WATCHES[4].completed.callback({"complete": True, "results": FAILURE})
        assert self.successResultOf(waited) == 4
        step.master.data.control.assert_called_once_with(
            "cancel",
            {"reason": "package build request #4 failed: nothing of this commit is published"},
            ("buildrequests", 5),
        )

    def test_the_package_builds_wait_for_each_other_only(self):
        step = self.step(cls=package.AwaitPackage, brids=(5,), package_requests=[5])
        waited = step._wait()
        WATCHES[5].completed.callback({"complete": True, "results": SUCCESS})
        assert self.successResultOf(waited) is None


BOOKWORM = {"passed": 12, "failed": 0, "skipped": 1, "coverage": 91.5}
TRIXIE = SimpleNamespace(id=32, builderid=5, number=4, results=SUCCESS)


def trixie_props(passed=12, failed=0, coverage=88.0, failures=()):
    return {
        "by_target": ({"trixie": {"passed": passed, "failed": failed, "coverage": coverage}}, "x"),
        "tests_failures": (list(failures), "RunTests"),
        "got_revision": (SHA, "Git"),
    }


class AwaitTestsTest(stepcase.StepTestCase):
    """The CI build tested bookworm itself; trixie's tests build (request 6) ran beside it."""

    def setup_await(self, child=TRIXIE, props=None, failing=None, waited=None, **build_props):
        step = self.setup(
            beside.AwaitTests(),
            tests_requests=[6],
            got_revision=SHA,
            by_target={"bookworm": dict(BOOKWORM)},
            tests_passed=12,
            tests_failed=0,
            coverage_percent=91.5,
            tests_failures=[],
            **build_props,
        )
        self.build.results, self.build.stopped = SUCCESS, False
        step._wait = mock.Mock(return_value=defer.succeed(waited))
        self.master.db.builds.getBuilds = mock.Mock(return_value=defer.succeed([child]))
        answers = {
            ("builders", 5): {"name": "snowbird-tests-trixie"},
            ("builds", 32, "properties"): props or trixie_props(),
            ("builds", 32, "steps"): [failing] if failing else [],
            ("steps", 77, "logs"): [],
        }
        self.answer_data(answers)
        return step

    def test_the_later_releases_figures_become_the_ci_builds_own(self):
        self.setup_await()
        self.expect_outcome(result=SUCCESS)
        self.expect_property(
            "by_target",
            {"bookworm": BOOKWORM, "trixie": {"passed": 12, "failed": 0, "coverage": 88.0}},
        )
        self.expect_property("tests_passed", 24)  # the sum of both releases'
        self.expect_property("tests_skipped", 1)
        self.expect_property("coverage_percent", 88.0)  # the lowest release's
        self.expect_result_summary(
            {"step": "bookworm: 12 passed, 0 failed; trixie: 12 passed, 0 failed"}
        )
        return self.run_step()

    def test_a_later_release_whose_tests_fail_fails_the_ci_build_with_its_failures(self):
        failing = {
            "stepid": 77,
            "name": "tests-trixie",
            "results": FAILURE,
            "hidden": False,
            "state_string": "11 passed, 1 failed",
        }
        failure = {"name": "tests.test_app::test_health [trixie]", "text": "assert 3 == 2"}
        self.setup_await(
            child=SimpleNamespace(**{**vars(TRIXIE), "results": FAILURE}),
            props=trixie_props(passed=11, failed=1, failures=[failure]),
            failing=failing,
            waited=6,
        )
        self.expect_outcome(result=FAILURE)
        # the failure mail tells of trixie's failing step, with its failing test
        self.expect_property("beside_failed_step", 77)
        self.expect_property("tests_failed", 1)
        self.expect_property("tests_failed_names", ["tests.test_app::test_health [trixie]"])
        self.expect_property("tests_failures", [failure])
        self.expect_result_summary({"step": "tests-trixie failed in snowbird-tests-trixie #4"})
        return self.run_step()

    def test_a_package_build_that_fails_first_stops_the_wait(self):
        self.setup_await(waited=3, package_requests=[3])
        self.expect_outcome(result=FAILURE)
        # AwaitPackage then tells of the package build's failure (steps/package.py)
        self.expect_property("package_failed_first", True)
        self.expect_result_summary({"step": "stopped: the package build failed"})
        return self.run_step()

    def test_a_ci_build_whose_own_tests_failed_stops_the_other_releases_tests(self):
        step = self.setup_await()
        self.build.results = FAILURE
        self.expect_outcome(result=SKIPPED)
        self.expect_result_summary({"step": "tests build stopped: nothing is published"})
        d = self.run_step()

        def check(_):
            self.master.data.control.assert_called_once_with(
                "cancel",
                {"reason": "the CI build failed: nothing of it is published"},
                ("buildrequests", 6),
            )
            step._wait.assert_not_called()

        return d.addCallback(check)

    def test_a_ci_build_stopped_by_a_failing_release_tells_that_releases_failure(self):
        # the CI build's own tests were stopped when trixie's failed (steps/failfast.py): the
        # build has failed already, and the wait tells of trixie's failing step all the same
        failing = {"stepid": 77, "name": "tests-trixie", "results": FAILURE, "hidden": False}
        self.setup_await(
            child=SimpleNamespace(**{**vars(TRIXIE), "results": FAILURE}),
            props=trixie_props(passed=11, failed=1),
            failing=failing,
            waited=6,
            tests_failed_first=True,
        )
        self.build.results = FAILURE
        self.expect_outcome(result=FAILURE)
        self.expect_property("beside_failed_step", 77)
        self.expect_result_summary({"step": "tests-trixie failed in snowbird-tests-trixie #4"})
        return self.run_step()
