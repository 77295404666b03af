"""Reading a distribution's `Packages` index over HTTP, as apt does: the steps that check a
publish (VerifyPublished), look for a commit already published (SkipPublishedCommit), and the
reader the promotion's check shares (IndexReader). They run on the master.

A distribution with target releases is read from each of its components; it lists a version
when every release's component does (conveyor/targets.py).
"""

from __future__ import annotations

import treq
from twisted.internet import defer

from buildbot.process import buildstep
from buildbot.process import results

from conveyor import buildprops
from conveyor import debformats
from conveyor import targets
from steps.summary import Summarized


class IndexReader:
    """Reads a distribution's `Packages` index over HTTP, as apt does."""

    def fetch(self, url: str):
        """GET url -> (status code, body text). Replaced in unit tests."""
        d = treq.get(url, timeout=30)
        d.addCallback(
            lambda resp: treq.text_content(resp, encoding="utf-8").addCallback(
                lambda body: (resp.code, body)
            )
        )
        return d

    @defer.inlineCallbacks
    def read_index(self, log, distribution: str):
        """-> list of stanzas, or a string saying what went wrong. A distribution with target
        releases is read from each of its components: the versions every release has, by
        their CI version (conveyor/targets.py)."""
        releases = self.components.get(distribution)
        if not releases:
            return (yield self.read_component(log, distribution, self.component))
        per_target = {}
        for release_ in releases:
            stanzas = yield self.read_component(log, distribution, release_)
            if isinstance(stanzas, str):
                return stanzas
            per_target[release_] = stanzas
        return targets.merged(per_target)

    @defer.inlineCallbacks
    def read_component(self, log, distribution: str, component: str):
        stanzas: list[dict] = []
        for arch in self.index_architectures:
            url = f"{self.repo_url}dists/{distribution}/{component}/binary-{arch}/Packages"
            try:
                code, body = yield self.fetch(url)
            except Exception as exc:  # connection refused, timeout…
                yield log.addStderr(f"GET {url} failed: {exc}\n")
                return "repository not reachable"
            yield log.addStdout(f"GET {url} -> {code}\n")
            if code != 200:
                yield log.addStderr(f"{url} answered {code}\n")
                return f"index answered {code}"
            stanzas.extend(debformats.parse_packages_stanzas(body))
        return stanzas

    def setup_index(self, repo_url: str, component: str, architectures, components=None) -> None:
        self.repo_url = repo_url.rstrip("/") + "/"
        self.component = component
        self.components = dict(components or {})  # {distribution: its target releases}
        # "all" packages are listed in every architecture's index
        self.index_architectures = [a for a in architectures if a != "all"] or list(architectures)


class DistributionIndexStep(Summarized, IndexReader, buildstep.BuildStep):
    """Base: a step on the master that reads one distribution's `Packages` index over HTTP."""

    renderables = ["distribution"]

    def __init__(
        self,
        repo_url: str,
        component: str,
        architectures,
        distribution=None,
        components=None,
        **kwargs,
    ):
        self.setup_index(repo_url, component, architectures, components)
        self.distribution = distribution
        kwargs.setdefault("haltOnFailure", True)
        super().__init__(**kwargs)


class VerifyPublished(DistributionIndexStep):
    """Check over HTTP that the distribution's `Packages` index lists every package (property
    `verify_packages`, or the names of `debs`) at `package_version` — and, after a rollback, no
    longer lists `verify_absent`. Runs on the master."""

    name = "verify"
    description = "verifying"
    descriptionDone = "verified"

    @defer.inlineCallbacks
    def run(self):
        log = yield self.addLog("stdio")
        version = self.getProperty(buildprops.PACKAGE_VERSION)
        absent = self.getProperty("verify_absent")
        wanted = sorted(
            self.getProperty("verify_packages")
            or debformats.packages_of(self.getProperty(buildprops.DEBS))
        )
        stanzas = yield self.read_index(log, self.distribution)
        if isinstance(stanzas, str):
            self.summary = stanzas
            return results.FAILURE
        listed: dict[str, set[str]] = {}
        for fields in stanzas:
            listed.setdefault(fields["Package"], set()).add(fields["Version"])
        problems = []
        if not wanted or not (version or absent):
            problems.append(("nothing to verify", "no package or version named\n"))
        for name in wanted:
            have = ", ".join(sorted(listed.get(name, set()))) or "nothing"
            if version and version not in listed.get(name, set()):
                problems.append(
                    (
                        f"{name} {version} missing",
                        f"{name} {version} is not listed in {self.distribution}'s "
                        f"Packages index (it lists {have})\n",
                    )
                )
            if absent and absent in listed.get(name, set()):
                problems.append(
                    (
                        f"{name} {absent} still listed",
                        f"{name} {absent} is still listed in {self.distribution}\n",
                    )
                )
        if problems:
            for _, line in problems:
                yield log.addStderr(line)
            self.summary = "; ".join(summary for summary, _ in problems)
            return results.FAILURE
        for name in wanted:
            yield log.addStdout(
                f"{name} {version or '(none)'} is in {self.distribution}"
                f"{f', {absent} is not' if absent else ''}\n"
            )
        self.summary = (
            f"{' '.join(wanted)} {version or ''} in {self.distribution}"
            if version
            else f"{absent} left {self.distribution}"
        )
        return results.SUCCESS


class SkipPublishedCommit(DistributionIndexStep):
    """Before a publish: is a package built from this commit (property `commit`, compared with
    the Conveyor-Commit of each package of `debs`) already in the distribution? Then this build
    is a retry of one that got that far (e.g. its master was killed mid-publish) or a rebuild of
    the same commit: it publishes nothing, so that a commit is one version, never two. Sets
    `already_published` to that version. Runs on the master, reading the index over HTTP.

    Except after a force-push back (`push_forced`): when a newer commit's version is the newest
    in the distribution, this commit is published again as its new version, so that the
    distribution serves what the branch now holds."""

    name = "already published?"
    description = "looking for the commit"
    descriptionDone = "new commit"

    @defer.inlineCallbacks
    def run(self):
        log = yield self.addLog("stdio")
        commit = self.getProperty("commit")
        names = debformats.packages_of(self.getProperty(buildprops.DEBS))
        if not commit or not names:
            return results.SUCCESS
        stanzas = yield self.read_index(log, self.distribution)
        if isinstance(stanzas, str):
            self.summary = stanzas
            return results.FAILURE
        found = sorted(
            {
                s["Version"]
                for s in stanzas
                if s["Package"] in names and s.get("Conveyor-Commit") == commit
            },
            key=debformats.check_version,
        )
        if not found:
            return results.SUCCESS
        newest = max(
            (s["Version"] for s in stanzas if s["Package"] in names), key=debformats.check_version
        )
        if self.getProperty(buildprops.PUSH_FORCED) and newest not in found:
            yield log.addStdout(
                f"commit {commit[:12]} is in {self.distribution} as {found[-1]}, "
                f"but {newest} is newer: the branch was force-pushed back, so "
                "it is published again\n"
            )
            self.summary = f"force-pushed back to {commit[:12]}: published again"
            return results.SUCCESS
        self.setProperty(buildprops.ALREADY_PUBLISHED, found[-1], "SkipPublishedCommit")
        self.summary = (
            f"commit {commit[:12]} is already in {self.distribution} as "
            f"{found[-1]}: nothing to publish"
        )
        yield log.addStdout(self.descriptionDone + "\n")
        return results.SUCCESS
