"""steps.lint: the linter's argv and PATH, its problems counted and listed with file and line,
and what they do to the build (below = warnings | failure)."""

import json

from buildbot import config
from buildbot.process.results import FAILURE
from buildbot.process.results import SUCCESS
from buildbot.process.results import WARNINGS

from steps.lint import Lint
from steps.lint import parse_lines
from steps.lint import parse_ruff_json
from steps.lint import parser_for
from tests.unit.stepcase import ExpectShell
from tests.unit.stepcase import StepTestCase

RUFF = ["ruff", "check", "--output-format=json", "."]
ENV = {"PATH": ["../venv/bin", "${PATH}"]}
ROOT = "/srv/w/snowbird-ci/build"


def ruff_output(*problems):
    return json.dumps(
        [
            {
                "filename": f"{ROOT}/{file}",
                "location": {"row": row, "column": col},
                "code": code,
                "message": message,
            }
            for file, row, col, code, message in problems
        ]
    )


def test_parser_is_chosen_by_the_command():
    assert parser_for(RUFF) == "ruff-json"
    assert parser_for(["/x/bin/ruff", "check", "--output-format", "json"]) == "ruff-json"
    assert parser_for(["ruff", "check", "--output-format=concise", "."]) == "lines"
    assert parser_for(["flake8", "snowbird"]) == "lines"


def test_ruff_json_paths_are_relative_to_the_checkout():
    problems = parse_ruff_json(
        ruff_output(("snowbird/app.py", 3, 1, "F401", "`os` imported but unused")), ROOT
    )
    assert [str(p) for p in problems] == ["snowbird/app.py:3:1: F401 `os` imported but unused"]


def test_lines_parser_reads_flake8_and_mypy_and_skips_the_rest():
    text = (
        "snowbird/app.py:3:1: F401 'os' imported but unused\n"
        "snowbird/cli.py:12: error: Incompatible types  [assignment]\n"
        "Found 2 errors in 2 files\n"
    )
    problems = parse_lines(text)
    assert [(p.file, p.line, p.column) for p in problems] == [
        ("snowbird/app.py", 3, 1),
        ("snowbird/cli.py", 12, None),
    ]


class TestLint(StepTestCase):
    def test_no_problems(self):
        self.setup(Lint(command=RUFF), builddir="/srv/w/snowbird-ci")
        self.expect_commands(
            ExpectShell(workdir="wkdir", command=RUFF, env=ENV).stdout("[]").exit(0)
        )
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lint_problems", 0)
        self.expect_result_summary({"step": "no lint problems"})
        return self.run_step()

    def test_problems_are_warnings_by_default_listed_with_file_and_line(self):
        self.setup(
            Lint(command=RUFF, sandbox=["conveyor-sandbox", "/b", "--"], workdir="build"),
            builddir="/srv/w/snowbird-ci",
        )
        self.expect_commands(
            ExpectShell(workdir="build", command=["conveyor-sandbox", "/b", "--", *RUFF], env=ENV)
            .stdout(
                ruff_output(
                    ("snowbird/app.py", 3, 1, "F401", "`os` imported but unused"),
                    ("tests/test_app.py", 9, 5, "E711", "Comparison to `None`"),
                )
            )
            .exit(1)
        )
        self.expect_outcome(result=WARNINGS)
        self.expect_property("lint_problems", 2)
        self.expect_log_file(
            "problems",
            "snowbird/app.py:3:1: F401 `os` imported but unused\n"
            "tests/test_app.py:9:5: E711 Comparison to `None`\n",
        )
        self.expect_result_summary(
            {"step": "2 lint problems, first: snowbird/app.py:3:1: F401 `os` imported but unused"}
        )
        return self.run_step()

    def test_below_failure_fails_the_build(self):
        self.setup(Lint(command=["flake8", "."], below="failure"))
        self.expect_commands(
            ExpectShell(workdir="wkdir", command=["flake8", "."], env=ENV)
            .stdout("a.py:1:1: E265 block comment\n")
            .exit(1)
        )
        self.expect_outcome(result=FAILURE)
        self.expect_property("lint_problems", 1)
        return self.run_step()

    def test_a_crashed_linter_fails_and_says_so(self):
        self.setup(Lint(command=RUFF))
        self.expect_commands(
            ExpectShell(workdir="wkdir", command=RUFF, env=ENV).stdout("[]").exit(2)
        )
        self.expect_outcome(result=FAILURE)
        self.expect_result_summary({"step": "linter failed (exit 2)"})
        return self.run_step()

    def test_unreadable_output_fails(self):
        self.setup(Lint(command=RUFF))
        self.expect_commands(
            ExpectShell(workdir="wkdir", command=RUFF, env=ENV)
            .stdout("error: no such option\n")
            .exit(2)
        )
        self.expect_outcome(result=FAILURE)
        self.expect_result_summary({"step": "linter output unreadable (ruff-json)"})
        return self.run_step()

    def test_bad_settings_fail_the_config(self):
        with self.assertRaises(config.ConfigErrors):
            Lint(command=RUFF, below="maybe")
        with self.assertRaises(config.ConfigErrors):
            Lint(command=[])
