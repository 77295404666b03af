"""Builds beside a CI build: its package builds (steps/package.py), and the tests of its target
releases after the first (StartTests, AwaitTests).

A worker runs one build of a builder at a time, so work side by side needs builders of its own:
`<project>-package` (or `<project>-package-<release>`, one per target release) and
`<project>-tests-<release>` for each target release after the first, which the CI build tests
itself. The CI build starts them first (a StartBeside step: a Trigger that does not wait), runs
its own steps meanwhile, then waits for them (an AwaitBeside step) and takes over what it needs
of them. The first of them that fails ends the wait: the others are stopped, since nothing of
the commit is published, and its failing step is told (with its log's tail; the failure mail
tells of it as the CI build's own, `beside_failed_step`). A CI build that has already failed
stops them instead of waiting.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet import task

from buildbot.process import buildstep
from buildbot.process.properties import Property
from buildbot.process.results import CANCELLED
from buildbot.process.results import FAILURE
from buildbot.process.results import SKIPPED
from buildbot.process.results import SUCCESS
from buildbot.process.results import WARNINGS
from buildbot.reporters.utils import getURLForBuild
from buildbot.reporters.utils import getURLForBuildrequest
from buildbot.steps.trigger import Trigger

from conveyor import buildprops
from conveyor.results import FAILING
from steps import buildlogs
from steps import figures
from steps.summary import Summarized

RECHECK = 2.0  # seconds: how often a waiting CI build checks a build beside it all the same
STOPPED_BY_PACKAGE = "stopped: the package build failed"  # as steps/failfast.py says it


def failed(request: dict | None) -> bool:
    """A complete build request whose result is a failure (cancelled included)."""
    return request is not None and request.get("results") not in (SUCCESS, WARNINGS, None)


class RequestWatch:
    """`completed` fires with a build request (the data API's, None when it is gone) once it is
    complete: woken by its `complete` event, and read again every RECHECK seconds all the same.
    Buildbot 4.3's SimpleMQ.produce removes consumers from the list it iterates: a consumer that
    stops during a message makes it skip the next one, which then misses that message
    (compat: simplemq_skips_consumer). Used by AwaitBeside, and by the tests side's steps to
    stop when a package build fails (steps/failfast.py)."""

    def __init__(self, master, brid: int):
        self.master = master
        self.brid = brid
        self.completed: defer.Deferred = defer.Deferred()
        self._consumer = None
        self._loop = None

    @defer.inlineCallbacks
    def start(self):
        self._consumer = yield self.master.mq.startConsuming(
            lambda _key, request: self._check(request),
            ("buildrequests", str(self.brid), "complete"),
        )
        self._loop = task.LoopingCall(self._read)
        self._loop.clock = self.master.reactor
        self._loop.start(RECHECK, now=True)

    @defer.inlineCallbacks
    def _read(self):
        self._check((yield self.master.data.get(("buildrequests", self.brid))))

    def _check(self, request: dict | None) -> None:
        if (request is None or request.get("complete")) and not self.completed.called:
            self.completed.callback(request)

    @defer.inlineCallbacks
    def stop(self):
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._consumer is not None:
            yield self._consumer.stopConsuming()


class RequestWatches:
    """A RequestWatch on each of several build requests: `when_complete(callback)` calls
    `callback(request, brid)` as each one completes."""

    def __init__(self, master, brids: list[int]):
        self.watches = [RequestWatch(master, brid) for brid in brids]

    @defer.inlineCallbacks
    def start(self):
        for watch in self.watches:
            yield watch.start()

    def when_complete(self, callback) -> None:
        for watch in self.watches:
            watch.completed.addCallback(callback, watch.brid)

    @defer.inlineCallbacks
    def stop(self):
        for watch in self.watches:
            yield watch.stop()


class StartBeside(Summarized, Trigger):
    """Trigger a build of each scheduler and go on at once; their build requests go into the
    property `requests_property`, in the schedulers' order."""

    def __init__(self, schedulers: list[str], requests_property: str, **kwargs):
        kwargs.setdefault("haltOnFailure", True)
        self.requests_property = requests_property
        super().__init__(schedulerNames=list(schedulers), waitForFinish=False, **kwargs)

    @defer.inlineCallbacks
    def run(self):
        result = yield super().run()
        if self.brids:
            self.setProperty(self.requests_property, list(self.brids), type(self).__name__)
            self.summary = f"started {', '.join(self.triggeredNames or ())}"
        return result

    def _add_results(self, brid):
        """Trigger's own wait for the build's result, for its summary: AwaitBeside tells it. (And
        a second consumer of the same `complete` event could make Buildbot skip the first.)
        Trigger's private method (compat: trigger_waits_for_results)."""
        return defer.succeed(None)


class AwaitBeside(Summarized, buildstep.BuildStep):
    """Wait for the builds a StartBeside step started (`requests_property`), then take them
    over (`take_over`, a subclass's). See the module's docstring."""

    requests_property = ""
    what = "build"  # what the builds are, in summaries: "package build"
    alwaysRun = True
    haltOnFailure = True
    flunkOnFailure = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.brids: list[int] = []

    def waits_after_a_failure(self) -> bool:
        """Whether to wait all the same when this build has already failed."""
        return False

    def also_watched(self) -> list[int]:
        """Build requests whose failure ends the wait too (STOPPED_BY_PACKAGE)."""
        return []

    @defer.inlineCallbacks
    def run(self):
        self.brids = list(self.getProperty(self.requests_property) or [])
        if not self.brids:
            self.summary = f"no {self.what} was started"
            return FAILURE
        if (
            self.build.results in (*FAILING, CANCELLED) or self.build.stopped
        ) and not self.waits_after_a_failure():
            yield self._cancel(self.brids, "the CI build failed: nothing of it is published")
            self.summary = f"{self._plural()} stopped: nothing is published"
            return SKIPPED
        for brid in self.brids:
            yield self.addURL(
                f"{self.what} request #{brid}", getURLForBuildrequest(self.master, brid)
            )
        failing = yield self._wait()
        if failing is not None and failing not in self.brids:  # a package build (steps/failfast)
            self.setProperty(buildprops.PACKAGE_FAILED_FIRST, True, type(self).__name__)
            self.summary = STOPPED_BY_PACKAGE
            return FAILURE
        children = []
        for brid in [failing] if failing is not None else self.brids:
            builds = yield self.master.db.builds.getBuilds(buildrequestid=brid)
            if not builds:
                self.summary = f"the {self.what} was cancelled before it began"
                return FAILURE
            child = builds[-1]
            builder = yield self.master.data.get(("builders", child.builderid))
            name = f"{builder['name']} #{child.number}"
            yield self.addURL(name, getURLForBuild(self.master, child.builderid, child.number))
            props = yield self.master.data.get(("builds", child.id, "properties"))
            if child.results not in (SUCCESS, WARNINGS):
                yield self.take_over([(child, name, props)], failing=True)
                return (yield self._failed(child, name))
            got, ours = (props.get("got_revision") or (None,))[0], self.getProperty("got_revision")
            if got and ours and got != ours:
                # a forced build of a branch that moved between the two checkouts
                self.summary = f"{name} built {got[:12]}, this build {ours[:12]}"
                log = yield self.addLog("stdio")
                yield log.addStderr(
                    f"the branch moved between the checkouts: {name} built {got}, this build "
                    f"{ours}; nothing is published, build again\n"
                )
                return FAILURE
            children.append((child, name, props))
        yield self.take_over(children)
        return WARNINGS if any(c.results == WARNINGS for c, _, _ in children) else SUCCESS

    def take_over(self, children: list, failing: bool = False):
        """Take over what this build needs of `children` [(build, "builder #n", properties)]:
        all of them once they passed, or (`failing`) the one that failed. Sets the summary."""
        raise NotImplementedError

    def _plural(self) -> str:
        return self.what if len(self.brids) == 1 else f"{self.what}s"

    @defer.inlineCallbacks
    def _wait(self):
        """Until every build's request is complete (RequestWatch), or one has failed (or one of
        also_watched): then the others are cancelled, and its request id is returned (None when
        all passed)."""
        watches = RequestWatches(self.master, [*self.brids, *self.also_watched()])
        pending = set(self.brids)
        first: defer.Deferred = defer.Deferred()

        def completed(request, brid):
            pending.discard(brid)
            if not first.called and (failed(request) or not pending):
                first.callback(brid if failed(request) else None)

        try:
            yield watches.start()
            watches.when_complete(completed)
            failing = yield first
            if failing is not None and pending:
                yield self._cancel(
                    sorted(pending),
                    f"{self.what} request #{failing} failed: nothing of this commit is published"
                    if failing in self.brids
                    else f"package build request #{failing} failed: nothing of this commit is "
                    "published",
                )
            return failing
        finally:
            yield watches.stop()

    @defer.inlineCallbacks
    def _failed(self, child, name: str):
        """A build beside failed: say which of its steps, with the tail of its log."""
        steps = yield self.master.data.get(("builds", child.id, "steps"))
        step = buildlogs.failing_step({"steps": list(steps or [])})
        what = f"{step['name']} failed" if step else "failed"
        self.summary = f"{what} in {name}"
        if step is not None:  # the step a failure mail tells of (master/reporters/facts.py)
            self.setProperty(buildprops.BESIDE_FAILED_STEP, step["stepid"], type(self).__name__)
        log = yield self.addLog("stdio")
        if step is not None:
            detail = buildlogs.step_summary(step)
            yield log.addStderr(
                f"{name}: step {step['name']!r} failed" + (f": {detail}" if detail else "") + "\n"
            )
            _, tail = yield buildlogs.log_tail(self.master, step)
            if tail:
                yield log.addStdout("".join(f"{line}\n" for line in tail))
        else:
            yield log.addStderr(f"{name} ended without a result\n")
        return CANCELLED if child.results == CANCELLED else FAILURE

    @defer.inlineCallbacks
    def _cancel(self, brids: list[int], reason: str):
        for brid in brids:
            yield self.master.data.control("cancel", {"reason": reason}, ("buildrequests", brid))

    def interrupt(self, reason):
        if self.brids:
            self._cancel(self.brids, "the CI build was stopped")
        super().interrupt(reason)


class StartTests(StartBeside):
    """Start the tests of each target release after the first, each in a build of its own
    (`<project>-tests-<release>`), beside this one; they stop when a package build fails, as
    this build's own tests do (they get `package_requests`)."""

    name = "start tests"
    description = "starting the other releases' tests"

    def __init__(self, schedulers: list[str], **kwargs):
        super().__init__(
            schedulers,
            buildprops.TESTS_REQUESTS,
            set_properties={
                buildprops.PACKAGE_REQUESTS: Property(buildprops.PACKAGE_REQUESTS, default=[])
            },
            **kwargs,
        )


class AwaitTests(AwaitBeside):
    """Wait for the other releases' tests (StartTests) and take over their figures: each
    release's (`by_target`), their sums, the lowest coverage and the failing tests' names, as
    if this build had run them (the mail, the GitHub status and the board read them here). A
    package build that fails meanwhile ends the wait (STOPPED_BY_PACKAGE), as it stops this
    build's own tests."""

    name = "release-tests"
    description = "waiting for the other releases' tests"
    requests_property = buildprops.TESTS_REQUESTS
    what = "tests build"

    def also_watched(self) -> list[int]:
        return list(self.getProperty(buildprops.PACKAGE_REQUESTS) or [])

    def waits_after_a_failure(self) -> bool:
        # this build's own tests stopped for a tests build that failed (steps/failfast.py)
        return bool(self.getProperty(buildprops.TESTS_FAILED_FIRST))

    def take_over(self, children: list, failing: bool = False):
        by_target = figures.copy_by_target(self)
        listed = list(self.getProperty(buildprops.TESTS_FAILURES) or [])
        for _, _, props in children:
            for release, theirs in ((props.get(buildprops.BY_TARGET) or ({},))[0] or {}).items():
                by_target.setdefault(release, {}).update(theirs)
            listed += (props.get(buildprops.TESTS_FAILURES) or ([],))[0] or []
        self.setProperty(buildprops.BY_TARGET, by_target, type(self).__name__)
        figures.set_tests(self, figures.totals(by_target), listed)
        lowest = figures.lowest_coverage(by_target)
        if lowest is not None:
            self.setProperty(buildprops.COVERAGE_PERCENT, lowest, type(self).__name__)
        self.summary = "; ".join(
            f"{release}: {t.get('passed', 0)} passed, {t.get('failed', 0)} failed"
            for release, t in by_target.items()
        )
        return defer.succeed(None)
