"""Apt repository steps (aptly): add packages, snapshot, publish signed, verify over HTTP.

They run in the `publish` builder on the worker that holds the repository, one build at a time
(the builder takes the repository lock). Each step is one aptly command; a failure stops the
build, and since only `publish switch` changes what clients see, the published distribution stays
as it was until the very step that replaces it in one go.
"""

from __future__ import annotations

import posixpath
from datetime import datetime
from datetime import timezone

import treq
from buildbot.process import buildstep
from buildbot.process import results
from buildbot.steps.transfer import FileDownload
from twisted.internet import defer

from master import repository


class FetchPackages(buildstep.BuildStep):
    """Download the .deb files named by `debs` from the master's artifact store to `incoming/`."""

    name = "fetch"
    description = "fetching packages"
    descriptionDone = "fetched"

    def __init__(self, artifacts_dir: str, incoming: str = "incoming", **kwargs):
        self.artifacts_dir = str(artifacts_dir)
        self.incoming = incoming
        kwargs.setdefault("haltOnFailure", True)
        super().__init__(**kwargs)

    def run(self):
        debs = self.getProperty("debs") or []
        where = self.getProperty("artifacts_path")
        if not debs or not where:
            self.descriptionDone = "no packages named"
            return defer.succeed(results.FAILURE)
        self.build.addStepsAfterCurrentStep([
            FileDownload(name=f"fetch {deb}",
                         mastersrc=posixpath.join(self.artifacts_dir, where, deb),
                         workerdest=f"{self.incoming}/{deb}", haltOnFailure=True)
            for deb in debs
        ])
        self.descriptionDone = f"fetching {len(debs)} package(s)"
        return defer.succeed(results.SUCCESS)


class AptlyCommand(buildstep.ShellMixin, buildstep.BuildStep):
    """Base: `aptly -config=<config> <args…>` with the repository's GnuPG home."""

    renderables = ["distribution"]

    def __init__(self, aptly_config: str, gnupg_home: str, distribution=None, **kwargs):
        self.aptly_config = str(aptly_config)
        self.distribution = distribution
        kwargs.setdefault("haltOnFailure", True)
        kwargs["env"] = {**(kwargs.get("env") or {}), "GNUPGHOME": str(gnupg_home)}
        kwargs = self.setupShellMixin(kwargs)
        super().__init__(**kwargs)

    def aptly(self, *args: str) -> list[str]:
        return ["aptly", f"-config={self.aptly_config}", *args]

    @defer.inlineCallbacks
    def run_aptly(self, *args: str, **kwargs):
        cmd = yield self.makeRemoteShellCommand(command=self.aptly(*args), **kwargs)
        yield self.runCommand(cmd)
        return cmd


class AddToRepository(AptlyCommand):
    """`aptly repo add <distribution> incoming/`: the local repo keeps every version."""

    name = "add"
    description = "adding packages"
    descriptionDone = "added"

    def __init__(self, incoming: str = "incoming", **kwargs):
        self.incoming = incoming
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def run(self):
        cmd = yield self.run_aptly("repo", "add", self.distribution, self.incoming)
        if not cmd.didFail():
            self.descriptionDone = f"added to {self.distribution}"
        return cmd.results()


class CreateSnapshot(AptlyCommand):
    """An immutable snapshot of the distribution's repo: the distribution's next history entry.

    Sets the property `snapshot`.
    """

    name = "snapshot"
    description = "snapshotting"
    descriptionDone = "snapshot"

    @defer.inlineCallbacks
    def run(self):
        snapshot = repository.snapshot_name(
            self.distribution, datetime.now(timezone.utc),
            self.getProperty("buildername"), self.build.number)
        cmd = yield self.run_aptly("snapshot", "create", snapshot, "from", "repo",
                                   self.distribution)
        if not cmd.didFail():
            self.setProperty("snapshot", snapshot, "CreateSnapshot")
            self.descriptionDone = snapshot
        return cmd.results()


class PublishSwitch(AptlyCommand):
    """`aptly publish switch`: the distribution now serves the snapshot, signed, in one step."""

    name = "publish"
    description = "publishing"
    descriptionDone = "published"

    def __init__(self, signing_key: str = "", **kwargs):
        self.signing_key = signing_key
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def run(self):
        snapshot = self.getProperty("snapshot")
        key = [f"-gpg-key={self.signing_key}"] if self.signing_key else []
        cmd = yield self.run_aptly("publish", "switch", "-batch", *key,
                                   self.distribution, ".", snapshot)
        if not cmd.didFail():
            self.descriptionDone = f"{self.distribution} → {snapshot}"
        return cmd.results()


class VerifyPublished(buildstep.BuildStep):
    """Fetch the distribution's `Packages` indexes over HTTP, as apt would, and check that every
    package of `debs` is listed there at `package_version`. Runs on the master."""

    name = "verify"
    description = "verifying"
    descriptionDone = "verified"
    renderables = ["distribution"]

    def __init__(self, repo_url: str, component: str, architectures, distribution=None,
                 **kwargs):
        self.repo_url = repo_url.rstrip("/") + "/"
        self.component = component
        self.architectures = [a for a in architectures if a != "all"] or list(architectures)
        self.distribution = distribution
        kwargs.setdefault("haltOnFailure", True)
        super().__init__(**kwargs)

    def fetch(self, url: str):
        """GET url -> (status code, body text). Replaced in unit tests."""
        d = treq.get(url, timeout=30)
        d.addCallback(lambda resp: treq.text_content(resp, encoding="utf-8").addCallback(
            lambda body: (resp.code, body)))
        return d

    @defer.inlineCallbacks
    def run(self):
        log = yield self.addLog("stdio")
        version = self.getProperty("package_version")
        wanted = sorted({deb.split("_", 1)[0] for deb in self.getProperty("debs") or []})
        listed: dict[str, set[str]] = {}
        for arch in self.architectures:
            url = (f"{self.repo_url}dists/{self.distribution}/{self.component}/"
                   f"binary-{arch}/Packages")
            try:
                code, body = yield self.fetch(url)
            except Exception as exc:  # connection refused, timeout…
                yield log.addStderr(f"GET {url} failed: {exc}\n")
                self.descriptionDone = "repository not reachable"
                return results.FAILURE
            yield log.addStdout(f"GET {url} -> {code}\n")
            if code != 200:
                yield log.addStderr(f"{url} answered {code}\n")
                self.descriptionDone = f"index answered {code}"
                return results.FAILURE
            for name, versions in repository.parse_packages_index(body).items():
                listed.setdefault(name, set()).update(versions)
        missing = [name for name in wanted if version not in listed.get(name, set())]
        if missing or not wanted:
            for name in missing or ["(no packages named)"]:
                have = ", ".join(sorted(listed.get(name, set()))) or "nothing"
                yield log.addStderr(
                    f"{name} {version} is not listed in {self.distribution}'s Packages index "
                    f"(it lists {have})\n")
            self.descriptionDone = f"{', '.join(missing) or 'nothing'} {version} missing"
            return results.FAILURE
        for name in wanted:
            yield log.addStdout(f"{name} {version} is in {self.distribution}\n")
        self.descriptionDone = f"{' '.join(wanted)} {version} in {self.distribution}"
        return results.SUCCESS
