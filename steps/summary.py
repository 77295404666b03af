"""The one way a step says what it did: `self.summary`.

A step (`class X(Summarized, buildstep.BuildStep)`, the mixin first) sets `self.summary` in
`run()` to a sentence of what it did or found, e.g. `self.summary = f"fetched {n} package(s)"`;
that sentence is its summary on the build page, in the mails and in the GitHub status. No
result is appended (" (failure)"): the sentence says what happened, the step's colour its
result; only " (timed out)" is, as in Buildbot's own summary. A step that sets nothing gets
Buildbot's own summary, from its `descriptionDone` ("lint (failure)").

One place instead of three (`descriptionDone` changed in `run()`, `getResultSummary`
overrides, Buildbot's default), and here the text goes through the build's secrets filter, as
Buildbot's own summary does and the overrides did not: Buildbot hides a secret's value in the
step's state string in any case, but the build's summary (a failing step's, Build.stepDone) is
taken from getResultSummary as it is, so a secret that reached an override's sentence (a URL
with a token, a command's output) showed there. Here it shows as <the secret's name>.
"""

from __future__ import annotations


class Summarized:
    """A step whose summary is `self.summary` when it set one (see the module)."""

    summary: str | None = None

    def getResultSummary(self):
        if self.summary is None:
            return super().getResultSummary()
        text = self.summary
        if self.timed_out:
            text += " (timed out)"
        if self.build is not None:
            text = self.build.properties.cleanupTextFromSecrets(text)
        return {"step": text}
