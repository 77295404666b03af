"""Provenance steps (conveyor/provenance.py): a publish attests each package before it
publishes it; a promotion into a path's last distribution proves each one first.

Attest runs in the publish build, on the repository's worker: the master makes each .deb's
in-toto statement from what it saw (the package build, through the data API: its builder,
number, worker and times; the .deb's sha256, from the master's own artifact store), hands it
to the worker, and the worker signs it with the repository's key (worker/bin/conveyor-attest)
into the served tree's provenance/. A package that cannot be attested is not published.
"""

from __future__ import annotations

import base64
import hashlib
import json
import posixpath
from datetime import UTC
from datetime import datetime

from twisted.internet import defer
from twisted.internet import threads

from buildbot.data.resultspec import Filter
from buildbot.process import buildstep
from buildbot.process import results

from conveyor import buildprops
from conveyor import debformats
from conveyor import provenance
from conveyor import served
from conveyor import targets
from steps.repository import SIGNING_MESSAGE
from steps.summary import Summarized

GNUPG_FAILED = 4  # conveyor-attest's exit status when GnuPG could not sign


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _when(epoch) -> str | None:
    if epoch is None:
        return None
    if isinstance(epoch, datetime):
        return epoch.astimezone(UTC).isoformat(timespec="seconds")
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


class Attest(Summarized, buildstep.ShellMixin, buildstep.BuildStep):
    """Sign the provenance of each .deb of `debs` (see the module's docstring)."""

    name = "attest"
    description = "attesting"
    descriptionDone = "attested"
    logEnviron = False

    def __init__(
        self, artifacts_dir, projects, web_url, www_root, key, passphrase_file, gnupg_home, **kwargs
    ):
        self.artifacts_dir = str(artifacts_dir)
        self.projects = projects  # {project: {clone_url, branch, targets}}
        self.web_url = web_url
        self.out_dir = posixpath.join(str(www_root), "provenance")
        self.key = key
        self.passphrase_file = passphrase_file
        self.gnupg_home = str(gnupg_home)
        kwargs.setdefault("haltOnFailure", True)
        kwargs = self.setupShellMixin(kwargs, prohibitArgs=["command"])
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def package_build(self, where: str):
        """The package build that made the .debs (its artifacts are at <builder>/<number>)."""
        name, number = where.rsplit("/", 1)
        builders = yield self.master.data.get(("builders",), filters=[Filter("name", "eq", [name])])
        if not builders:
            return None, name
        build = yield self.master.data.get(
            ("builders", builders[0]["builderid"], "builds", int(number))
        )
        if build is None:
            return None, name
        worker = yield self.master.data.get(("workers", build["workerid"]))
        build["worker"] = worker["name"] if worker else "?"
        properties = yield self.master.data.get(("builds", build["buildid"], "properties"))
        build["bases"] = (properties or {}).get(buildprops.CHROOT_BASES, ({}, None))[0] or {}
        build["records"] = (properties or {}).get(buildprops.BUILDINFOS, ([], None))[0] or []
        return build, name

    @defer.inlineCallbacks
    def buildinfo(self, where: str, build: dict, deb_version: str, files: dict):
        """(file name, sha256) of the package build's .buildinfo of that version, read from the
        master's artifact store into `files` (base64, for conveyor-attest to write to the
        served provenance/ beside the envelopes); None when the build recorded none (a build
        from before Conveyor kept them)."""
        name = next((b for b in build["records"] if b.split("_")[1] == deb_version), None)
        if name is None:
            return None
        path = posixpath.join(self.artifacts_dir, where, name)
        data = yield threads.deferToThread(lambda: open(path, "rb").read())
        files[name] = base64.b64encode(data).decode()
        return name, hashlib.sha256(data).hexdigest()

    @defer.inlineCallbacks
    def run(self):
        debs = self.getProperty(buildprops.DEBS) or []
        artifacts = self.getProperty(buildprops.ARTIFACT_PATHS) or {}
        # the project whose packages these are (the build's `project` is its sourcestamp's)
        names = set(debformats.packages_of(debs))
        name, project = next(
            ((n, p) for n, p in self.projects.items() if names <= set(p["packages"])), (None, None)
        )
        commit = self.getProperty("commit")
        if not (debs and all(artifacts.get(deb) for deb in debs) and project and commit):
            self.summary = "nothing to attest: no packages, artifacts, project or commit named"
            return results.FAILURE
        package_builds = {}  # each release's package build, by its artifact path
        for where in sorted({artifacts[deb] for deb in debs}):
            package_builds[where] = yield self.package_build(where)
            if package_builds[where][0] is None:
                self.summary = f"the package build {where} is unknown to the master: not attested"
                return results.FAILURE
        base = self.web_url.rstrip("/") + "/"
        version = self.getProperty(buildprops.PACKAGE_VERSION)
        log = yield self.addLog("statements")
        statements, files = {}, {}  # handed to conveyor-attest in one worker command
        for deb in debs:
            where = artifacts[deb]
            build, builder = package_builds[where]
            sha256 = yield threads.deferToThread(
                _sha256, posixpath.join(self.artifacts_dir, where, deb)
            )
            deb_version = deb.split("_")[1]
            target = targets.base_of(deb_version, project["targets"])[1] or ""
            bases = {
                n: d for n, d in build["bases"].items() if not target or n.startswith(f"{target}-")
            }
            statement = provenance.statement(
                deb=deb,
                sha256=sha256,
                clone_url=project["clone_url"],
                branch=project["branch"],
                commit=commit,
                project=name,
                version=version,
                target=target,
                bases=bases,
                builder_url=f"{base}#/builders/{build['builderid']}",
                build_url=f"{base}#/builders/{build['builderid']}/builds/{build['number']}",
                worker=build["worker"],
                started=_when(build.get("started_at")),
                finished=_when(build.get("complete_at")),
                parameters={
                    "builder": builder,
                    "number": build["number"],
                    "distribution": self.getProperty("distribution"),
                },
                buildinfo=(yield self.buildinfo(where, build, deb_version, files)),
            )
            text = json.dumps(statement, indent=1, sort_keys=True)
            yield log.addStdout(f"{deb}:\n{text}\n")
            statements[deb] = statement
        command = ["conveyor-attest", "--key", self.key, "--out-dir", self.out_dir, "--bundle"]
        if self.passphrase_file:
            command += ["--passphrase-file", str(self.passphrase_file)]
        cmd = yield self.makeRemoteShellCommand(
            command=command,
            env={"GNUPGHOME": self.gnupg_home},
            initialStdin=json.dumps({"statements": statements, "files": files}),
        )
        yield self.runCommand(cmd)
        if cmd.didFail():
            # GnuPG (exit 4): as the publish's own signing says it, for the admins' mail
            self.summary = (
                SIGNING_MESSAGE
                if cmd.rc == GNUPG_FAILED
                else "the provenance could not be signed: nothing was published"
            )
            return results.FAILURE
        self.setProperty(buildprops.PROVENANCE, "signed", "Attest")
        self.summary = f"attested {len(debs)} package(s), signed with the repository's key"
        return results.SUCCESS


class CheckProvenance(Summarized, buildstep.BuildStep):
    """Before a promotion into a path's last distribution: every .deb of the version, as the
    repository serves it, proves out by its signed provenance (conveyor/provenance.py), or the
    promotion stops here and says why."""

    name = "provenance"
    description = "verifying provenance"
    descriptionDone = "provenance verified"

    def __init__(self, settings, **kwargs):
        self.settings = settings
        kwargs.setdefault("haltOnFailure", True)
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def run(self):
        package = self.getProperty("package")
        version = self.getProperty(buildprops.PACKAGE_VERSION)
        log = yield self.addLog("stdio")
        try:
            proofs = yield threads.deferToThread(
                provenance.verify_served,
                self.settings,
                package,
                version,
                served.fetch,
                lambda url: served.fetch(url, raw=True),
            )
        except (provenance.ProvenanceError, OSError) as exc:
            yield log.addStderr(f"{exc}\n")
            self.summary = f"refused: {package} {version} does not verify: {exc}"
            return results.FAILURE
        yield log.addStdout("".join(line + "\n" for p in proofs for line in p.lines()))
        self.setProperty(buildprops.PROVENANCE, "verified", "CheckProvenance")
        self.summary = f"{package} {version}: provenance verified ({len(proofs)} package(s))"
        return results.SUCCESS
