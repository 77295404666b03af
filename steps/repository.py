"""Apt repository steps (aptly): every change of a distribution is a new immutable snapshot.

The published snapshot of a distribution is its state; the history file lists its states in
order. A change (CI publish, promotion, rollback) builds the next snapshot from the current one
and switches the publication to it in one step (`aptly publish switch`, signed); until then
clients see the distribution as it was, and a failure leaves it so. Local aptly repos are only a
scratch space to turn .deb files into a snapshot.

These steps run in the `publish`, `promote` and `rollback` builders on the worker that holds the
repository, one build at a time (the builders share the repository lock).
"""

from __future__ import annotations

import json
import posixpath
from datetime import UTC
from datetime import datetime

from twisted.internet import defer
from twisted.internet import task

from buildbot.process import buildstep
from buildbot.process import remotetransfer
from buildbot.process import results
from buildbot.process.results import SKIPPED as results_SKIPPED
from buildbot.steps.worker import CompositeStepMixin

from conveyor import buildprops
from conveyor import debformats
from conveyor import release
from conveyor import targets
from steps.summary import Summarized


class FetchPackages(Summarized, CompositeStepMixin, buildstep.BuildStep):
    """Empty `incoming/` (in the build's directory), then download the .deb files named by `debs`
    from the master's artifact store (each where `artifact_paths` says its package build put it)
    into it, in this one step (a step per file would cost a
    round of Buildbot's bookkeeping each, on the way from push to staging): what the import adds
    is this build's packages, never a package an earlier publish (of any project) left there."""

    name = "fetch"
    description = "fetching packages"
    descriptionDone = "fetched"
    BLOCKSIZE = 256 * 1024  # per round trip (Buildbot's FileDownload: 16 KiB)
    logEnviron = False  # (CompositeStepMixin's rmdir asks)

    def __init__(self, artifacts_dir: str, incoming: str = "incoming", **kwargs):
        self.artifacts_dir = str(artifacts_dir)
        self.incoming = incoming
        kwargs.setdefault("haltOnFailure", True)
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def run(self):
        debs = self.getProperty(buildprops.DEBS) or []
        artifacts = self.getProperty(buildprops.ARTIFACT_PATHS) or {}
        if not debs or not all(artifacts.get(deb) for deb in debs):
            self.summary = "no packages named" if not debs else "no artifact path for the packages"
            return results.FAILURE
        # rmdir's path is the builder's directory's; the downloads' is the build's (workdir)
        yield self.runRmdir(posixpath.join(self.workdir, self.incoming))
        log = yield self.addLog("stdio")
        for deb in debs:
            source = posixpath.join(self.artifacts_dir, artifacts[deb], deb)
            try:
                fp = open(source, "rb")  # noqa: SIM115 (closed by the `with` below)
            except OSError as exc:
                yield log.addStderr(f"{source}: {exc.strerror}\n")
                self.summary = f"{deb} is not in the artifact store"
                return results.FAILURE
            with fp:
                fetched = yield self.runRemoteCommand(
                    "downloadFile",
                    {
                        "workdir": self.workdir,
                        "workerdest": f"{self.incoming}/{deb}",
                        "reader": remotetransfer.FileReader(fp),
                        "maxsize": None,
                        "blocksize": self.BLOCKSIZE,
                        "mode": None,
                    },
                    abandonOnFailure=False,
                    evaluateCommand=lambda cmd: not cmd.didFail(),
                )
            if not fetched:
                self.summary = f"{deb} could not be written on the worker"
                return results.FAILURE
            yield log.addStdout(f"{source} -> {self.incoming}/{deb}\n")
        self.summary = f"fetched {len(debs)} package(s)"
        return results.SUCCESS


LOCKED_MESSAGE = (
    "aptly's database is locked by another process (tried again for a minute, "
    "then gave up): nothing was changed; find the process holding "
    "<aptly root>/db/LOCK"
)
SIGNING_MESSAGE = (
    "GnuPG could not sign (tried again for a minute, then gave up): nothing was "
    "published; check the repository's GnuPG home and its key (make check)"
)

# Transient faults, as aptly reports them: (what stderr says, what the log says while trying
# again, what the step says when it gives up). Another process holding aptly's database (a
# backup, an operator's aptly: after aptly's own `databaseOpenAttempts`, ops/setup.py); a GnuPG
# home or agent that is gone for a moment (a remount, an agent restart).
TRANSIENT = (
    (
        ("Unable to open database", "unable to reopen the DB"),
        "aptly's database is locked by another process",
        LOCKED_MESSAGE,
    ),
    (
        (
            "unable to initialize GPG signer",
            "unable to detached sign",
            "signing failed",
            "can't connect to the agent",
        ),
        "GnuPG could not sign",
        SIGNING_MESSAGE,
    ),
)


class AptlyCommand(Summarized, buildstep.ShellMixin, buildstep.BuildStep):
    """Base: `aptly -config=<config> <args…>` with the repository's GnuPG home."""

    logEnviron = False  # the worker's environment is in no log (steps/__init__.py)

    renderables = ["distribution"]

    def __init__(
        self, aptly_config: str, gnupg_home: str, distribution=None, components=None, **kwargs
    ):
        self.aptly_config = str(aptly_config)
        self.distribution = distribution
        # {distribution: its target releases}, for those published one component per release
        self.components = dict(components or {})
        kwargs.setdefault("haltOnFailure", True)
        kwargs["env"] = {**(kwargs.get("env") or {}), "GNUPGHOME": str(gnupg_home)}
        kwargs = self.setupShellMixin(kwargs)
        super().__init__(**kwargs)

    # the TRANSIENT message of a fault that outlasted the retries: the step's summary from then
    # on, also when the step goes on past that command (`self.gave_up or …`)
    gave_up: str | None = None

    def aptly(self, *args: str) -> list[str]:
        return ["aptly", f"-config={self.aptly_config}", *args]

    def run_aptly(self, *args: str, **kwargs):
        return self.run_worker(self.aptly(*args), **kwargs)

    # a transient fault (TRANSIENT) is tried again after each of these delays, in seconds,
    # before the step fails
    RETRY_DELAYS: tuple[float, ...] = (5, 15, 40)

    @staticmethod
    def transient(cmd) -> tuple[str, str] | None:
        """(while, gave up) of the TRANSIENT fault a failed command reports, or None."""
        if not cmd.didFail():
            return None
        for texts, trying, message in TRANSIENT:
            if any(text in (cmd.stderr or "") for text in texts):
                return trying, message
        return None

    @defer.inlineCallbacks
    def run_worker(self, command: list[str], **kwargs):
        """Run a command (aptly, or a script of aptly commands: each written so that running it
        again is safe) on the repository's worker; while it fails with a transient fault, run it
        again after RETRY_DELAYS, saying so in the log; then note the fault."""
        kwargs.setdefault("collectStderr", True)
        delays = list(self.RETRY_DELAYS)
        while True:
            cmd = yield self.makeRemoteShellCommand(command=command, **kwargs)
            yield self.runCommand(cmd)
            fault = self.transient(cmd)
            if fault is None or not delays:
                break
            delay = delays.pop(0)
            log = yield self.getLog(kwargs.get("stdioLogName", "stdio"))
            yield log.addHeader(f"{fault[0]}: trying again in {delay:g} s\n")
            yield task.deferLater(self.master.reactor, delay, lambda: None)
        if fault is not None:
            self.gave_up = self.summary = fault[1]
        return cmd

    def releases(self) -> tuple[str, ...]:
        """The distribution's target releases (conveyor/targets.py); () for one component."""
        return tuple(self.components.get(self.distribution) or ())

    @defer.inlineCallbacks
    def switch_to(self, state: str, signing: list[str]):
        """`aptly publish switch`, signed: the distribution serves `state`, every component at
        once; with target releases, each component what aptly's filter derives from it (made
        once: a rollback to a state reuses them), in the same worker command (SWITCH)."""
        releases = self.releases()
        switch = ["publish", "switch", "-batch", *signing]
        if not releases:
            return (yield self.run_aptly(*switch, self.distribution, ".", state))
        derived = [targets.derived(state, r) for r in releases]
        pairs = [
            x
            for r, d in zip(releases, derived, strict=True)
            for x in (d, targets.component_filter(r))
        ]
        components = [f"-component={','.join(releases)}", self.distribution, ".", *derived]
        script = ["sh", "-c", SWITCH, "switch", self.aptly_config, state, *pairs, "--"]
        return (yield self.run_worker([*script, *switch, *components]))

    def new_name(self, kind: str) -> str:
        return release.snapshot_name(
            f"{self.distribution}{kind}",
            datetime.now(UTC),
            self.getProperty("buildername"),
            self.build.number,
        )

    @defer.inlineCallbacks
    def refuse(self, message: str):
        if self.gave_up:  # not what the command would have found: it could not look
            message = self.gave_up
        log = yield self.addLog("refused")
        yield log.addStderr(message + "\n")
        self.summary = message
        return results.FAILURE


# $1 aptly's config, $2 a state; then, per component, what it publishes of the state and the
# filter's query that derives it (derived unless it was before); after "--", the arguments of
# `aptly publish switch`, run only when every component is there. Running it again is safe.
SWITCH = r"""config=$1 state=$2
shift 2
while [ "$1" != "--" ]; do
    aptly "-config=$config" snapshot show "$1" >/dev/null 2>&1 ||
        aptly "-config=$config" snapshot filter "$state" "$1" "$2" || exit
    shift 2
done
shift
exec aptly "-config=$config" "$@"
"""


# $1 aptly's config, $2 a component's snapshot, dropped if there is one
UNDERIVE = r"""! aptly "-config=$1" snapshot show "$2" >/dev/null 2>&1 ||
    aptly "-config=$1" snapshot drop -force "$2"
"""


class CurrentSnapshot(AptlyCommand):
    """Which snapshot the distribution publishes now: sets the property named `into`."""

    name = "current"
    description = "reading published state"
    descriptionDone = "published state"

    def __init__(self, into: str = "current_snapshot", **kwargs):
        self.into = into
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def run(self):
        cmd = yield self.run_aptly(
            "publish", "show", "-json", self.distribution, ".", collectStdout=True
        )
        if cmd.didFail():
            return (yield self.refuse(f"{self.distribution} is not published here"))
        try:  # with target releases, the state its components are derived from
            state = targets.state_of(json.loads(cmd.stdout).get("Sources") or [])
        except ValueError as exc:
            return (yield self.refuse(f"{self.distribution} {exc}"))
        self.setProperty(self.into, state, "CurrentSnapshot")
        self.summary = f"{self.distribution}: {state}"
        return results.SUCCESS


class SelectVersion(AptlyCommand):
    """`package (= version)` out of the snapshot in property `source_snapshot`, as a snapshot of
    its own (`part_snapshot`); fails if the source does not hold it — aptly's filter would
    silently give an empty snapshot."""

    name = "select"
    description = "selecting version"
    descriptionDone = "selected"

    @defer.inlineCallbacks
    def run(self):
        package, version = self.getProperty("package"), self.getProperty(buildprops.PACKAGE_VERSION)
        source = self.getProperty("source_snapshot")
        releases = self.releases()  # with target releases, every release's package of it
        query = targets.select_query(package, version, releases)
        part = self.new_name("+promoted")
        cmd = yield self.run_aptly("snapshot", "filter", source, part, query)
        if cmd.didFail():
            return cmd.results()
        self.setProperty("part_snapshot", part, "SelectVersion")  # dropped if refused
        for wanted in [targets.version(version, r) for r in releases] or [version]:
            cmd = yield self.run_aptly("snapshot", "search", part, f"{package} (= {wanted})")
            if cmd.didFail():
                return (yield self.refuse(f"{package} {wanted} is not in {source}"))
        self.setProperty("part_snapshot", part, "SelectVersion")
        self.summary = f"{package} {version} from {source}"
        return results.SUCCESS


class MergeSnapshot(AptlyCommand):
    """The distribution's next state: its current snapshot plus `part_snapshot`, every version
    kept (`-no-remove`), as a new snapshot named `<distribution>@<time>@<builder>-<number>`:
    sets `snapshot`."""

    name = "snapshot"
    description = "snapshotting"
    descriptionDone = "snapshot"

    @defer.inlineCallbacks
    def run(self):
        snapshot = self.new_name("")
        cmd = yield self.run_aptly(
            "snapshot",
            "merge",
            "-no-remove",
            snapshot,
            self.getProperty("current_snapshot"),
            self.getProperty("part_snapshot"),
        )
        if cmd.didFail():
            return cmd.results()
        # the merged snapshot holds its own package list: its source part can go (-force: aptly
        # would otherwise keep every source of every snapshot forever)
        cmd = yield self.run_aptly(
            "snapshot", "drop", "-force", self.getProperty("part_snapshot"), stdioLogName="cleanup"
        )
        if not cmd.didFail():
            self.setProperty("part_snapshot", None, "MergeSnapshot")
        self.setProperty("snapshot", snapshot, "MergeSnapshot")
        self.setProperty("new_snapshot", snapshot, "MergeSnapshot")
        self.summary = self.gave_up or snapshot
        return results.SUCCESS


class NextSnapshot(AptlyCommand):
    """A publish's next state in one step and one worker command (each step is a round of
    Buildbot's bookkeeping, each command a round trip between master and worker, on the way from
    push to staging): the snapshot the distribution publishes now (as CurrentSnapshot), the
    fetched .debs as a snapshot of their own (through a scratch local repo, dropped after), and
    both merged, every version kept, as MergeSnapshot does. Sets what those set."""

    name = "snapshot"
    description = "snapshotting"
    descriptionDone = "snapshot"

    # $1 aptly's config, $2 the distribution, $3 the scratch repo, $4 the directory of .debs,
    # $5 the snapshot of the .debs, $6 the next state. Exits 3 when $2 is not published, 4 when
    # it publishes no snapshot. A scratch repo and snapshots left by an interrupted run (of the
    # same build: the names are its own) are dropped first, so that running it again is safe;
    # the .debs' snapshot goes once merged ("kept: $5" if it could not).
    SCRIPT = r"""set -eu
shown=$(aptly "-config=$1" publish show -json "$2" .) || exit 3
current=$(printf '%s' "$shown" | python3 -c 'import json, sys
sources = json.load(sys.stdin).get("Sources") or []
states = {s["Name"].removesuffix("~" + s.get("Component", "")) for s in sources}
print(states.pop() if len(states) == 1 else "")')
[ -n "$current" ] || exit 4
echo "current: $current"
aptly "-config=$1" repo drop -force "$3" >/dev/null 2>&1 || true
for made in "$6" "$5"; do  # a run cut short before (aptly's database locked mid-way)
    aptly "-config=$1" snapshot drop -force "$made" >/dev/null 2>&1 || true
done
set -x
aptly "-config=$1" repo create "$3"
aptly "-config=$1" repo add "$3" "$4"
aptly "-config=$1" snapshot create "$5" from repo "$3"
aptly "-config=$1" repo drop -force "$3"
aptly "-config=$1" snapshot merge -no-remove "$6" "$current" "$5"
aptly "-config=$1" snapshot drop -force "$5" || echo "kept: $5"
"""
    REFUSALS = {3: "{} is not published here", 4: "{} publishes no snapshot"}

    def __init__(self, incoming: str = "incoming", **kwargs):
        self.incoming = incoming
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def run(self):
        scratch = f"incoming-{self.getProperty('buildername')}-{self.build.number}"
        part, snapshot = self.new_name("+new"), self.new_name("")
        # named before the command: what it made before a failure, the cleanup drops
        self.setProperty("part_snapshot", part, "NextSnapshot")
        self.setProperty("new_snapshot", snapshot, "NextSnapshot")
        cmd = yield self.run_worker(
            [
                "sh",
                "-c",
                self.SCRIPT,
                "snapshot",
                self.aptly_config,
                self.distribution,
                scratch,
                self.incoming,
                part,
                snapshot,
            ],
            collectStdout=True,
        )
        lines = cmd.stdout.splitlines()
        current = next(
            (line.split(": ", 1)[1] for line in lines if line.startswith("current: ")), None
        )
        if current:
            self.setProperty("current_snapshot", current, "NextSnapshot")
        if cmd.didFail():
            if cmd.rc in self.REFUSALS:
                return (yield self.refuse(self.REFUSALS[cmd.rc].format(self.distribution)))
            return cmd.results()
        if f"kept: {part}" not in lines:
            self.setProperty("part_snapshot", None, "NextSnapshot")
        self.setProperty("snapshot", snapshot, "NextSnapshot")
        self.summary = snapshot
        return results.SUCCESS


class PublishSwitch(AptlyCommand):
    """`aptly publish switch`: the distribution now serves `snapshot`, signed, in one step."""

    name = "publish"
    description = "publishing"
    descriptionDone = "published"

    def __init__(self, signing: list[str] | tuple[str, ...] = (), **kwargs):
        self.signing = list(signing)  # settings.Repository.signing_args(): key, passphrase file
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def run(self):
        snapshot = self.getProperty("snapshot")
        cmd = yield self.switch_to(snapshot, self.signing)
        if not cmd.didFail():
            self.setProperty("published", snapshot, "PublishSwitch")
            self.summary = f"{self.distribution} → {snapshot}"
        return cmd.results()


class RestorePublished(PublishSwitch):
    """After a change that was switched to but then failed (its verification, or its history),
    switch the distribution back to the state it had (`current_snapshot`), signed, so that it
    always serves a state its history knows and a rollback works from it. Runs only then."""

    name = "restore"
    description = "putting back the previous state"
    descriptionDone = "previous state put back"

    def __init__(self, **kwargs):
        kwargs.setdefault("alwaysRun", True)
        kwargs.setdefault("haltOnFailure", False)
        kwargs.setdefault(
            "doStepIf",
            lambda step: bool(
                step.getProperty("published")
                and not step.getProperty("recorded")
                and step.getProperty("published") != step.getProperty("current_snapshot")
            ),
        )
        kwargs.setdefault("hideStepIf", lambda results, step: results == results_SKIPPED)
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def run(self):
        previous = self.getProperty("current_snapshot")
        cmd = yield self.switch_to(previous, self.signing)
        if cmd.didFail():
            self.summary = self.gave_up or (
                f"{self.distribution} could NOT be put back to {previous}: roll it back by hand"
            )
            return results.FAILURE
        self.setProperty("published", previous, "RestorePublished")
        self.summary = f"{self.distribution} back to {previous}"
        return results.SUCCESS


class DropUnpublished(AptlyCommand):
    """After a failed change: drop the snapshots this build made and never published (the
    published state and the history are untouched), then `aptly db cleanup`, so that no package
    it imported stays in aptly's database or pool. Runs only after a failure or when there are
    such snapshots."""

    name = "cleanup"
    description = "dropping unpublished snapshots"
    descriptionDone = "dropped unpublished snapshots"

    def __init__(self, **kwargs):
        kwargs.setdefault("alwaysRun", True)
        kwargs.setdefault("haltOnFailure", False)
        kwargs.setdefault("doStepIf", lambda step: bool(step.leftovers()) or step.failed())
        kwargs.setdefault("hideStepIf", lambda results, step: results == results_SKIPPED)
        super().__init__(**kwargs)

    def leftovers(self) -> list[str]:
        made = [self.getProperty("new_snapshot"), self.getProperty("part_snapshot")]
        published = self.getProperty("published")
        return [name for name in made if name and name != published]

    def failed(self) -> bool:
        return self.build.results in (results.FAILURE, results.EXCEPTION)

    @defer.inlineCallbacks
    def run(self):
        dropped = []
        for name in self.leftovers():
            for release_ in self.releases():  # what its components would have published
                derived = targets.derived(name, release_)
                yield self.run_worker(["sh", "-c", UNDERIVE, "drop", self.aptly_config, derived])
            cmd = yield self.run_aptly("snapshot", "drop", "-force", name)
            if not cmd.didFail():
                dropped.append(name)
        # packages imported by this build and referenced by no snapshot: out of the pool
        yield self.run_aptly("db", "cleanup", stdioLogName="db cleanup")
        self.summary = self.gave_up or f"dropped {', '.join(dropped) or 'nothing'}"
        return results.SUCCESS


class HistoryStep(Summarized, CompositeStepMixin, buildstep.BuildStep):
    """Base: a step that reads a distribution's history file on the repository's worker
    (`<history_dir>/<distribution>.jsonl`, served beside the repository)."""

    renderables = ["distribution"]

    def __init__(self, history_dir: str, distribution=None, **kwargs):
        self.history_dir = str(history_dir)
        self.distribution = distribution
        kwargs.setdefault("haltOnFailure", True)
        super().__init__(**kwargs)

    @property
    def history_path(self) -> str:
        return posixpath.join(self.history_dir, f"{self.distribution}.jsonl")

    def read_history(self):
        """-> (the file's text, its entries)"""
        return self.read_lines(self.history_path)

    @defer.inlineCallbacks
    def read_lines(self, path: str):
        """-> (the text of a JSON-lines file beside the history, its entries); none: ("", [])"""
        text = (yield self.getFileContentFromWorker(path)) or ""
        return text, release.parse_history(text)


class RecordHistory(HistoryStep):
    """Append the distribution's new state to its history: snapshot, action, package, version,
    who, when, the build."""

    name = "history"
    description = "recording history"
    descriptionDone = "history"

    def __init__(self, history_dir: str, action: str, **kwargs):
        self.action = action
        super().__init__(history_dir, **kwargs)

    @defer.inlineCallbacks
    def run(self):
        path = self.history_path
        text, history = yield self.read_history()
        entry = {
            "n": len(history) + 1,
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "distribution": self.distribution,
            "action": self.action,
            "snapshot": self.getProperty("snapshot"),
            "previous_snapshot": self.getProperty("current_snapshot"),
            "package": self.getProperty("package")
            or ",".join(sorted(debformats.packages_of(self.getProperty(buildprops.DEBS)))),
            "version": self.getProperty(buildprops.PACKAGE_VERSION),
            "from": self.getProperty("from_dist"),
            "who": self.getProperty("who") or self.getProperty("owner") or "",
            "build": (yield self.build.getUrl()),
        }
        if self.getProperty(buildprops.PROVENANCE):  # signed (publish), verified (production)
            entry["provenance"] = self.getProperty(buildprops.PROVENANCE)
        if self.getProperty(buildprops.APPROVAL_REQUEST):  # steps/approvals.py
            entry["request"] = self.getProperty(buildprops.APPROVAL_REQUEST)
            entry["approved_by"] = list(self.getProperty(buildprops.APPROVED_BY) or [])
        yield self.downloadFileContentToWorker(
            path, text + release.history_line(entry), abandonOnFailure=True, mode=0o644
        )
        self.setProperty("recorded", True, "RecordHistory")
        log = yield self.addLog("history")
        yield log.addStdout(text + release.history_line(entry))
        self.summary = f"{self.distribution} state {entry['n']}: {self.action}"
        return results.SUCCESS
