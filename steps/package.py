"""The package builds beside the tests.

A CI build starts its project's package builds first (StartPackage: a build of the
`<project>-package` builder, or one of `<project>-package-<release>` per target release, each on
any build worker, same commit), runs its own checkout, virtualenv, install, tests, coverage and
lint meanwhile, then waits for the packages (AwaitPackage) and takes over what the publish needs
(version, .debs, where each was uploaded). The target releases' package builds run side by side
(a worker runs one build of a builder at a time, and each release has its own builder). The
publish comes after all of them, so a failing test or a failing release publishes nothing; a CI
build that has already failed stops its package builds instead of waiting for them, and the
first package build that fails stops the others.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet import task

from buildbot.process import buildstep
from buildbot.process.properties import Property
from buildbot.process.properties import renderer
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
from steps.debian import artifact_url
from steps.debian import submitted_at
from steps.summary import Summarized

RECHECK = 2.0  # seconds: how often a waiting CI build checks its package build all the same
# what the publish (and the board, the mails) need of the package builds: the same in each
# (the version is the CI build's), besides their .debs and where they are (AwaitPackage)
HANDED_OVER = (buildprops.PACKAGE_VERSION, buildprops.SOURCE_PACKAGE, buildprops.COMMIT_TIME)


def failed(request: dict | None) -> bool:
    """A complete build request whose result is a failure (cancelled included)."""
    return request is not None and request.get("results") not in (SUCCESS, WARNINGS, None)


@renderer
def _submitted(props) -> float:
    return submitted_at(props.getBuild())


@renderer
def _url(props):
    return props.getBuild().getUrl()  # a Deferred: Buildbot renders it


class RequestWatch:
    """`completed` fires with a build request (the data API's, None when it is gone) once it is
    complete: woken by its `complete` event, and read again every RECHECK seconds all the same.
    Buildbot 4.3's SimpleMQ.produce removes consumers from the list it iterates: a consumer that
    stops during a message makes it skip the next one, which then misses that message
    (compat: simplemq_skips_consumer). Used by
    AwaitPackage, and by the tests side's steps to stop when it fails (steps/failfast.py)."""

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


class StartPackage(Summarized, Trigger):
    """Trigger the package builds (one per scheduler: each target release's) and go on at once;
    sets `package_requests` (their build requests, in the schedulers' order).

    Each package build gets this build's commit, number, request time and URL: its version is
    this build's, and so is the build its changelog entry names (steps/debian.py
    StampVersion)."""

    name = "start package"
    description = "starting package build"

    def __init__(self, schedulers: list[str], **kwargs):
        kwargs.setdefault("haltOnFailure", True)
        super().__init__(
            schedulerNames=list(schedulers),
            waitForFinish=False,
            set_properties={
                buildprops.CI_NUMBER: Property("buildnumber"),
                "ci_submitted": _submitted,
                "ci_url": _url,
            },
            **kwargs,
        )

    @defer.inlineCallbacks
    def run(self):
        yield self._cancel_earlier_attempts()
        result = yield super().run()
        if self.brids:
            self.setProperty(buildprops.PACKAGE_REQUESTS, list(self.brids), "StartPackage")
            self.summary = f"started {', '.join(self.triggeredNames or ())}"
        return result

    @defer.inlineCallbacks
    def _cancel_earlier_attempts(self):
        """A CI build request that runs again (its master restarted mid-build) had started a
        package build of its own, which runs again too: nobody waits for it, nothing of it would
        be published. It is cancelled; this attempt starts its own."""
        brid = self.build.requests[0].id
        earlier = {
            b.id
            for b in (yield self.master.db.builds.getBuilds(buildrequestid=brid))
            if b.id != self.build.buildid
        }
        if not earlier:
            return
        for buildset in (yield self.master.db.buildsets.getBuildsets(complete=False)):
            if buildset.parent_buildid not in earlier:
                continue
            for request in (
                yield self.master.db.buildrequests.getBuildRequests(
                    bsid=buildset.bsid, complete=False
                )
            ):
                yield self.master.data.control(
                    "cancel",
                    {
                        "reason": "its CI build runs again (its master restarted): the "
                        "new attempt builds its own package"
                    },
                    ("buildrequests", request.buildrequestid),
                )

    def _add_results(self, brid):
        """Trigger's own wait for the build's result, for its summary: AwaitPackage tells it. (And
        a second consumer of the same `complete` event could make Buildbot skip the first.)"""
        return defer.succeed(None)


class AwaitPackage(Summarized, buildstep.BuildStep):
    """Wait for the package builds StartPackage started, then take over their HANDED_OVER
    properties, their .debs (`debs`, in the target releases' order) and where each was uploaded
    (`artifact_paths`). The failure of one is this build's, told with its failing step and its
    log's tail, as soon as it fails: the other package builds are stopped then, since nothing
    of the commit is published.

    When this build has already failed (tests, coverage, lint), or is stopped, the package builds
    are cancelled: nothing of this build is published, so its packages are not needed. Unless a
    package build failed first and stopped the tests side (`package_failed_first`,
    steps/failfast.py): then its failure is told, as when this step waits for it."""

    name = "package"
    description = "waiting for the package build"
    alwaysRun = True
    haltOnFailure = True
    flunkOnFailure = True

    def __init__(self, artifacts_url: str = "", **kwargs):
        self.artifacts_url = artifacts_url  # the .debs are linked from this build too
        super().__init__(**kwargs)
        self.brids: list[int] = []

    @defer.inlineCallbacks
    def run(self):
        self.brids = list(self.getProperty(buildprops.PACKAGE_REQUESTS) or [])
        if not self.brids:
            self.summary = "no package build was started"
            return FAILURE
        failed_first = self.getProperty(buildprops.PACKAGE_FAILED_FIRST)  # steps/failfast.py
        if (self.build.results in (*FAILING, CANCELLED) or self.build.stopped) and not failed_first:
            yield self._cancel(self.brids, "the CI build failed: nothing of it is published")
            self.summary = f"{self._builds_word()} stopped: nothing is published"
            return SKIPPED
        for brid in self.brids:
            yield self.addURL(
                f"package build request #{brid}", getURLForBuildrequest(self.master, brid)
            )
        failing = yield self._wait()
        children = []
        for brid in [failing] if failing is not None else self.brids:
            builds = yield self.master.db.builds.getBuilds(buildrequestid=brid)
            if not builds:
                self.summary = "the package build was cancelled before it began"
                return FAILURE
            child = builds[-1]
            builder = yield self.master.data.get(("builders", child.builderid))
            name = f"{builder['name']} #{child.number}"
            yield self.addURL(name, getURLForBuild(self.master, child.builderid, child.number))
            if child.results not in (SUCCESS, WARNINGS):
                return (yield self._failed(child, name))
            children.append((child, name))
        debs, artifacts = [], {}
        for child, name in children:
            props = yield self.master.data.get(("builds", child.id, "properties"))
            got, ours = (props.get("got_revision") or (None,))[0], self.getProperty("got_revision")
            if got and ours and got != ours:
                # a forced build of a branch that moved between the two checkouts
                self.summary = f"{name} built {got[:12]}, the tests ran on {ours[:12]}"
                log = yield self.addLog("stdio")
                yield log.addStderr(
                    f"the branch moved between the checkouts: {name} packaged "
                    f"{got}, this build tested {ours}; nothing is published, build "
                    "again\n"
                )
                return FAILURE
            if child is children[0][0]:
                for key in HANDED_OVER:
                    if key in props:
                        self.setProperty(key, props[key][0], name)
            where = (props.get(buildprops.ARTIFACTS_PATH) or (None,))[0]
            built = (props.get(buildprops.DEBS) or ([],))[0] or []
            records = (props.get(buildprops.BUILDINFOS) or ([],))[0] or []
            debs += built
            artifacts.update({each: where for each in [*built, *records]})
            if self.artifacts_url and where:
                for deb in built:
                    yield self.addURL(deb, artifact_url(self.artifacts_url, where, deb))
        self.setProperty(buildprops.DEBS, debs, "AwaitPackage")
        self.setProperty(buildprops.ARTIFACT_PATHS, artifacts, "AwaitPackage")
        names = ", ".join(name for _, name in children)
        self.summary = f"version {self.getProperty(buildprops.PACKAGE_VERSION)} from {names}"
        return SUCCESS

    def _builds_word(self) -> str:
        return "package build" if len(self.brids) == 1 else "package builds"

    @defer.inlineCallbacks
    def _wait(self):
        """Until every package build's request is complete (RequestWatch), or one has failed:
        then the others are cancelled, and its request id is returned (None when all passed)."""
        watches = [RequestWatch(self.master, brid) for brid in self.brids]
        pending = set(self.brids)
        first: defer.Deferred = defer.Deferred()

        def completed(request, brid):
            pending.discard(brid)
            if not first.called and (failed(request) or not pending):
                first.callback(brid if failed(request) else None)

        try:
            for watch in watches:
                yield watch.start()
                watch.completed.addCallback(completed, watch.brid)
            failing = yield first
            if failing is not None and pending:
                yield self._cancel(
                    sorted(pending),
                    f"package build request #{failing} failed: nothing of this commit is published",
                )
            return failing
        finally:
            for watch in watches:
                yield watch.stop()

    @defer.inlineCallbacks
    def _failed(self, child, name: str):
        """A package build failed: say which of its steps, with the tail of its log."""
        steps = yield self.master.data.get(("builds", child.id, "steps"))
        step = buildlogs.failing_step({"steps": list(steps or [])})
        what = f"{step['name']} failed" if step else "failed"
        self.summary = f"{what} in {name}"
        if step is not None:  # the step a failure mail tells of (master/reporters/facts.py)
            self.setProperty(buildprops.PACKAGE_FAILED_STEP, step["stepid"], "AwaitPackage")
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
            yield log.addStderr(f"{name} ended without a package\n")
        return CANCELLED if child.results == CANCELLED else FAILURE

    @defer.inlineCallbacks
    def _cancel(self, brids: list[int], reason: str):
        for brid in brids:
            yield self.master.data.control("cancel", {"reason": reason}, ("buildrequests", brid))

    def interrupt(self, reason):
        if self.brids:
            self._cancel(self.brids, "the CI build was stopped")
        super().interrupt(reason)
