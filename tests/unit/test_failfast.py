"""steps/beside.py RequestWatch, and steps/failfast.py on it: the watch on the package build
that AwaitPackage waits with, and that stops the tests side when the package build fails."""

from __future__ import annotations

from unittest import mock

from twisted.internet import defer
from twisted.internet import task

from buildbot.process import buildstep
from buildbot.process.results import CANCELLED
from buildbot.process.results import FAILURE
from buildbot.process.results import SUCCESS
from buildbot.process.results import WARNINGS

from steps import beside
from steps import failfast
from steps.beside import RECHECK
from steps.beside import RequestWatch
from steps.summary import Summarized
from tests.unit import stepcase
from tests.unit.test_steps_beside import WATCHES
from tests.unit.test_steps_beside import FakeWatch


class FakeMaster:
    """The two things the watch uses: mq consumers and the data API's build request."""

    def __init__(self, request: dict):
        self.request = request
        self.reactor = task.Clock()
        self.consumers: list = []
        self.stopped = 0

    class mq:  # noqa: N801 (an attribute of the master, as Buildbot names it)
        pass

    def start_consuming(self, callback, key):
        master = self

        class Consumer:
            def stopConsuming(self):
                master.stopped += 1

        self.consumers.append((key, callback))
        return defer.succeed(Consumer())

    def get(self, path):
        assert path == ("buildrequests", 7)
        return defer.succeed(dict(self.request))


def watch_of(request: dict) -> tuple[RequestWatch, FakeMaster]:
    master = FakeMaster(request)
    master.mq = type("MQ", (), {"startConsuming": staticmethod(master.start_consuming)})()
    master.data = type("Data", (), {"get": staticmethod(master.get)})()
    watch = RequestWatch(master, 7)
    watch.start()
    return watch, master


def test_a_complete_request_fires_on_its_event_and_a_failure_is_told_apart():
    watch, master = watch_of({"complete": False, "results": None})
    ((key, callback),) = master.consumers
    assert key == ("buildrequests", "7", "complete")
    assert not watch.completed.called
    callback(key, {"complete": True, "results": FAILURE})
    told = []
    watch.completed.addCallback(told.append)
    assert told and failfast.failed(told[0])
    watch.stop()
    assert master.stopped == 1 and not watch._loop.running


def test_a_missed_event_is_caught_by_reading_the_request_again():
    watch, master = watch_of({"complete": False, "results": None})
    master.request.update(complete=True, results=CANCELLED)
    assert not watch.completed.called
    master.reactor.advance(RECHECK)
    told = []
    watch.completed.addCallback(told.append)
    assert told == [{"complete": True, "results": CANCELLED}] and failfast.failed(told[0])


def test_a_good_package_build_is_no_failure():
    for result in (SUCCESS, WARNINGS):
        watch, master = watch_of({"complete": True, "results": result})
        told = []
        watch.completed.addCallback(told.append)
        assert told and not failfast.failed(told[0])
    assert not failfast.failed(None)  # a request that is gone: nothing to tell


def test_the_tests_side_steps_are_stopped_by_a_failed_package():
    from steps.lint import Lint
    from steps.python import Coverage
    from steps.python import InstallRequirements
    from steps.python import RunTests

    for step in (InstallRequirements, RunTests, Coverage, Lint):
        assert step.run.__qualname__.startswith("fails_with_the_package"), step


class FailFastTest(stepcase.StepTestCase):
    """fails_with_the_package on a step of the CI build's own tests: a package build or a later
    release's tests build that fails while the step runs stops it, each saying which."""

    def setUp(self):
        WATCHES.clear()
        patcher = mock.patch.object(beside, "RequestWatch", FakeWatch)
        patcher.start()
        self.addCleanup(patcher.stop)
        return super().setUp()

    def running_step(self):
        @failfast.fails_with_the_package
        class Slow(Summarized, buildstep.BuildStep):
            name = "tests"

            def run(self):
                self.summary = "12 passed"
                self.pending = defer.Deferred()  # a long test suite
                return self.pending

        return self.setup(Slow(), package_requests=[3], tests_requests=[6])

    def expect_stopped(self, summary: str, told: str, untold: str) -> None:
        """Stopped, saying `summary`, with the property `told` for the wait that tells why."""
        self.expect_outcome(result=FAILURE)
        self.expect_result_summary({"step": summary})
        self.expect_property(told, True)
        self.expect_no_property(untold)

    def test_a_failing_tests_build_beside_stops_the_step_for_awaittests_to_tell(self):
        step = self.running_step()
        self.expect_stopped(failfast.STOPPED_BY_TESTS, "tests_failed_first", "package_failed_first")
        d = self.run_step()
        assert not d.called
        WATCHES[6].completed.callback({"complete": True, "results": FAILURE})
        step.pending.callback(SUCCESS)  # the interrupted command's end
        return d

    def test_a_failing_package_build_stops_it_for_awaitpackage_to_tell(self):
        step = self.running_step()
        self.expect_stopped(failfast.STOPPED, "package_failed_first", "tests_failed_first")
        d = self.run_step()
        WATCHES[6].completed.callback({"complete": True, "results": SUCCESS})  # trixie passed
        assert not d.called
        WATCHES[3].completed.callback({"complete": True, "results": FAILURE})
        step.pending.callback(SUCCESS)
        return d

    def test_the_step_ends_as_it_ran_when_nothing_beside_fails(self):
        step = self.running_step()
        self.expect_outcome(result=SUCCESS)
        self.expect_result_summary({"step": "12 passed"})
        d = self.run_step()
        step.pending.callback(SUCCESS)
        return d
