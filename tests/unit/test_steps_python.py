"""steps.python: exact argv, results, summaries, properties and recorded test results."""

import base64

from twisted.internet import defer
from twisted.trial import unittest

from buildbot import config
from buildbot.process.properties import Interpolate
from buildbot.process.results import FAILURE
from buildbot.process.results import SKIPPED
from buildbot.process.results import SUCCESS
from buildbot.process.results import WARNINGS
from buildbot.test.reactor import TestReactorMixin
from buildbot.test.steps import ExpectMkdir
from buildbot.test.steps import ExpectRmfile
from buildbot.test.steps import TestBuildStepMixin
from buildbot.util import test_result_submitter

from steps.junit import parse_junit
from steps.python import Coverage
from steps.python import CreateVirtualenv
from steps.python import InstallRequirements
from steps.python import RunTests
from tests.unit.stepcase import ExpectShell

PY = "../venv/bin/python"

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="4">
<testcase classname="tests.test_a" name="test_ok" file="tests/test_a.py" line="3" time="0.5"/>
<testcase classname="tests.test_a" name="test_bad" time="0.25">
  <failure message="assert 1 == 2">AssertionError</failure>
</testcase>
<testcase classname="tests.test_b" name="test_later" time="0.000">
  <skipped type="pytest.skip" message="later">skip</skipped>
</testcase>
<testcase classname="tests.test_b" name="test_fine" time="1"/>
</testsuite></testsuites>
"""


class StepTestCase(TestBuildStepMixin, TestReactorMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        yield self.setup_test_build_step()


class TestCreateVirtualenv(StepTestCase):
    def test_success(self):
        self.setup_step(CreateVirtualenv(workdir="build"))
        self.expect_commands(
            ExpectShell(
                workdir="build", command=["python3", "-m", "venv", "--clear", "../venv"]
            ).exit(0)
        )
        self.expect_outcome(result=SUCCESS)
        self.expect_result_summary({"step": "virtualenv"})
        return self.run_step()

    def test_failure_and_renderable_python(self):
        self.setup_step(CreateVirtualenv(python=Interpolate("%(prop:python)s"), venv="/tmp/v"))
        self.build.setProperty("python", "python3.11", "test")
        self.expect_commands(
            ExpectShell(
                workdir="wkdir", command=["python3.11", "-m", "venv", "--clear", "/tmp/v"]
            ).exit(1)
        )
        self.expect_outcome(result=FAILURE)
        self.expect_result_summary({"step": "virtualenv (failure)"})
        return self.run_step()

    def test_class_attributes(self):
        self.assertEqual(CreateVirtualenv.name, "virtualenv")
        self.assertEqual(CreateVirtualenv.description, "creating virtualenv")
        self.assertEqual(CreateVirtualenv.descriptionDone, "virtualenv")


UV_ENV = {
    "UV_PYTHON_DOWNLOADS": "never",
    "UV_LINK_MODE": "copy",
    "UV_NO_PROGRESS": "1",
    "UV_SYSTEM_CERTS": "1",
}


class TestUv(StepTestCase):
    """installer = "uv": the same fresh environment, made and filled by uv."""

    def test_uv_makes_a_fresh_venv_with_the_projects_python_and_never_downloads_one(self):
        self.setup_step(CreateVirtualenv(installer="uv", python="python3.11", workdir="build"))
        self.expect_commands(
            ExpectShell(
                workdir="build",
                env=UV_ENV,
                command=["uv", "venv", "--quiet", "--clear", "--python", "python3.11", "../venv"],
            ).exit(0)
        )
        self.expect_outcome(result=SUCCESS)
        return self.run_step()

    def test_uv_installs_into_the_venv_in_the_sandbox(self):
        self.setup_step(
            InstallRequirements(
                installer="uv",
                requirements=["a.txt", "b.txt"],
                sandbox=["conveyor-sandbox", "/b", "--"],
                workdir="build",
            )
        )
        self.expect_commands(
            ExpectShell(
                workdir="build",
                env=UV_ENV,
                command=[
                    "conveyor-sandbox",
                    "/b",
                    "--",
                    "uv",
                    "pip",
                    "install",
                    "--python",
                    PY,
                    "-r",
                    "a.txt",
                    "-r",
                    "b.txt",
                ],
            ).exit(0)
        )
        self.expect_outcome(result=SUCCESS)
        return self.run_step()

    def test_an_unknown_installer_is_a_config_error(self):
        with self.assertRaises(config.ConfigErrors):
            CreateVirtualenv(installer="conda")
        with self.assertRaises(config.ConfigErrors):
            InstallRequirements(installer="poetry")


class TestInstallRequirements(StepTestCase):
    def test_default(self):
        self.setup_step(InstallRequirements(workdir="build"))
        self.expect_commands(
            ExpectShell(
                workdir="build",
                command=[
                    PY,
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "-r",
                    "requirements-dev.txt",
                ],
            ).exit(0)
        )
        self.expect_outcome(result=SUCCESS)
        self.expect_result_summary({"step": "install"})
        return self.run_step()

    def test_the_project_code_runs_in_the_sandbox(self):
        # the factory's prefix: conveyor-sandbox <the build's directory> -- <command>
        self.setup_step(
            InstallRequirements(
                workdir="build",
                sandbox=["conveyor-sandbox", Interpolate("%(prop:builddir)s"), "--"],
            )
        )
        self.build.setProperty("builddir", "/srv/worker/snowbird-ci", "worker")
        self.expect_commands(
            ExpectShell(
                workdir="build",
                command=[
                    "conveyor-sandbox",
                    "/srv/worker/snowbird-ci",
                    "--",
                    PY,
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "-r",
                    "requirements-dev.txt",
                ],
            ).exit(0)
        )
        self.expect_outcome(result=SUCCESS)
        return self.run_step()

    def test_several_files_and_env(self):
        self.setup_step(
            InstallRequirements(
                requirements=["requirements.txt", "requirements-dev.txt"],
                venv="/v",
                env={"PIP_NO_INPUT": "1"},
            )
        )
        self.expect_commands(
            ExpectShell(
                workdir="wkdir",
                env={"PIP_NO_INPUT": "1"},
                command=[
                    "/v/bin/python",
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "-r",
                    "requirements.txt",
                    "-r",
                    "requirements-dev.txt",
                ],
            ).exit(1)
        )
        self.expect_outcome(result=FAILURE)
        self.expect_result_summary({"step": "install (failure)"})
        return self.run_step()

    def test_extras_install_the_project_editable_and_groups_come_from_pyproject(self):
        # a project whose test dependencies are in pyproject.toml, not in a requirements file
        self.setup_step(
            InstallRequirements(
                installer="uv", requirements=(), extras=["test", "toml"], groups=["lint"]
            )
        )
        self.expect_commands(
            ExpectShell(
                workdir="wkdir",
                env=UV_ENV,
                command=[
                    "uv",
                    "pip",
                    "install",
                    "--python",
                    PY,
                    "-e",
                    ".[test,toml]",
                    "--group",
                    "lint",
                ],
            ).exit(0)
        )
        self.expect_outcome(result=SUCCESS)
        return self.run_step()

    def test_no_requirements_is_skipped(self):
        self.setup_step(InstallRequirements(requirements=()))
        self.expect_outcome(result=SKIPPED)
        self.expect_result_summary({"step": "no requirements to install"})
        return self.run_step()


def base64_lines(text: str) -> str:
    """What `base64 FILE` prints: lines of 76 characters."""
    encoded = base64.b64encode(text.encode()).decode()
    return "".join(encoded[i : i + 76] + "\n" for i in range(0, len(encoded), 76))


def test_a_long_report_survives_buildbots_line_splitting():
    # pytest's JUnit report is one line; Buildbot splits a worker's output into lines of at most
    # MAX_LINELENGTH by inserting newlines (upstream's behaviour: this canary fails if it
    # changes), which corrupts the XML; base64's short lines pass through it unchanged
    from buildbot.util.lineboundaries import LineBoundaryFinder

    def through_buildbot(output: str, chunk: int = 8192) -> str:
        finder, received = LineBoundaryFinder(), []
        for i in range(0, len(output), chunk):
            received.append(finder.append(output[i : i + chunk]) or "")
        received.append((finder.flush() or "")[:-1])
        return "".join(received)

    cases = "".join(
        f'<testcase classname="tests.test_app" name="test_{n}" time="0.001" />' for n in range(200)
    )
    report = (
        f'<?xml version="1.0"?><testsuites><testsuite name="pytest">{cases}</testsuite>'
        "</testsuites>"
    )
    assert through_buildbot(report) != report  # the plain report is cut into lines
    assert base64.b64decode(through_buildbot(base64_lines(report))).decode() == report
    decoded = base64.b64decode(through_buildbot(base64_lines(report))).decode()
    assert len(parse_junit(decoded)) == 200


class TestRunTests(StepTestCase):
    def expect_prepare(self, path="reports/junit.xml", dir="reports"):
        return [
            ExpectRmfile(path=path, log_environ=False).exit(0),
            ExpectMkdir(dir=dir, log_environ=False).exit(0),
        ]

    def expect_upload(self, content=None, workersrc="../reports/junit.xml", sandbox=()):
        # the report is read in the tests' sandbox (a symlink there reaches nothing secret)
        # (into no log: .update, as a worker's output reaches a command without one)
        expect = ExpectShell(workdir="build", command=[*sandbox, "base64", "--", workersrc])
        if content is None:  # there is no such file
            return expect.update("stderr", f"base64: {workersrc}: No such file\n").exit(1)
        return expect.update("stdout", base64_lines(content)).exit(0)

    def pytest_command(self, *args):
        return [
            PY,
            "-m",
            "coverage",
            "run",
            "-m",
            "pytest",
            *args,
            "--junit-xml",
            "../reports/junit.xml",
        ]

    def test_failure_pass_skip(self):
        self.setup_step(RunTests(workdir="build"))
        self.expect_commands(
            *self.expect_prepare(),
            ExpectShell(workdir="build", command=self.pytest_command()).exit(1),
            self.expect_upload(JUNIT),
        )
        self.expect_outcome(result=FAILURE)
        self.expect_result_summary({"step": "2 passed, 1 failed, 1 skipped"})
        self.expect_property("tests_passed", 2, "RunTests")
        self.expect_property("tests_failed", 1)
        self.expect_property("tests_skipped", 1)
        self.expect_property("tests_failed_names", ["tests.test_a::test_bad"])
        self.expect_property(
            "tests_failures",
            [{"name": "tests.test_a::test_bad", "text": "assert 1 == 2\nAssertionError"}],
        )
        self.expect_log_file(
            "failures", "=== tests.test_a::test_bad\nassert 1 == 2\nAssertionError\n\n"
        )
        self.expect_test_result_sets([("pytest results", "pass_fail", "boolean")])
        self.expect_test_results(
            [
                (1000, "1", "tests.test_a::test_ok", "tests/test_a.py", 3, 500000000),
                (1000, "0", "tests.test_a::test_bad", None, None, 250000000),
                (1000, "1", "tests.test_b::test_fine", None, None, 1000000000),
            ]
        )
        return self.run_step()

    def test_a_target_releases_figures_are_its_own_and_add_up_to_the_builds(self):
        # bookworm's tests passed earlier in the build; trixie's fail one (its Python's)
        self.setup_step(RunTests(workdir="build", target="trixie"))
        bookworm = {"passed": 3, "failed": 0, "skipped": 0, "coverage": 91.0}
        self.build.setProperty("by_target", {"bookworm": dict(bookworm)}, "RunTests")
        self.build.setProperty("tests_failures", [], "RunTests")
        self.expect_commands(
            *self.expect_prepare(),
            ExpectShell(workdir="build", command=self.pytest_command()).exit(1),
            self.expect_upload(JUNIT),
        )
        self.expect_outcome(result=FAILURE)
        self.expect_property(
            "by_target",
            {"bookworm": bookworm, "trixie": {"passed": 2, "failed": 1, "skipped": 1}},
        )
        self.expect_property("tests_passed", 5)
        self.expect_property("tests_failed", 1)
        self.expect_property("tests_failed_names", ["tests.test_a::test_bad [trixie]"])
        self.expect_test_result_sets([("pytest results (trixie)", "pass_fail", "boolean")])
        self.expect_test_results(
            [
                (1000, "1", "tests.test_a::test_ok", "tests/test_a.py", 3, 500000000),
                (1000, "0", "tests.test_a::test_bad", None, None, 250000000),
                (1000, "1", "tests.test_b::test_fine", None, None, 1000000000),
            ]
        )
        return self.run_step()

    def test_the_report_is_read_in_the_sandbox_the_tests_ran_in(self):
        sandbox = ["conveyor-sandbox", "/srv/worker/snowbird-ci", "--"]
        self.setup_step(RunTests(workdir="build", sandbox=sandbox))
        self.expect_commands(
            *self.expect_prepare(),
            ExpectShell(workdir="build", command=[*sandbox, *self.pytest_command()]).exit(0),
            self.expect_upload("<testsuite/>", sandbox=sandbox),
        )
        self.expect_outcome(result=SUCCESS)
        self.expect_result_summary({"step": "0 passed, 0 failed"})
        self.expect_test_result_sets([("pytest results", "pass_fail", "boolean")])
        return self.run_step()

    @defer.inlineCallbacks
    def test_recorded_values_are_accepted_by_buildbot(self):
        # the test mixin fakes addTestResult; the real submitter insists on types
        yield self.test_failure_pass_skip()
        submitter = test_result_submitter.TestResultSubmitter()
        for _, value, name, path, line, duration in self._got_test_results:
            submitter.add_test_result(
                value, test_name=name, test_code_path=path, line=line, duration_ns=duration
            )

    def test_all_passed_single_testsuite_root_and_args(self):
        junit = """<testsuite name="x" tests="2">
            <testcase classname="T" name="a"/><testcase name="b" time="0.1"/>
        </testsuite>"""
        self.setup_step(RunTests(args=["-x", "tests/unit"], workdir="build"))
        self.expect_commands(
            *self.expect_prepare(),
            ExpectShell(workdir="build", command=self.pytest_command("-x", "tests/unit")).exit(0),
            self.expect_upload(junit),
        )
        self.expect_outcome(result=SUCCESS)
        self.expect_result_summary({"step": "2 passed, 0 failed"})
        self.expect_property("tests_passed", 2)
        self.expect_property("tests_failed", 0)
        self.expect_property("tests_skipped", 0)
        self.expect_property("tests_failed_names", [])
        self.expect_test_result_sets([("pytest results", "pass_fail", "boolean")])
        self.expect_test_results(
            [
                (1000, "1", "T::a", None, None, None),
                (1000, "1", "b", None, None, 100000000),
            ]
        )
        return self.run_step()

    def test_failed_test_with_exit_zero_still_fails(self):
        junit = '<testsuite><testcase name="t"><error message="boom"/></testcase></testsuite>'
        self.setup_step(RunTests(workdir="build"))
        self.expect_commands(
            *self.expect_prepare(),
            ExpectShell(workdir="build", command=self.pytest_command()).exit(0),
            self.expect_upload(junit),
        )
        self.expect_outcome(result=FAILURE)
        self.expect_result_summary({"step": "0 passed, 1 failed"})
        self.expect_test_result_sets([("pytest results", "pass_fail", "boolean")])
        self.expect_test_results([(1000, "0", "t", None, None, None)])
        return self.run_step()

    def test_failed_names_capped_at_20(self):
        cases = "".join(f'<testcase name="t{i}"><failure/></testcase>' for i in range(25))
        self.setup_step(RunTests(workdir="build"))
        self.expect_commands(
            *self.expect_prepare(),
            ExpectShell(workdir="build", command=self.pytest_command()).exit(1),
            self.expect_upload(f"<testsuite>{cases}</testsuite>"),
        )
        self.expect_outcome(result=FAILURE)
        self.expect_result_summary({"step": "0 passed, 25 failed"})
        self.expect_property("tests_failed", 25)
        self.expect_property("tests_failed_names", [f"t{i}" for i in range(20)])
        self.expect_test_result_sets([("pytest results", "pass_fail", "boolean")])
        self.expect_test_results([(1000, "0", f"t{i}", None, None, None) for i in range(25)])
        return self.run_step()

    def test_other_runner_without_junit(self):
        self.setup_step(RunTests(runner="unittest", args=["discover"], workdir="build"))
        self.expect_commands(
            *self.expect_prepare(),
            ExpectShell(
                workdir="build",
                command=[PY, "-m", "coverage", "run", "-m", "unittest", "discover"],
            ).exit(0),
            self.expect_upload(None),
        )
        self.expect_outcome(result=SUCCESS)
        self.expect_result_summary({"step": "tests passed"})
        self.expect_no_property("tests_passed")
        return self.run_step()

    def test_other_runner_failing_without_junit(self):
        self.setup_step(RunTests(runner="unittest", workdir="build"))
        self.expect_commands(
            *self.expect_prepare(),
            ExpectShell(
                workdir="build", command=[PY, "-m", "coverage", "run", "-m", "unittest"]
            ).exit(1),
            self.expect_upload(None),
        )
        self.expect_outcome(result=FAILURE)
        self.expect_result_summary({"step": "tests failed"})
        return self.run_step()

    def test_pytest_without_junit_warns(self):
        self.setup_step(RunTests(workdir="build"))
        self.expect_commands(
            *self.expect_prepare(),
            ExpectShell(workdir="build", command=self.pytest_command()).exit(0),
            self.expect_upload(None),
        )
        self.expect_outcome(result=WARNINGS)
        self.expect_result_summary({"step": "tests passed"})
        self.expect_log_file_stderr("stdio", "\nno JUnit XML report at ../reports/junit.xml\n")
        return self.run_step()

    def test_malformed_junit(self):
        self.setup_step(RunTests(workdir="build"))
        self.expect_commands(
            *self.expect_prepare(),
            ExpectShell(workdir="build", command=self.pytest_command()).exit(0),
            self.expect_upload("<testsuite><testcase"),
        )
        self.expect_outcome(result=WARNINGS)
        self.expect_result_summary({"step": "tests passed (JUnit XML unreadable)"})
        self.expect_no_property("tests_passed")
        return self.run_step()

    @defer.inlineCallbacks
    def test_malformed_junit_logged(self):
        yield self.test_malformed_junit()
        stderr = self.get_nth_step(0).logs["stdio"].stderr
        self.assertIn("cannot parse JUnit XML report ../reports/junit.xml", stderr)

    def test_custom_junit_path(self):
        self.setup_step(RunTests(junit_xml="out/junit.xml", workdir="build"))
        self.expect_commands(
            *self.expect_prepare(path="build/out/junit.xml", dir="build/out"),
            ExpectShell(
                workdir="build",
                command=[
                    PY,
                    "-m",
                    "coverage",
                    "run",
                    "-m",
                    "pytest",
                    "--junit-xml",
                    "out/junit.xml",
                ],
            ).exit(0),
            self.expect_upload("<testsuite/>", workersrc="out/junit.xml"),
        )
        self.expect_outcome(result=SUCCESS)
        self.expect_result_summary({"step": "0 passed, 0 failed"})
        self.expect_test_result_sets([("pytest results", "pass_fail", "boolean")])
        return self.run_step()

    def test_halt_on_failure_default(self):
        self.assertTrue(RunTests().haltOnFailure)
        self.assertFalse(RunTests(haltOnFailure=False).haltOnFailure)


class TestParseJunit(unittest.TestCase):
    def test_outcomes(self):
        outcomes = [(c.name, c.outcome) for c in parse_junit(JUNIT)]
        self.assertEqual(
            outcomes,
            [
                ("tests.test_a::test_ok", "passed"),
                ("tests.test_a::test_bad", "failed"),
                ("tests.test_b::test_later", "skipped"),
                ("tests.test_b::test_fine", "passed"),
            ],
        )

    def test_failure_text_is_kept(self):
        (ok, bad, skipped, _) = parse_junit(JUNIT)
        self.assertEqual(bad.failure, "assert 1 == 2\nAssertionError")
        self.assertIsNone(ok.failure)
        self.assertIsNone(skipped.failure)

    def test_failure_text_of_pytest(self):
        """pytest puts the message in the attribute and the traceback, which repeats it, in the
        text: the text is kept once; an <error> counts too."""
        (case,) = parse_junit(
            '<testsuite><testcase classname="t" name="x"><failure message="assert 1 == 2&#10;'
            ' +  where 1 = f()">def test_x():\n&gt;       assert f() == 2\n'
            "E       assert 1 == 2\nE        +  where 1 = f()</failure>"
            '<error message="teardown">boom</error></testcase></testsuite>'
        )
        self.assertEqual(case.outcome, "failed")
        self.assertEqual(
            case.failure,
            "def test_x():\n>       assert f() == 2\n"
            "E       assert 1 == 2\nE        +  where 1 = f()"
            "\n\nteardown\nboom",
        )

    def test_bad_numbers_are_ignored(self):
        (case,) = parse_junit('<testsuite><testcase name="t" line="x" time="?"/></testsuite>')
        self.assertEqual((case.line, case.duration_ns), (None, None))


REPORT = "{}\n"  # what `coverage report --format=total` prints


class TestCoverage(StepTestCase):
    def expect_coverage(self, report_stdout, report_exit=0, html_exit=0, html=True):
        commands = [
            ExpectShell(workdir="build", command=[PY, "-m", "coverage", "report", "--format=total"])
            .stdout(report_stdout)
            .exit(report_exit)
        ]
        if html:
            commands.append(
                ExpectShell(
                    workdir="build",
                    command=[PY, "-m", "coverage", "html", "-d", "../reports/htmlcov"],
                ).exit(html_exit)
            )
        self.expect_commands(*commands)

    def test_above_threshold(self):
        self.setup_step(Coverage(workdir="build"))
        self.expect_coverage(REPORT.format(93))
        self.expect_outcome(result=SUCCESS)
        self.expect_result_summary({"step": "coverage 93% (threshold 80%)"})
        self.expect_property("coverage_percent", 93.0, "Coverage")
        self.expect_property("coverage_threshold", 80.0)
        return self.run_step()

    def test_a_target_releases_coverage_is_its_own_and_the_builds_is_the_lowest(self):
        self.setup_step(Coverage(workdir="build", target="trixie"))
        self.build.setProperty("by_target", {"bookworm": {"coverage": 95.0}}, "Coverage")
        self.expect_coverage(REPORT.format(93))
        self.expect_outcome(result=SUCCESS)
        self.expect_property(
            "by_target", {"bookworm": {"coverage": 95.0}, "trixie": {"coverage": 93.0}}
        )
        self.expect_property("coverage_percent", 93.0)
        return self.run_step()

    def test_at_threshold_with_precision(self):
        self.setup_step(Coverage(threshold=93.33, workdir="build"))
        self.expect_coverage(REPORT.format("93.33"))
        self.expect_outcome(result=SUCCESS)
        self.expect_result_summary({"step": "coverage 93.33% (threshold 93.33%)"})
        self.expect_property("coverage_percent", 93.33)
        return self.run_step()

    def test_below_threshold_failure(self):
        self.setup_step(Coverage(workdir="build"))
        self.expect_coverage(REPORT.format(72))
        self.expect_outcome(result=FAILURE)
        self.expect_result_summary({"step": "coverage 72% < 80%"})
        self.expect_property("coverage_percent", 72.0)
        self.expect_property("coverage_threshold", 80.0)
        return self.run_step()

    def test_below_threshold_warnings(self):
        self.setup_step(Coverage(threshold=75, below="warnings", workdir="build"))
        self.expect_coverage(REPORT.format(72))
        self.expect_outcome(result=WARNINGS)
        self.expect_result_summary({"step": "coverage 72% < 75%"})
        self.expect_property("coverage_threshold", 75.0)
        return self.run_step()

    def test_no_total(self):
        self.setup_step(Coverage(workdir="build"))
        self.expect_coverage("No data to report.\n", report_exit=1, html=False)
        self.expect_outcome(result=FAILURE)
        self.expect_result_summary({"step": "coverage report gave no total"})
        self.expect_no_property("coverage_percent")
        self.expect_log_file_stderr("stdio", "\ncoverage report gave no total\n")
        return self.run_step()

    def test_report_exit_code_from_fail_under_uses_total(self):
        self.setup_step(Coverage(workdir="build"))
        self.expect_coverage(REPORT.format(85), report_exit=2)
        self.expect_outcome(result=SUCCESS)
        self.expect_property("coverage_percent", 85.0)
        return self.run_step()

    def test_html_failure_warns(self):
        self.setup_step(Coverage(workdir="build"))
        self.expect_coverage(REPORT.format(93), html_exit=1)
        self.expect_outcome(result=WARNINGS)
        self.expect_result_summary({"step": "coverage 93% (threshold 80%)"})
        return self.run_step()

    def test_renderable_threshold(self):
        self.setup_step(Coverage(threshold=Interpolate("%(prop:min)s"), workdir="build"))
        self.build.setProperty("min", "95", "test")
        self.expect_coverage(REPORT.format(93))
        self.expect_outcome(result=FAILURE)
        self.expect_result_summary({"step": "coverage 93% < 95%"})
        self.expect_property("coverage_threshold", 95.0)
        return self.run_step()

    def test_bad_below(self):
        with self.assertRaises(config.ConfigErrors):
            Coverage(below="ignore")

    def test_halt_on_failure_default(self):
        self.assertTrue(Coverage().haltOnFailure)
