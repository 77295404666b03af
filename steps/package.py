"""The package builds beside the tests (steps/beside.py).

A CI build starts its project's package builds first (StartPackage: a build of the
`<project>-package` builder, or one of `<project>-package-<release>` per target release, each on
any build worker, same commit), runs its own checkout, virtualenv, install, tests, coverage and
lint meanwhile, then waits for the packages (AwaitPackage) and takes over what the publish needs
(version, .debs, where each was uploaded). The target releases' package builds run side by side.
The publish comes after all of them, so a failing test or a failing release publishes nothing.
"""

from __future__ import annotations

from twisted.internet import defer

from buildbot.process.properties import Property
from buildbot.process.properties import renderer

from conveyor import buildprops
from steps.beside import AwaitBeside
from steps.beside import StartBeside
from steps.debian import artifact_url
from steps.debian import submitted_at

# what the publish (and the board, the mails) need of the package builds: the same in each
# (the version is the CI build's), besides their .debs and where they are (AwaitPackage)
HANDED_OVER = (buildprops.PACKAGE_VERSION, buildprops.SOURCE_PACKAGE, buildprops.COMMIT_TIME)


@renderer
def _submitted(props) -> float:
    return submitted_at(props.getBuild())


@renderer
def _url(props):
    return props.getBuild().getUrl()  # a Deferred: Buildbot renders it


class StartPackage(StartBeside):
    """Trigger the package builds (one per scheduler: each target release's) and go on at once;
    sets `package_requests` (their build requests, in the schedulers' order).

    Each package build gets this build's commit, number, request time and URL: its version is
    this build's, and so is the build its changelog entry names (steps/debian.py
    StampVersion)."""

    name = "start package"
    description = "starting package build"

    def __init__(self, schedulers: list[str], **kwargs):
        super().__init__(
            schedulers,
            buildprops.PACKAGE_REQUESTS,
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
        return (yield super().run())

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


class AwaitPackage(AwaitBeside):
    """Wait for the package builds StartPackage started, then take over their HANDED_OVER
    properties, their .debs (`debs`, in the target releases' order) and where each was uploaded
    (`artifact_paths`). See steps/beside.py for the wait and the failures.

    Unless a package build failed first and stopped the tests side (`package_failed_first`,
    steps/failfast.py): then this step waits all the same, and tells of its failure."""

    name = "package"
    description = "waiting for the package build"
    requests_property = buildprops.PACKAGE_REQUESTS
    what = "package build"

    def __init__(self, artifacts_url: str = "", **kwargs):
        self.artifacts_url = artifacts_url  # the .debs are linked from this build too
        super().__init__(**kwargs)

    def waits_after_a_failure(self) -> bool:
        return bool(self.getProperty(buildprops.PACKAGE_FAILED_FIRST))  # steps/failfast.py

    @defer.inlineCallbacks
    def take_over(self, children: list, failing: bool = False):
        if failing:
            return
        debs, artifacts = [], {}
        for child, name, props in children:
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
        names = ", ".join(name for _, name, _ in children)
        self.summary = f"version {self.getProperty(buildprops.PACKAGE_VERSION)} from {names}"
