"""Retention steps: what the nightly `retention` builder removes (see master/retention.py).

PruneArtifacts runs on the master (the artifact store is the master's); PruneSnapshots runs on
the repository's worker, under the repository lock, like every other change to aptly.
"""

from __future__ import annotations

import json
import posixpath
import time
from pathlib import Path

from twisted.internet import defer
from twisted.internet import threads

from buildbot.process import buildstep
from buildbot.process import results
from buildbot.steps.worker import CompositeStepMixin

from conveyor import release
from conveyor import retention
from conveyor import targets
from steps.repository import AptlyCommand
from steps.summary import Summarized

DAY = 86400


class PruneArtifacts(Summarized, buildstep.BuildStep):
    """Remove the artifacts (packages, coverage reports) of builds older than `days`: each
    `<artifacts_dir>/<builder>/<number>/` in which nothing changed for that long. Runs on the
    master; sets `artifacts_pruned` (builds) and `artifacts_freed_bytes`."""

    name = "prune-artifacts"
    description = "pruning artifacts"
    descriptionDone = "artifacts pruned"

    def __init__(self, artifacts_dir: str, days: int, **kwargs):
        self.artifacts_dir = str(artifacts_dir)
        self.days = int(days)
        super().__init__(**kwargs)

    def prune(self, now: float) -> tuple[list[str], int]:
        root = Path(self.artifacts_dir)
        removed, freed = [], 0
        for build_dir in retention.expired_build_dirs(root, now - self.days * DAY):
            freed += retention.remove_tree(build_dir)
            removed.append(str(build_dir.relative_to(root)))
            try:
                build_dir.parent.rmdir()  # the builder's directory, once empty
            except OSError:
                pass
        return removed, freed

    @defer.inlineCallbacks
    def run(self):
        log = yield self.addLog("stdio")
        removed, freed = yield threads.deferToThread(self.prune, time.time())
        for name in removed:
            yield log.addStdout(f"removed {name}\n")
        self.setProperty("artifacts_pruned", len(removed), "PruneArtifacts")
        self.setProperty("artifacts_freed_bytes", freed, "PruneArtifacts")
        self.summary = (
            f"removed the artifacts of {len(removed)} build(s) older than "
            f"{self.days} days ({freed / 1e6:.1f} MB)"
        )
        return results.SUCCESS


class PruneSnapshots(CompositeStepMixin, AptlyCommand):
    """Drop every aptly snapshot that no distribution still uses — the states of its last
    `keep_states` history entries, what it publishes, what a one-step rollback returns to —
    then `aptly db cleanup` (packages no snapshot holds leave the pool).
    Reads each distribution's history on the repository's worker; a history it cannot read
    stops it before anything is dropped. Sets `snapshots_dropped` and `snapshots_kept`."""

    name = "prune-snapshots"
    description = "pruning snapshots"
    descriptionDone = "snapshots pruned"

    def __init__(self, history_dir: str, distributions, keep_states: int, **kwargs):
        self.history_dir = str(history_dir)
        self.distributions = list(distributions)
        self.keep_states = int(keep_states)
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def run(self):
        histories = {}
        for dist in self.distributions:
            path = posixpath.join(self.history_dir, f"{dist}.jsonl")
            text = yield self.getFileContentFromWorker(path)
            if text is None:
                return (yield self.refuse(f"cannot read {path}: nothing dropped"))
            try:
                histories[dist] = release.parse_history(text)
            except ValueError:
                return (yield self.refuse(f"{path} is not a history (JSON lines): nothing dropped"))
        cmd = yield self.run_aptly("publish", "list", "-json", collectStdout=True)
        if cmd.didFail():
            return (yield self.refuse("cannot list the published distributions: nothing dropped"))
        published = {}
        for p in json.loads(cmd.stdout or "[]"):
            try:  # the state, also of a distribution with one component per target release
                published[p["Distribution"]] = targets.state_of(p.get("Sources") or [])
            except ValueError:
                continue
        cmd = yield self.run_aptly("snapshot", "list", "-raw", collectStdout=True)
        if cmd.didFail():
            return (yield self.refuse("cannot list the snapshots: nothing dropped"))
        existing = cmd.stdout.split()
        in_use = retention.snapshots_in_use(histories, self.keep_states, published)
        dropped = []
        for name in retention.snapshots_to_drop(existing, in_use):
            # never a published one: aptly itself refuses that, even with -force
            cmd = yield self.run_aptly("snapshot", "drop", "-force", name, stdioLogName="drop")
            if cmd.didFail():
                return (yield self.refuse(f"could not drop {name}"))
            dropped.append(name)
        cmd = yield self.run_aptly("db", "cleanup", stdioLogName="db cleanup")
        if cmd.didFail():
            return cmd.results()
        kept = len(existing) - len(dropped)
        self.setProperty("snapshots_dropped", len(dropped), "PruneSnapshots")
        self.setProperty("snapshots_kept", kept, "PruneSnapshots")
        self.summary = (
            f"dropped {len(dropped)} snapshot(s), kept {kept} (the last "
            f"{self.keep_states} states of each distribution)"
        )
        return results.SUCCESS
