"""Debian packaging steps: stamp a unique version, build the .deb, hand it to the master."""

from __future__ import annotations

import posixpath
import time
from datetime import datetime
from datetime import timezone

from buildbot.process import buildstep
from buildbot.process import results
from buildbot.steps.transfer import FileUpload
from buildbot.steps.worker import CompositeStepMixin
from twisted.internet import defer

from conveyor import release


class StampVersion(CompositeStepMixin, buildstep.BuildStep):
    """Prepend a CI entry to debian/changelog: `<upstream>+ci<date>.<time>.<build>.g<sha>`
    (conveyor.release.ci_version), commit, build URL.

    Sets the properties `package_version`, `source_package` and `commit_time` (the commit's
    timestamp, used as SOURCE_DATE_EPOCH by the package build). In a package build started by a
    CI build (steps/package.py), the version is the CI build's: its number (`ci_number`) and
    when its request reached the master (`ci_submitted`); the entry names the CI build
    (`ci_url`), the one result of the push.
    """

    name = "version"
    description = "stamping version"
    descriptionDone = "version"

    def __init__(self, changelog: str = "debian/changelog", **kwargs):
        self.changelog = changelog
        super().__init__(**kwargs)
        self.version: str | None = None

    @defer.inlineCallbacks
    def run(self):
        log = yield self.addLog("stdio")
        text = yield self.getFileContentFromWorker(self.changelog)
        if text is None:
            yield log.addStderr(f"{self.changelog} not found: the project needs a debian/ "
                                "directory to be packaged\n")
            return results.FAILURE
        revision = self.getProperty("got_revision") or self.getProperty("revision")
        try:
            head = release.parse_changelog_head(text)
            version = release.ci_version(head, self.getProperty("ci_number") or self.build.number,
                                         revision, self.submitted())
        except release.ReleaseError as exc:
            yield log.addStderr(f"{exc}\n")
            return results.FAILURE

        commit_time = self.getProperty("commit_time")  # the checkout's (steps/checkout.py)
        if commit_time is None:
            yield log.addStderr(f"no commit time for {revision}: the checkout "
                                "(steps/checkout.py) sets it\n")
            return results.FAILURE

        build_url = self.getProperty("ci_url") or (yield self.build.getUrl())
        stanza = release.changelog_stanza(
            head.source, version, commit=revision, build_url=build_url, timestamp=commit_time,
            message=f"Built by Conveyor from commit {revision[:12]}.")
        yield self.downloadFileContentToWorker(self.changelog, stanza + text,
                                               abandonOnFailure=True)
        yield log.addStdout(stanza)
        self.version = version
        self.setProperty("package_version", version, "StampVersion")
        self.setProperty("source_package", head.source, "StampVersion")
        self.setProperty("commit_time", commit_time, "StampVersion")
        return results.SUCCESS

    def submitted(self) -> datetime:
        """When the (CI) build's first request reached the master: the push, on the master's
        clock."""
        given = self.getProperty("ci_submitted")
        return datetime.fromtimestamp(given if given else submitted_at(self.build),
                                      tz=timezone.utc)

    def getResultSummary(self):
        if self.version and self.results == results.SUCCESS:
            return {"step": f"version {self.version}"}
        return super().getResultSummary()


def submitted_at(build) -> float:
    """When `build`'s first request reached the master (a Unix time); now, for a build without
    one."""
    stamps = [r.submittedAt for r in getattr(build, "requests", None) or []
              if getattr(r, "submittedAt", None)]
    return min(stamps) if stamps else time.time()


class BuildDebianPackage(buildstep.ShellMixin, buildstep.BuildStep):
    """`dpkg-buildpackage -b` in the checkout; the .deb files land next to it (`..`).

    Needs `package_version` and `commit_time` from StampVersion; sets the property `debs`, the
    file names of the packages built, and checks that every package the settings name is there.
    """

    name = "deb"
    description = "building package"
    descriptionDone = "package"
    renderables = ["packages", "sandbox"]

    def __init__(self, packages: list[str] | tuple[str, ...] = (), sandbox=(), **kwargs):
        self.packages = list(packages)
        self.sandbox = sandbox  # argv prefix: debian/rules is the project's own code
        kwargs.setdefault("haltOnFailure", True)
        kwargs = self.setupShellMixin(kwargs)
        super().__init__(**kwargs)
        self.debs: list[str] = []

    @defer.inlineCallbacks
    def run(self):
        version = release.deb_filename_version(self.getProperty("package_version"))
        # previous builds' files in the shared parent directory must not be picked up
        cmd = yield self.makeRemoteShellCommand(
            command=["find", "..", "-maxdepth", "1", "-type", "f", "(", "-name", "*.deb",
                     "-o", "-name", "*.changes", "-o", "-name", "*.buildinfo", ")", "-delete"],
            stdioLogName="clean")
        yield self.runCommand(cmd)

        env = {"SOURCE_DATE_EPOCH": str(self.getProperty("commit_time")),
               "DEB_BUILD_OPTIONS": "nocheck"}
        cmd = yield self.makeRemoteShellCommand(
            command=[*self.sandbox, "dpkg-buildpackage", "-b", "-us", "-uc"], env=env)
        yield self.runCommand(cmd)
        if cmd.didFail():
            return cmd.results()

        cmd = yield self.makeRemoteShellCommand(
            command=["find", "..", "-maxdepth", "1", "-type", "f", "-name",
                     f"*_{version}_*.deb", "-printf", "%f\\n"],
            collectStdout=True, stdioLogName="debs")
        yield self.runCommand(cmd)
        self.debs = sorted(cmd.stdout.split())
        built = {deb.split("_", 1)[0] for deb in self.debs}
        missing = [p for p in self.packages if p not in built]
        log = yield self.addLog("packages")
        yield log.addStdout("".join(f"{deb}\n" for deb in self.debs))
        if missing:
            yield log.addStderr(
                f"debian/ built {sorted(built) or 'nothing'} but the settings name "
                f"{', '.join(missing)}: fix `packages` in pipeline.toml or debian/control\n")
            return results.FAILURE
        self.setProperty("debs", self.debs, "BuildDebianPackage")
        return results.SUCCESS

    def getResultSummary(self):
        if self.debs and self.results == results.SUCCESS:
            return {"step": "built " + ", ".join(self.debs)}
        return super().getResultSummary()


class UploadPackages(buildstep.BuildStep):
    """Copy each built .deb (property `debs`) to the master's artifact store, linked from the build.

    The store is served by the repository's web server, so every package of every build can be
    downloaded from the build page; the publish builder takes them from there.
    """

    name = "upload"
    description = "uploading packages"
    descriptionDone = "uploaded"

    def __init__(self, artifacts_dir: str, artifacts_url: str, **kwargs):
        self.artifacts_dir = str(artifacts_dir)
        self.artifacts_url = artifacts_url
        super().__init__(**kwargs)

    def run(self):
        debs = self.getProperty("debs") or []
        where = artifact_path(self.getProperty("buildername"), self.build.number)
        self.setProperty("artifacts_path", where, "UploadPackages")
        self.build.addStepsAfterCurrentStep([
            FileUpload(
                name=release.deb_step_name("upload", deb),
                workersrc=f"../{deb}",
                masterdest=posixpath.join(self.artifacts_dir, where, deb),
                url=f"{self.artifacts_url}{where}/{deb}",
                urlText=deb,
                mode=0o644,
                haltOnFailure=True,
            )
            for deb in debs
        ])
        self.descriptionDone = f"{len(debs)} package(s) to upload"
        return defer.succeed(results.SUCCESS if debs else results.FAILURE)


def artifact_path(builder: str, number: int) -> str:
    """Where a build's artifacts live below the artifact store: `<builder>/<number>`."""
    return f"{builder}/{int(number)}"
