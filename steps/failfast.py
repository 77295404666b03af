"""Fail fast: a CI build goes red as soon as a build beside it fails, not when its tests end.

The CI build runs its tests side (install, tests, coverage, lint) while its package builds run
beside it (steps/package.py), and the later target releases' tests builds (steps/beside.py).
When a package build fails first (a broken debian/rules fails in a second, a test suite may
take minutes), the running step of the tests side stops its command and fails, saying why; the
CI build then goes to AwaitPackage, which tells of the package build's failing step, and the
build's result (the GitHub status, the mail) is red at once. A later release's tests build that
fails first stops it the same way, and AwaitTests tells of that build's failing step.
"""

from __future__ import annotations

from twisted.internet import defer

from buildbot.process.results import FAILURE

from conveyor import buildprops
from steps.beside import STOPPED_BY_PACKAGE
from steps.beside import RequestWatches
from steps.beside import failed
from steps.summary import Summarized

STOPPED = STOPPED_BY_PACKAGE
STOPPED_BY_TESTS = "stopped: another release's tests failed"


def fails_with_the_package(cls):
    """A class decorator for the tests side's steps: when a package build (property
    `package_requests`, set by StartPackage) fails while the step runs, its command is stopped
    and the step fails with STOPPED; the property `package_failed_first` tells AwaitPackage to
    report the package build's failure rather than cancel it. A later release's tests build
    (`tests_requests`, StartTests) that fails does the same, with STOPPED_BY_TESTS and
    `tests_failed_first`, for AwaitTests. (A decorator, not a mixin: it wraps the step's own
    `run`.) The step is Summarized (steps/summary.py): its STOPPED… is its summary, whatever its
    own `run` said before it was stopped."""
    if not issubclass(cls, Summarized):
        raise TypeError(f"{cls.__name__}: fails_with_the_package needs a Summarized step")
    step_run, step_run_command = cls.run, cls.runCommand

    @defer.inlineCallbacks
    def run(self):
        self.stopped_why = None  # STOPPED or STOPPED_BY_TESTS, once a build beside failed
        packages = list(self.getProperty(buildprops.PACKAGE_REQUESTS) or [])
        brids = packages + list(self.getProperty(buildprops.TESTS_REQUESTS) or [])
        if not brids:
            return (yield step_run(self))
        watches = RequestWatches(self.master, brids)
        try:
            yield watches.start()
            running = step_run(self)
            first: defer.Deferred = defer.Deferred()

            def ran(result):
                if not first.called:
                    first.callback("ran")
                return result

            running.addBoth(ran)
            watches.when_complete(
                lambda request, brid: (
                    first.callback(brid) if failed(request) and not first.called else None
                )
            )
            stopper = yield first
            if stopper == "ran":
                return (yield running)
            by_package = stopper in packages
            why = self.stopped_why = STOPPED if by_package else STOPPED_BY_TESTS
            self.setProperty(
                buildprops.PACKAGE_FAILED_FIRST if by_package else buildprops.TESTS_FAILED_FIRST,
                True,
                cls.__name__,
            )
            if self.cmd is not None:
                yield defer.ensureDeferred(self.cmd.interrupt(why))
            try:
                yield running
            except Exception:  # the interrupted command's end; the failure beside it is the news
                pass
            self.summary = why
            return FAILURE
        finally:
            yield watches.stop()

    def runCommand(self, command):
        if getattr(self, "stopped_why", None):  # no next command once it has failed
            return defer.fail(RuntimeError(self.stopped_why))
        return step_run_command(self, command)

    cls.run, cls.runCommand = run, runCommand
    return cls
