"""The install check: the built .debs installed, upgraded and purged in a throwaway root.

The work is done on the build worker by `conveyor-install-check` (worker/bin/), which runs
Debian's piuparts, unprivileged, in a user namespace; this step hands it the packages, the
repository's distributions and the project's smoke command, and reads its verdict.
"""

from __future__ import annotations

import re

from twisted.internet import defer

from buildbot.process import buildstep
from buildbot.process import logobserver
from buildbot.process import results

from conveyor import buildprops
from conveyor import targets
from steps.summary import Summarized

# the tool's last line: "conveyor-install-check: passed (install, purge, upgrade) in 11.2 s",
# or "conveyor-install-check: FAILED (install, purge) after 9.1 s: the postinst of app failed …"
VERDICT = re.compile(
    r"^conveyor-install-check: (passed|FAILED) \(([^)]*)\) "
    r"(?:in|after) ([0-9.]+) s(?:: (.*))?$"
)


class InstallCheck(Summarized, buildstep.ShellMixin, buildstep.BuildStep):
    """`conveyor-install-check` on the .debs of the build (property `debs`, next to the checkout).

    Dependencies come from the worker's own archives and from `deps` (the upload distribution);
    the upgrade starts from what `upgrade_from` (the next distribution of the path) holds, when
    it holds the package. A failure (a maintainer script, a file left behind or gone after the
    purge, the smoke command) fails the step; its log ends with what piuparts found.

    With a `target` release (conveyor/targets.py): that release's packages only (their version's
    suffix), in a root of that release, their dependencies from its component of `deps`.

    Sets `install_check_seconds`.
    """

    logEnviron = False  # the worker's environment is in no log (steps/__init__.py)

    name = "install-check"
    description = "checking install"
    descriptionDone = "install check"
    renderables = ["repo_url", "key_url", "deps", "upgrade_from", "smoke"]

    def __init__(
        self,
        repo_url: str = "",
        key_url: str = "",
        component: str = "main",
        deps: str | None = None,
        upgrade_from: str | None = None,
        smoke=(),
        tool: str = "conveyor-install-check",
        target: str = "",
        **kwargs,
    ):
        self.repo_url = repo_url
        self.key_url = key_url
        self.target = target
        self.component = target or component
        if target:
            kwargs.setdefault("name", f"install-check-{target}")
        self.deps = deps
        self.upgrade_from = upgrade_from
        self.smoke = list(smoke)
        self.tool = tool
        kwargs.setdefault("haltOnFailure", True)
        kwargs = self.setupShellMixin(kwargs)
        super().__init__(**kwargs)
        self.verdict: tuple[str, str, float] | None = None
        self.finding: str | None = None
        self.addLogObserver("stdio", logobserver.LineConsumerLogObserver(self._lines))

    def _lines(self):
        while True:
            _, line = yield
            line = line.strip()
            if match := VERDICT.match(line):
                self.verdict = (match.group(1), match.group(2), float(match.group(3)))
                self.finding = match.group(4)

    def command(self, debs: list[str]) -> list[str]:
        argv = [self.tool]
        if self.target:
            argv += ["--release", self.target]
        if self.repo_url:
            argv += ["--repo", self.repo_url, "--component", self.component]
            if self.key_url:
                argv += ["--key-url", self.key_url]
            if self.deps:
                argv += ["--deps", self.deps]
            if self.upgrade_from:
                argv += ["--upgrade-from", self.upgrade_from]
        # --smoke=ARG: an argument that starts with "-" stays the smoke command's own
        argv += [f"--smoke={arg}" for arg in self.smoke]
        return [*argv, "--", *(f"../{deb}" for deb in debs)]

    @defer.inlineCallbacks
    def run(self):
        debs = self.getProperty(buildprops.DEBS) or []
        if self.target:
            end = f"+{targets.suffix(self.target)}_"  # <package>_<version>_<arch>.deb
            debs = [deb for deb in debs if end in deb]
        if not debs:
            log = yield self.addLog("stdio")
            yield log.addStderr("no packages to check: the property `debs` is empty\n")
            return self.failed()
        cmd = yield self.makeRemoteShellCommand(command=self.command(debs))
        yield self.runCommand(cmd)
        if self.verdict is not None:
            self.setProperty("install_check_seconds", round(self.verdict[2], 1), "InstallCheck")
        if cmd.didFail():
            return self.failed()
        if self.verdict:
            _, checks, seconds = self.verdict
            self.summary = f"install check: {checks} passed  {seconds:.0f} s"
        return results.SUCCESS

    def failed(self):
        """FAILURE, saying what the tool found (its verdict's last words), cut to 200
        characters. A stopped step keeps Buildbot's summary ("install check (exception)")."""
        if not self.stopped:
            self.summary = f"install check failed: {self.finding or 'see its log'}"[:200]
        return results.FAILURE
