"""Build steps for Python projects: virtualenv, requirements, tests under coverage, coverage.

All paths are as seen from the step's workdir (the checkout, "build"): the virtualenv lives
beside it in ../venv and reports go to ../reports. `sandbox` is an argv prefix (the factory's:
`conveyor-sandbox <builddir> --`) for every command that runs the project's own code.

A project with target releases (conveyor/targets.py) runs these steps once per release, in
that release's system (`conveyor-sandbox --release R`), with its own virtualenv (../venv-R) and
reports: `target` names it. The tests' and coverage's figures of each go into BY_TARGET; the
plain properties hold their sums, and the lowest coverage.
"""

from __future__ import annotations

import base64
import binascii
import xml.etree.ElementTree as ET

from twisted.internet import defer

from buildbot import config
from buildbot.process import buildstep
from buildbot.process.results import CANCELLED
from buildbot.process.results import FAILURE
from buildbot.process.results import SKIPPED
from buildbot.process.results import SUCCESS
from buildbot.process.results import WARNINGS
from buildbot.process.results import worst_status
from buildbot.steps.worker import CompositeStepMixin

from conveyor import buildprops
from conveyor.results import format_percent
from steps.failfast import fails_with_the_package
from steps.figures import by_target_with
from steps.figures import lowest_coverage
from steps.figures import set_tests
from steps.figures import totals
from steps.junit import parse_junit
from steps.summary import Summarized


def venv_python(venv):
    return f"{venv}/bin/python"


INSTALLERS = ("uv", "pip")
# uv: never download a Python of its own (the project's `python` is the machine's), copy rather
# than warn when its cache (the worker's ~/.cache/uv) is on another file system than the build,
# and trust the machine's certificate store (as pip and apt do), not only uv's bundled one
UV_ENV = {
    "UV_PYTHON_DOWNLOADS": "never",
    "UV_LINK_MODE": "copy",
    "UV_NO_PROGRESS": "1",
    "UV_SYSTEM_CERTS": "1",
}


def _installer(installer):
    if isinstance(installer, str) and installer not in INSTALLERS:
        config.error(f"installer must be one of {', '.join(INSTALLERS)}, not {installer!r}")
    return installer


class CreateVirtualenv(buildstep.ShellMixin, buildstep.BuildStep):
    """A fresh virtualenv every build: `uv venv --clear` (uv, the worker's, from its venv), or
    `python -m venv --clear` (pip). Only caches of downloads and wheels are reused, never an
    environment."""

    logEnviron = False  # the worker's environment is in no log (steps/__init__.py)

    name = "virtualenv"
    description = "creating virtualenv"
    descriptionDone = "virtualenv"
    renderables = ["python", "venv", "installer", "sandbox"]

    def __init__(self, python="python3", venv="../venv", installer="pip", sandbox=(), **kwargs):
        self.python = python
        self.venv = venv
        self.installer = _installer(installer)
        self.sandbox = sandbox  # a target release's system: the venv gets its Python
        kwargs = self.setupShellMixin(kwargs, prohibitArgs=["command"])
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def run(self):
        if self.installer == "uv":
            cmd = yield self.makeRemoteShellCommand(
                command=[
                    *self.sandbox,
                    "uv",
                    "venv",
                    "--quiet",
                    "--clear",
                    "--python",
                    self.python,
                    self.venv,
                ],
                env=UV_ENV,
            )
        else:
            cmd = yield self.makeRemoteShellCommand(
                command=[*self.sandbox, self.python, "-m", "venv", "--clear", self.venv]
            )
        yield self.runCommand(cmd)
        return cmd.results()


@fails_with_the_package
class InstallRequirements(Summarized, buildstep.ShellMixin, buildstep.BuildStep):
    """`uv pip install` (or `pip install`) into the virtualenv, in the sandbox: -r each
    requirements file, the project itself editable with its `extras` (`-e ".[test]"`: so the
    tests and coverage see the checkout's files, not a copy in the virtualenv), and its PEP 735
    `groups` (`--group test`, uv); SKIPPED when there is nothing to install."""

    logEnviron = False  # the worker's environment is in no log (steps/__init__.py)

    name = "install"
    description = "installing requirements"
    descriptionDone = "install"
    renderables = ["requirements", "venv", "sandbox", "installer", "extras", "groups"]

    def __init__(
        self,
        requirements=("requirements-dev.txt",),
        venv="../venv",
        sandbox=(),
        installer="pip",
        extras=(),
        groups=(),
        **kwargs,
    ):
        self.requirements = requirements
        self.venv = venv
        self.sandbox = sandbox
        self.installer = _installer(installer)
        self.extras = extras
        self.groups = groups
        kwargs = self.setupShellMixin(kwargs, prohibitArgs=["command"])
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def run(self):
        if not (self.requirements or self.extras or self.groups):
            self.summary = "no requirements to install"
            return SKIPPED
        if self.installer == "uv":
            command = [*self.sandbox, "uv", "pip", "install", "--python", venv_python(self.venv)]
        else:
            command = [
                *self.sandbox,
                venv_python(self.venv),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
            ]
        for requirement in self.requirements:
            command += ["-r", requirement]
        if self.extras:
            command += ["-e", f".[{','.join(self.extras)}]"]
        for group in self.groups:
            command += ["--group", group]
        extra = {"env": UV_ENV} if self.installer == "uv" else {}
        cmd = yield self.makeRemoteShellCommand(command=command, **extra)
        yield self.runCommand(cmd)
        return cmd.results()


@fails_with_the_package
class RunTests(Summarized, buildstep.ShellMixin, CompositeStepMixin, buildstep.BuildStep):
    """Runs the test runner under coverage and records the JUnit XML results.

    Sets tests_passed, tests_failed, tests_skipped (ints) and tests_failed_names (up to 20).
    """

    logEnviron = False  # the worker's environment is in no log (steps/__init__.py)

    name = "tests"
    description = "running tests"
    descriptionDone = "tests"
    haltOnFailure = True
    renderables = ["runner", "args", "venv", "junit_xml", "sandbox"]

    def __init__(
        self,
        runner="pytest",
        args=(),
        venv="../venv",
        junit_xml="../reports/junit.xml",
        sandbox=(),
        target="",
        **kwargs,
    ):
        self.sandbox = sandbox
        self.target = target
        self.runner = runner
        self.args = args
        self.venv = venv
        self.junit_xml = junit_xml
        kwargs = self.setupShellMixin(kwargs, prohibitArgs=["command"])
        super().__init__(**kwargs)

    def builder_path(self, path):
        """A workdir-relative path as the worker's mkdir/rmfile want it (builder-relative)."""
        pm = self.build.path_module
        return pm.normpath(pm.join(self.workdir, path))

    @defer.inlineCallbacks
    def run(self):
        # never read a stale report from a previous build
        yield self.runRmFile(self.builder_path(self.junit_xml), abandonOnFailure=False)
        yield self.runMkdir(self.builder_path(self.build.path_module.dirname(self.junit_xml)))

        command = [
            *self.sandbox,
            venv_python(self.venv),
            "-m",
            "coverage",
            "run",
            "-m",
            self.runner,
            *self.args,
        ]
        if self.runner == "pytest":
            command += ["--junit-xml", self.junit_xml]
        cmd = yield self.makeRemoteShellCommand(command=command)
        yield self.runCommand(cmd)
        result = cmd.results()
        if self.stopped or result == CANCELLED:
            return CANCELLED
        self.summary = "tests passed" if result == SUCCESS else "tests failed"

        stdio = yield self.getLog("stdio")
        text = yield self.read_report()
        if text is None:
            if self.runner != "pytest":
                return result  # a JUnit report is optional for other runners
            yield stdio.addStderr(f"\nno JUnit XML report at {self.junit_xml}\n")
            return worst_status(result, WARNINGS)
        try:
            cases = parse_junit(text)
        except ET.ParseError as e:
            yield stdio.addStderr(f"\ncannot parse JUnit XML report {self.junit_xml}: {e}\n")
            self.summary += " (JUnit XML unreadable)"
            return worst_status(result, WARNINGS)

        yield self.record(cases)
        if any(case.outcome == "failed" for case in cases):
            return FAILURE
        return result

    @defer.inlineCallbacks
    def read_report(self):
        """The JUnit report as the tests left it, read in their sandbox (None when it cannot be
        read): the tests wrote it, and could have made it a symlink to a file that only the
        worker's own user can read, such as its password. It comes as base64, in short lines:
        pytest writes the report as one line, and Buildbot cuts a worker's output into lines of
        at most 4096 characters (LineBoundaryFinder.MAX_LINELENGTH) by inserting newlines, which
        broke every report past that size (a suite of about 45 tests)."""
        cmd = yield self.makeRemoteShellCommand(
            command=[*self.sandbox, "base64", "--", self.junit_xml],
            collectStdout=True,
            stdioLogName=None,
        )
        yield self.runCommand(cmd)
        if cmd.rc != 0:
            return None
        try:
            return base64.b64decode(cmd.stdout).decode("utf-8", errors="replace")
        except binascii.Error:
            return None

    @defer.inlineCallbacks
    def record(self, cases):
        """Test result set (pass_fail: '1' passed, '0' failed; skipped tests are not recorded),
        properties and summary."""
        on = f" ({self.target})" if self.target else ""
        setid = yield self.addTestResultSet(f"{self.runner} results{on}", "pass_fail", "boolean")
        for case in cases:
            if case.outcome != "skipped":
                self.addTestResult(
                    setid,
                    "1" if case.outcome == "passed" else "0",
                    test_name=case.name,
                    test_code_path=case.file,
                    line=case.line,
                    duration_ns=case.duration_ns,
                )

        counts = {o: sum(c.outcome == o for c in cases) for o in ("passed", "failed", "skipped")}
        failures = [c for c in cases if c.outcome == "failed"]
        # the failure text of each failed test (the board and the failure mail show it), and
        # all of it, uncut, in the log "failures"; a target's failing tests say which release
        mark = f" [{self.target}]" if self.target else ""
        listed = [{"name": c.name + mark, "text": c.failure or ""} for c in failures]
        sums = counts
        if self.target:  # the sums of every release's figures so far
            sums = totals(by_target_with(self, self.target, counts))
            listed = list(self.getProperty(buildprops.TESTS_FAILURES) or []) + listed
        set_tests(self, sums, listed)
        if failures:
            yield self.addCompleteLog(
                "failures", "".join(f"=== {c.name}\n{c.failure or ''}\n\n" for c in failures)
            )

        self.summary = f"{counts['passed']} passed, {counts['failed']} failed"
        if counts["skipped"]:
            self.summary += f", {counts['skipped']} skipped"


@fails_with_the_package
class Coverage(Summarized, buildstep.ShellMixin, buildstep.BuildStep):
    """`coverage report --format=total` (the total percentage, as the project's own report
    settings round it) against a threshold, then `coverage html`.

    Sets coverage_percent and coverage_threshold (floats).
    """

    logEnviron = False  # the worker's environment is in no log (steps/__init__.py)

    name = "coverage"
    description = "measuring coverage"
    descriptionDone = "coverage"
    haltOnFailure = True
    renderables = ["threshold", "below", "venv", "html_dir", "sandbox"]

    def __init__(
        self,
        threshold=80.0,
        below="failure",
        venv="../venv",
        html_dir="../reports/htmlcov",
        sandbox=(),
        target="",
        **kwargs,
    ):
        self.sandbox = sandbox
        self.target = target
        if isinstance(below, str) and below not in ("failure", "warnings"):
            config.error(f"Coverage: below must be 'failure' or 'warnings', not {below!r}")
        self.threshold = threshold
        self.below = below
        self.venv = venv
        self.html_dir = html_dir
        kwargs = self.setupShellMixin(kwargs, prohibitArgs=["command"])
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def run(self):
        python = venv_python(self.venv)
        report = yield self.makeRemoteShellCommand(
            command=[*self.sandbox, python, "-m", "coverage", "report", "--format=total"],
            collectStdout=True,
        )
        yield self.runCommand(report)
        if self.stopped or report.results() == CANCELLED:
            return CANCELLED

        stdio = yield self.getLog("stdio")
        try:
            percent = float((report.stdout or "").strip())
        except ValueError:
            yield stdio.addStderr("\ncoverage report gave no total\n")
            self.summary = "coverage report gave no total"
            return FAILURE
        if report.results() != SUCCESS:  # e.g. fail_under in the project's own config
            yield stdio.addHeader(
                f"\ncoverage report exited {report.rc}; judging by its total instead\n"
            )

        threshold = float(self.threshold)
        lowest = percent
        if self.target:  # the build's coverage: its lowest release's
            lowest = lowest_coverage(by_target_with(self, self.target, {"coverage": percent}))
        self.setProperty(buildprops.COVERAGE_PERCENT, lowest, self.__class__.__name__)
        self.setProperty(buildprops.COVERAGE_THRESHOLD, threshold, self.__class__.__name__)
        if percent >= threshold:
            result = SUCCESS
            self.summary = (
                f"coverage {format_percent(percent)}% (threshold {format_percent(threshold)}%)"
            )
        else:
            result = FAILURE if self.below == "failure" else WARNINGS
            self.summary = f"coverage {format_percent(percent)}% < {format_percent(threshold)}%"

        html = yield self.makeRemoteShellCommand(
            command=[*self.sandbox, python, "-m", "coverage", "html", "-d", self.html_dir]
        )
        yield self.runCommand(html)
        if html.results() != SUCCESS:
            yield stdio.addStderr("\ncoverage html failed\n")
            result = worst_status(result, CANCELLED if self.stopped else WARNINGS)
        return result
