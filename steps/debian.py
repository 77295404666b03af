"""Debian packaging steps: stamp a unique version, build the .deb, hand it to the master."""

from __future__ import annotations

import posixpath
import re
import time
from datetime import UTC
from datetime import datetime

from twisted.internet import defer

from buildbot.process import buildstep
from buildbot.process import remotecommand
from buildbot.process import remotetransfer
from buildbot.process import results

from conveyor import buildprops
from conveyor import debformats
from conveyor import release
from conveyor import targets
from steps.summary import Summarized

CHANGELOG = "debian/changelog"


class StampVersion(Summarized, buildstep.BuildStep):
    """The CI entry for debian/changelog: `<upstream>+ci<date>.<time>.<build>.g<sha>`
    (conveyor.debformats.ci_version), commit, build URL. On the master alone: the changelog's first
    entry comes from the checkout (`changelog_head`, steps/checkout.py, read from the commit by
    git), and the deb step writes the entry in its sandbox (BuildDebianPackage).

    Sets the properties `package_version`, `source_package`, `changelog_entry` and `commit_time`
    (the commit's timestamp, used as SOURCE_DATE_EPOCH by the package build). In a package build
    started by a CI build (steps/package.py), the version is the CI build's: its number
    (`ci_number`) and when its request reached the master (`ci_submitted`); the entry names the
    CI build (`ci_url`), the one result of the push.
    """

    name = "version"
    description = "stamping version"
    descriptionDone = "version"

    @defer.inlineCallbacks
    def run(self):
        log = yield self.addLog("stdio")
        text = self.getProperty("changelog_head")
        if not text:
            yield log.addStderr(
                f"{CHANGELOG} not found in the commit: the project needs a "
                "debian/ directory to be packaged\n"
            )
            return results.FAILURE
        revision = self.getProperty("got_revision") or self.getProperty("revision")
        try:
            head = debformats.parse_changelog_head(text)
            number = self.getProperty(buildprops.CI_NUMBER) or self.build.number
            version = debformats.ci_version(head, number, revision, self.submitted())
        except release.ReleaseError as exc:
            yield log.addStderr(f"{exc}\n")
            return results.FAILURE

        commit_time = self.getProperty(buildprops.COMMIT_TIME)  # the checkout's (steps/checkout.py)
        if commit_time is None:
            yield log.addStderr(
                f"no commit time for {revision}: the checkout (steps/checkout.py) sets it\n"
            )
            return results.FAILURE

        build_url = self.getProperty("ci_url") or (yield self.build.getUrl())
        stanza = debformats.changelog_stanza(
            head.source,
            version,
            commit=revision,
            build_url=build_url,
            timestamp=commit_time,
            message=f"Built by Conveyor from commit {revision[:12]}.",
        )
        yield log.addStdout(stanza)
        self.setProperty(buildprops.PACKAGE_VERSION, version, "StampVersion")
        self.setProperty(buildprops.SOURCE_PACKAGE, head.source, "StampVersion")
        self.setProperty("changelog_entry", stanza, "StampVersion")
        self.setProperty(buildprops.COMMIT_TIME, commit_time, "StampVersion")
        self.summary = f"version {version}"
        return results.SUCCESS

    def submitted(self) -> datetime:
        """When the (CI) build's first request reached the master: the push, on the master's
        clock."""
        given = self.getProperty("ci_submitted")
        return datetime.fromtimestamp(given if given else submitted_at(self.build), tz=UTC)


def submitted_at(build) -> float:
    """When `build`'s first request reached the master (a Unix time); now, for a build without
    one."""
    stamps = [
        r.submittedAt
        for r in getattr(build, "requests", None) or []
        if getattr(r, "submittedAt", None)
    ]
    return min(stamps) if stamps else time.time()


# Inside the sandbox, the source package (its .dsc and tarball, in `..`): the CI entry ($1) on
# top of debian/changelog, the format native (a CI version has no Debian revision, so a CI
# build from the checkout is a native package, whatever the project ships for its releases),
# then dpkg-source, which runs none of the project's code. In the sandbox all the same, because
# the files are the project's (a symlink there reaches nothing secret).
SOURCE_SCRIPT = r"""set -e
{ printf '%s' "$1"; cat debian/changelog; } > debian/changelog.conveyor
mv -f debian/changelog.conveyor debian/changelog
mkdir -p debian/source
echo '3.0 (native)' > debian/source/format
dpkg-source --build .
"""

# One worker command (each is a round trip between master and worker): remove the files of earlier
# builds from the builder's directory, make the source package ($4…: in the sandbox), check what
# it left (regular files only: the clean build reads them with the worker's rights), build its
# binary packages for the release ($3, empty: the worker's own) in a throwaway chroot
# (worker/bin/conveyor-chroot-build), then list this version's .debs ($1: their name pattern) after
# the line BUILT. By then nothing the source build started runs any more (the sandbox's PID
# namespace is gone with it), and the clean build wrote only its results here, so what follows
# the last BUILT line is find's; only regular files are listed (a link could point anywhere).
BUILT = "conveyor: built packages:"
BASE = "conveyor: chroot base: "  # the line before BUILT: "<sha256>  <base's file name>"
BUILD_SCRIPT = rf"""set -u
pattern=$1 dsc=$2 release=$3
shift 3
find .. -maxdepth 1 -type f \( -name '*.deb' -o -name '*.changes' -o -name '*.buildinfo' \
    -o -name '*.dsc' -o -name '*.tar.*' \) -delete || exit
"$@" || exit
links=$(find .. -maxdepth 1 -type l)
if [ -n "$links" ]; then
    echo "conveyor: the source build left symbolic links beside the checkout: $links" >&2
    exit 1
fi
if [ ! -f "$dsc" ]; then
    echo "conveyor: the source build made no $dsc" >&2
    exit 1
fi
conveyor-chroot-build "$release" "$dsc" || exit
base=$(conveyor-chroot-build --digest "$release") || exit
echo "{BASE}$base"
echo '{BUILT}'
find .. -maxdepth 1 -type f \( -name "$pattern" -o -name "${{pattern%.deb}}.buildinfo" \) \
    -printf '%f\n'
"""


def chroot_base(stdout: str) -> tuple[str, str] | None:
    """(the base's file name, its sha256) from the line BUILD_SCRIPT printed just before its
    last BUILT line, when nothing of the build ran any more; None without it."""
    if f"{BUILT}\n" not in stdout:
        return None
    last = stdout.rsplit(f"{BUILT}\n", 1)[0].rstrip("\n").rsplit("\n", 1)[-1]
    if not last.startswith(BASE) or len(last[len(BASE) :].split()) != 2:
        return None
    digest, name = last[len(BASE) :].split()
    return name, digest


def built_debs(stdout: str, version: str, suffix: str = ".deb") -> list[str]:
    """The .debs (or, with `suffix` .buildinfo, the build records) BUILD_SCRIPT listed after
    its last BUILT line: file names of `version` (without epoch), nothing else."""
    if f"{BUILT}\n" not in stdout:
        return []
    listed = stdout.rsplit(f"{BUILT}\n", 1)[1].split()
    name = re.compile(rf"[a-z0-9][a-z0-9+.-]*_{re.escape(version)}_[a-z0-9-]+{re.escape(suffix)}")
    return sorted(deb for deb in listed if name.fullmatch(deb))


class BuildDebianPackage(Summarized, buildstep.ShellMixin, buildstep.BuildStep):
    """The binary packages of the checkout, built as Debian builds them: the source package is
    made in the sandbox (`sandbox`), then built in a throwaway chroot of the target
    release (worker/bin/conveyor-chroot-build), its Build-Depends installed there; the .deb files
    land next to the checkout (`..`).

    Needs `package_version`, `source_package` and `changelog_entry` from StampVersion; sets the
    property `debs`, the file names of the packages built, and checks that every package the
    settings name is there.

    With a `target` release (conveyor/targets.py), the packages' version carries its suffix
    (`…+deb13`) and the step is named after it: each of a project's targets has a package build
    of its own, beside the others (steps/package.py).
    """

    logEnviron = False  # the worker's environment is in no log (steps/__init__.py)

    name = "deb"
    description = "building package"
    descriptionDone = "package"
    renderables = ["packages", "sandbox", "release"]

    def __init__(
        self,
        packages: list[str] | tuple[str, ...] = (),
        sandbox=(),
        release: str = "",
        target: str = "",
        **kwargs,
    ):
        self.packages = list(packages)
        self.sandbox = sandbox  # argv prefix: the checkout is the project's own
        self.target = target  # one of the project's target releases, its version suffixed
        self.release = release or target  # the release built for; empty: the worker's own
        if target:
            kwargs.setdefault("name", f"deb-{target}")
        kwargs.setdefault("haltOnFailure", True)
        kwargs = self.setupShellMixin(kwargs)
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def run(self):
        full = self.getProperty(buildprops.PACKAGE_VERSION)
        entry = self.getProperty("changelog_entry")
        if self.target:  # the entry's first line names the version: `source (version) …`
            full = targets.version(full, self.target)
            head, rest = entry.split("\n", 1)
            entry = re.sub(r"\(([^)]*)\)", f"({full})", head, count=1) + "\n" + rest
        version = debformats.deb_filename_version(full)
        dsc = f"../{self.getProperty(buildprops.SOURCE_PACKAGE)}_{version}.dsc"
        cmd = yield self.makeRemoteShellCommand(
            command=[
                "bash",
                "-c",
                BUILD_SCRIPT,
                "deb",
                f"*_{version}_*.deb",
                dsc,
                self.release,
                *self.sandbox,
                "sh",
                "-c",
                SOURCE_SCRIPT,
                "source",
                entry,
            ],
            collectStdout=True,
        )
        yield self.runCommand(cmd)
        if cmd.didFail():
            return cmd.results()
        debs = built_debs(cmd.stdout, version)
        built = debformats.packages_of(debs)
        missing = [p for p in self.packages if p not in built]
        if missing:
            log = yield self.addLog("packages")
            yield log.addStderr(
                f"debian/ built {sorted(built) or 'nothing'} but the settings name "
                f"{', '.join(missing)}: fix `packages` in pipeline.toml or debian/control\n"
            )
            return results.FAILURE
        for name, found in (
            (buildprops.DEBS, debs),
            # the build's record, its .buildinfo (its environment, the .debs' digests): provenance
            (buildprops.BUILDINFOS, built_debs(cmd.stdout, version, ".buildinfo")),
        ):
            self.setProperty(name, found, "BuildDebianPackage")
        base = chroot_base(cmd.stdout)
        if base:  # which chroot each release was built in: the provenance names it
            self.setProperty(buildprops.CHROOT_BASES, {base[0]: base[1]}, "BuildDebianPackage")
        if debs:
            self.summary = "built " + ", ".join(debs)
        return results.SUCCESS


class UploadPackages(Summarized, buildstep.BuildStep):
    """Copy each built .deb (property `debs`) to the master's artifact store, linked from the build,
    in this one step (a step per file would cost a round of Buildbot's bookkeeping each, on the
    way from push to staging).

    The store is served by the repository's web server, so every package of every build can be
    downloaded from the build page; the publish builder takes them from there.
    """

    name = "upload"
    description = "uploading packages"
    descriptionDone = "uploaded"
    BLOCKSIZE = 256 * 1024  # per round trip (Buildbot's FileUpload: 256 KiB too)

    def __init__(self, artifacts_dir: str, artifacts_url: str, **kwargs):
        self.artifacts_dir = str(artifacts_dir)
        self.artifacts_url = artifacts_url
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def run(self):
        debs = self.getProperty(buildprops.DEBS) or []
        where = artifact_path(self.getProperty("buildername"), self.build.number)
        self.setProperty(buildprops.ARTIFACTS_PATH, where, "UploadPackages")
        if not debs:
            self.summary = "no packages to upload"
            return results.FAILURE
        log = yield self.addLog("stdio")
        # and the .buildinfo of each release, which the provenance records (steps/provenance.py)
        for deb in debs + list(self.getProperty(buildprops.BUILDINFOS) or []):
            masterdest = posixpath.join(self.artifacts_dir, where, deb)
            writer = remotetransfer.FileWriter(masterdest, None, 0o644)
            cmd = remotecommand.RemoteCommand(
                "uploadFile",
                {
                    "workdir": self.workdir,
                    "workersrc": f"../{deb}",
                    "writer": writer,
                    "maxsize": None,
                    "blocksize": self.BLOCKSIZE,
                    "keepstamp": False,
                },
            )
            try:
                yield self.runCommand(cmd)
            finally:
                writer.cancel()  # (nothing left to cancel once the worker closed it)
            if cmd.didFail():
                writer.purge()
                yield log.addStderr(f"../{deb} could not be uploaded to {masterdest}\n")
                self.summary = f"{deb} not uploaded"
                return results.FAILURE
            yield log.addStdout(f"../{deb} -> {masterdest}\n")
            yield self.addURL(deb, artifact_url(self.artifacts_url, where, deb))
        self.summary = f"uploaded {len(debs)} package(s)"
        return results.SUCCESS


def artifact_path(builder: str, number: int) -> str:
    """Where a build's artifacts live below the artifact store: `<builder>/<number>`."""
    return f"{builder}/{int(number)}"


def artifact_url(artifacts_url: str, where: str, name: str) -> str:
    """Where the artifact store serves a build's artifact (`where`: its artifact_path)."""
    return f"{artifacts_url}{where}/{name}"
