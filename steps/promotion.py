"""Promotion and rollback: decide what a request will do, by the rules, before anything changes;
after a release into production, list the commits it brings (for the release mail, which
master/reporters/mail.py sends).

The aptly work itself is done by the steps of steps/repository.py.
"""

from __future__ import annotations

import json
import posixpath
from datetime import UTC
from datetime import datetime

from twisted.internet import defer

from buildbot.process import buildstep
from buildbot.process import remotecommand
from buildbot.process import results

from conveyor import buildprops
from conveyor import debformats
from conveyor import release
from steps.indexes import IndexReader
from steps.repository import HistoryStep
from steps.summary import Summarized


@defer.inlineCallbacks
def rebuilt(step):
    """The properties of the build `step`'s build rebuilds, or None when it is no rebuild."""
    try:
        bsid = step.build.requests[0].bsid
    except (AttributeError, IndexError, TypeError):
        return None
    buildset = yield step.master.data.get(("buildsets", bsid))
    if not isinstance(buildset, dict) or not buildset.get("rebuilt_buildid"):
        return None
    properties = yield step.master.data.get(("builds", buildset["rebuilt_buildid"], "properties"))
    return {name: value for name, (value, _source) in (properties or {}).items()}


class CheckBasis(Summarized, buildstep.BuildStep):
    """A change is exactly the one its requester saw: the distribution must still be in the
    state the request recorded (`basis_snapshot`, `basis_state`: master/basis.py), now that
    the build holds the repository lock and has read what it publishes (`current_snapshot`).
    If it has moved since (another change ran first: two identical rollbacks; a rebuild of an
    old change), nothing is changed and the build says so. A request with no basis (made
    before Conveyor recorded one) passes, as before."""

    name = "basis"
    description = "checking what the request saw"
    descriptionDone = "as the request saw it"
    renderables = ["distribution"]

    def __init__(self, distribution=None, **kwargs):
        self.distribution = distribution
        kwargs.setdefault("haltOnFailure", True)
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def run(self):
        basis, state = self.getProperty("basis_snapshot"), self.getProperty("basis_state")
        current = self.getProperty("current_snapshot")
        if not basis:
            self.summary = "no basis recorded (an older request)"
            return results.SUCCESS
        if basis == current:
            self.summary = f"{self.distribution} is at state {state}, as the request saw"
            return results.SUCCESS
        message = (
            f"refused: {self.distribution} has changed since this was asked for (it was "
            f"at state {state}, {basis}; it now serves {current}): nothing was changed; "
            f"look at its history and ask again"
        )
        log = yield self.addLog("refused")
        yield log.addStderr(message + "\n")
        self.summary = message
        return results.FAILURE


class ResolvePromotion(Summarized, IndexReader, buildstep.BuildStep):
    """Check a promote request (properties `package`, `version`, `from_dist`, `to_dist`) against
    the path and against what the two distributions publish; on success set `package_version`
    (the version to promote: the newest in the source when none was named), `previous_version`,
    `package_commit`, `previous_commit`, `verify_packages`, and `promotion_noop` when the version
    is already there. Runs on the master, reading the indexes over HTTP as apt does."""

    name = "check"
    description = "checking the request"
    descriptionDone = "request checked"

    def __init__(
        self,
        paths: dict[str, list[str]],
        repo_url: str,
        component: str,
        architectures,
        components=None,
        **kwargs,
    ):
        self.paths = paths  # package -> its project's promotion path
        self.setup_index(repo_url, component, architectures, components)
        kwargs.setdefault("haltOnFailure", True)
        super().__init__(**kwargs)

    def rebuilt(self):
        return rebuilt(self)

    @defer.inlineCallbacks
    def run(self):
        log = yield self.addLog("stdio")
        package, version, source, target = yield self.request(log)
        try:
            plan, indexes = yield self.plan(log, package, version, source, target)
        except release.ReleaseError as exc:
            yield log.addStderr(f"refused: {exc}\n")
            self.summary = f"refused: {exc}"
            return results.FAILURE
        target = plan.target
        self.record(package, plan, indexes)
        if plan.noop:
            message = f"{package} {plan.version} is already in {target}: nothing changed"
        else:
            message = (
                f"{package} {plan.version}: {plan.source} → {target}"
                f" (there: {plan.previous or 'none'})"
            )
        yield log.addStdout(message + "\n")
        self.summary = message
        return results.SUCCESS

    @defer.inlineCallbacks
    def request(self, log):
        """(package, version, from, to) as asked; a rebuild asks what its original build
        promoted, never "the newest" of today."""
        package = self.getProperty("package") or ""
        version = (self.getProperty("version") or "").strip()
        source, target = self.getProperty("from_dist") or "", self.getProperty("to_dist") or ""
        original = yield self.rebuilt()
        if original and original.get(buildprops.PACKAGE_VERSION):
            version = original[buildprops.PACKAGE_VERSION]
            target = original.get("to_dist") or target
            yield log.addStdout(
                f"a rebuild: {package} {version} to {target or 'the next step'}, "
                "as the original build\n"
            )
        return package, version, source, target

    @defer.inlineCallbacks
    def plan(self, log, package: str, version: str, source: str, target: str):
        """(release.plan_promotion's plan, {dist: {version: stanza}}) of the request against
        the path, the freeze and the two indexes; a ReleaseError says why not."""
        if package not in self.paths:
            raise release.ReleaseError(
                f"{package!r} is not a package of any project (known: "
                f"{', '.join(sorted(self.paths))})"
            )
        if version:
            debformats.check_version(version)
        path = self.paths[package]
        if not target:
            target = release.next_step(path, source) or ""
            self.setProperty("to_dist", target, "ResolvePromotion")
        release.check_step(path, source, target)
        yield self.check_not_frozen(log, target)
        indexes = {}
        for dist in (source, target):
            stanzas = yield self.read_index(log, dist)
            if isinstance(stanzas, str):
                raise release.ReleaseError(f"{dist}: {stanzas}")
            indexes[dist] = {s["Version"]: s for s in stanzas if s["Package"] == package}
        return release.plan_promotion(
            package, version, source, target, set(indexes[source]), set(indexes[target])
        ), indexes

    def record(self, package: str, plan, indexes: dict) -> None:
        """The properties the promote build's later steps and its mail read."""
        commit = indexes[plan.source][plan.version].get("Conveyor-Commit")
        previous = indexes[plan.target].get(plan.previous or "", {}).get("Conveyor-Commit")
        for name, value in (
            (buildprops.PACKAGE_VERSION, plan.version),
            (buildprops.PREVIOUS_VERSION, plan.previous),
            ("package_commit", commit),
            ("previous_commit", previous),
            ("verify_packages", [package]),
            (buildprops.PROMOTION_NOOP, plan.noop),
        ):
            self.setProperty(name, value, "ResolvePromotion")

    @defer.inlineCallbacks
    def check_not_frozen(self, log, dist: str):
        """ReleaseError while `dist` is frozen (its freeze file, over HTTP; asked for before
        the freeze, a promotion is refused all the same)."""
        url = f"{self.repo_url}history/{dist}.freeze.json"
        try:
            code, body = yield self.fetch(url)
        except Exception as exc:  # connection refused, timeout…
            raise release.ReleaseError(f"{url}: {exc}") from None
        if code not in (200, 404):
            raise release.ReleaseError(f"{url} answered {code}")
        yield log.addStdout(f"GET {url} -> {code}\n")
        refusal = release.freeze_refusal(dist, release.parse_freeze(body if code == 200 else None))
        if refusal:
            raise release.ReleaseError(refusal)


class ResolveRollback(HistoryStep):
    """Which earlier state a rollback of `distribution` returns to: the one before the current
    (property `current_snapshot`), or the state named by property `state` (a snapshot name or a
    history entry number). Sets `snapshot`, `package`, `package_version`, `verify_packages` and
    `verify_absent` (the version that leaves)."""

    name = "check"
    description = "checking the request"
    descriptionDone = "request checked"

    def __init__(self, aptly_config: str, gnupg_home: str, keep_states: int, **kwargs):
        self.aptly_config = str(aptly_config)
        self.gnupg_home = str(gnupg_home)
        self.keep_states = keep_states  # what retention keeps ([retention] in pipeline.toml)
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def run(self):
        log = yield self.addLog("stdio")
        _, history = yield self.read_history()
        current = self.getProperty("current_snapshot")
        try:
            target = release.rollback_target(
                history, current, (self.getProperty("state") or "").strip()
            )
            if not (yield self.kept(target["snapshot"], log)):
                raise release.ReleaseError(
                    f"state {target['n']} ({target['snapshot']}) is no longer kept: retention "
                    f"keeps the states of each distribution's last {self.keep_states} history "
                    f"entries; pick one of those (bin/conveyor history {self.distribution})"
                )
        except release.ReleaseError as exc:
            yield log.addStderr(f"refused: {exc}\n")
            self.summary = f"refused: {exc}"
            return results.FAILURE
        now = next(e for e in reversed(history) if e["snapshot"] == current)
        package = target.get("package") or now.get("package")
        leaving = now.get("version") if now.get("version") != target.get("version") else None
        for name, value in (
            ("snapshot", target["snapshot"]),
            ("package", package),
            (buildprops.PACKAGE_VERSION, target.get("version")),
            ("verify_packages", [package] if package else []),
            ("verify_absent", leaving),
            ("state", str(target["n"])),
        ):
            self.setProperty(name, value, "ResolveRollback")
        message = (
            f"{self.distribution}: back to state {target['n']} ({target['snapshot']}: "
            f"{package} {target.get('version') or 'nothing'})"
        )
        yield log.addStdout(message + "\n")
        self.summary = message
        return results.SUCCESS

    # $1 aptly's config, $2 the snapshot. (`aptly snapshot show` is no test: it fails for a
    # merged snapshot whose sources are gone, as they are once a publish has merged them.)
    KEPT = 'aptly "-config=$1" snapshot list -raw | grep -qxF -- "$2"'

    @defer.inlineCallbacks
    def kept(self, snapshot: str, log):
        """Does aptly still have the snapshot (retention drops old states' snapshots, their
        history entries stay)?"""
        cmd = remotecommand.RemoteShellCommand(
            self.workdir,
            ["sh", "-c", self.KEPT, "kept", self.aptly_config, snapshot],
            env={"GNUPGHOME": self.gnupg_home},
            logEnviron=False,
            interruptSignal="KILL",
        )
        cmd.useLog(log, False, "stdio")
        yield self.runCommand(cmd)
        return not cmd.didFail()


class CommitsBetween(Summarized, buildstep.ShellMixin, buildstep.BuildStep):
    """The commits between the version leaving production and the one arriving, from the
    commits recorded in the packages (`previous_commit`, `package_commit`), read from a fresh
    bare clone of the project's configured repository: sets `release_commits`."""

    logEnviron = False  # the worker's environment is in no log (steps/__init__.py)

    name = "commits"
    description = "listing commits"
    descriptionDone = "commits"

    def __init__(self, clone_urls: dict[str, str], **kwargs):
        self.clone_urls = clone_urls  # package -> its project's clone URL
        kwargs.setdefault("haltOnFailure", False)  # the release is done; this is for the mail
        kwargs = self.setupShellMixin(kwargs)
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def run(self):
        new, old = self.getProperty("package_commit"), self.getProperty("previous_commit")
        url = self.clone_urls.get(self.getProperty("package"))
        if not new or not url:
            self.setProperty(buildprops.RELEASE_COMMITS, [], "CommitsBetween")
            self.summary = "no commit recorded in the package"
            return results.WARNINGS
        try:
            # read from package indexes: never let a value become an option or a ref for git
            for commit in (new, old):
                if commit:
                    debformats.check_commit(commit)
        except release.ReleaseError as exc:
            self.setProperty(buildprops.RELEASE_COMMITS, [], "CommitsBetween")
            log = yield self.addLog("refused")
            yield log.addStderr(f"Conveyor-Commit: {exc}\n")
            self.summary = "the package records no valid commit id"
            return results.WARNINGS
        cmd = yield self.makeRemoteShellCommand(
            command=["rm", "-rf", "release.git"], stdioLogName="clone"
        )
        yield self.runCommand(cmd)
        cmd = yield self.makeRemoteShellCommand(
            command=["git", "clone", "--quiet", "--bare", url, "release.git"], stdioLogName="clone"
        )
        yield self.runCommand(cmd)
        if cmd.didFail():
            return cmd.results()
        span = [f"{old}..{new}"] if old else ["--max-count=20", new]
        cmd = yield self.makeRemoteShellCommand(
            command=[
                "git",
                "--git-dir=release.git",
                "log",
                "--no-merges",
                "--format=%h %an: %s",
                *span,
                "--",
            ],
            collectStdout=True,
        )
        yield self.runCommand(cmd)
        if cmd.didFail():
            return cmd.results()
        commits = [line for line in cmd.stdout.splitlines() if line.strip()]
        self.setProperty(buildprops.RELEASE_COMMITS, commits, "CommitsBetween")
        self.summary = f"{len(commits)} commit(s)"
        return results.SUCCESS


class SetFreeze(HistoryStep):
    """Freeze (property `action` "freeze") or unfreeze a distribution: write its freeze file
    beside its history (`<history_dir>/<distribution>.freeze.json`, served with it), which the
    promote button and the promote build read (conveyor.release.freeze_refusal). Who, why and
    when are kept in the file and in this build."""

    name = "freeze"
    description = "changing the freeze"
    descriptionDone = "freeze"

    @defer.inlineCallbacks
    def run(self):
        frozen = self.getProperty("action") == "freeze"
        reason = (self.getProperty("reason") or "").strip()
        if frozen and reason in ("", "freeze"):
            self.summary = "refused: a freeze needs a reason (the team reads it)"
            return results.FAILURE
        state = {
            "frozen": frozen,
            "reason": reason,
            "who": self.getProperty("owner") or "",
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "build": (yield self.build.getUrl()),
        }
        path = posixpath.join(self.history_dir, f"{self.distribution}.freeze.json")
        yield self.downloadFileContentToWorker(
            path, json.dumps(state, sort_keys=True) + "\n", abandonOnFailure=True, mode=0o644
        )
        self.summary = (
            f"{self.distribution} frozen: {reason}" if frozen else f"{self.distribution} unfrozen"
        )
        return results.SUCCESS
