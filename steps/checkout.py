"""The checkout of a push's commit in one worker command.

Buildbot's Git step (mode "full", method "fresh") asks the worker one thing at a time: whether
the directory exists, git's version, fetch, reset, clean, rev-parse… each a round trip between
master and worker. On the way to staging the package build's checkout is on the critical path,
so this step does the same in one shell command: fetch the configured branch from the configured
URL, check out the build's commit (or the branch's head, for a forced build), remove everything
git does not track, and print the commit and its time.
"""

from __future__ import annotations

import re

from twisted.internet import defer

from buildbot.process import buildstep
from buildbot.process import results

from conveyor import buildprops
from steps.summary import Summarized

SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")

# $1 URL, $2 branch, $3 commit (may be empty: the branch's head), $4 (optional) a changelog's
# path. A commit the branch no longer leads to (a force push since) is fetched by its id. An
# index.lock is what a git killed by a stopped build leaves: no other git runs here (a builder
# runs one build at a time on a worker), and left alone it would fail every later build of this
# builder on this worker. The changelog's first entry is printed after the line CHANGELOG, as
# the commit holds it: git reads the blob, never a file in the checkout (this runs outside the
# sandbox, and a debian/changelog committed as a symlink to the worker's password would
# otherwise be read with the worker's rights and shown in an error).
SCRIPT = r"""set -eu
[ -d .git ] || git init --quiet .
rm -f .git/index.lock
git fetch --quiet --no-tags -- "$1" "+refs/heads/$2:refs/remotes/origin/$2"
target=${3:-refs/remotes/origin/$2}
if ! git checkout --quiet --force --detach "$target" -- 2>/dev/null; then
    git fetch --quiet --no-tags -- "$1" "$3"
    git checkout --quiet --force --detach "$target" --
fi
git clean --quiet -ffdx
git log -1 --format='%H %ct' HEAD
if [ -n "${4:-}" ]; then
    echo '@@ changelog'
    git cat-file blob "HEAD:$4" 2>/dev/null | sed '/^ -- /q' || :
fi
"""
CHANGELOG = "@@ changelog\n"


class Checkout(Summarized, buildstep.ShellMixin, buildstep.BuildStep):
    """Check out the build's commit of `repourl`'s `branch` in the build's directory, fresh:
    sets `got_revision` (as Buildbot's source steps do) and `commit_time`; with `changelog`,
    also `changelog_head`, the first entry of that file in the commit ("" when it has none)."""

    logEnviron = False  # the worker's environment is in no log (steps/__init__.py)

    name = "git"
    description = "checking out"
    descriptionDone = "update"
    renderables = ["repourl", "branch"]

    def __init__(self, repourl: str, branch: str, changelog: str | None = None, **kwargs):
        self.repourl = repourl
        self.branch = branch
        self.changelog = changelog
        kwargs.setdefault("haltOnFailure", True)
        kwargs = self.setupShellMixin(kwargs)
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def run(self):
        stamp = self.build.getSourceStamp("")
        revision = (stamp.revision if stamp else None) or ""
        if revision and not SHA.fullmatch(revision):
            log = yield self.addLog("stdio")
            yield log.addStderr(f"not a commit id: {revision!r}\n")
            self.summary = "not a commit id"
            return results.FAILURE
        cmd = yield self.makeRemoteShellCommand(
            command=[
                "sh",
                "-c",
                SCRIPT,
                "checkout",
                self.repourl,
                self.branch,
                revision,
                *([self.changelog] if self.changelog else []),
            ],
            collectStdout=True,
        )
        yield self.runCommand(cmd)
        if cmd.didFail():
            return cmd.results()
        checked_out, _, changelog = cmd.stdout.partition(CHANGELOG)
        try:
            sha, when = checked_out.strip().splitlines()[-1].split()
            when = int(when)
        except (ValueError, IndexError):
            self.summary = "no commit checked out"
            return results.FAILURE
        self.setProperty("got_revision", sha, "Checkout")
        self.setProperty(buildprops.COMMIT_TIME, when, "Checkout")
        if self.changelog:
            self.setProperty("changelog_head", changelog, "Checkout")
        return results.SUCCESS
