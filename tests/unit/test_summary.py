"""steps.summary: a step says what it did with `self.summary` — shown as it is, whatever the
result, its secrets hidden — and that is the only way a step of steps/ sets its summary."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
from twisted.internet import defer

from buildbot.process import buildstep
from buildbot.process.properties import Interpolate
from buildbot.process.results import FAILURE
from buildbot.process.results import SUCCESS
from buildbot.process.results import WARNINGS

from steps.failfast import fails_with_the_package
from steps.summary import Summarized
from tests.unit.stepcase import StepTestCase

STEPS = Path(__file__).resolve().parents[2] / "steps"


class Says(Summarized, buildstep.BuildStep):
    """Ends with `result`, having said `text` (None: nothing), after a command that timed out
    when `timed_out`."""

    name = "says"
    descriptionDone = "said"
    renderables = ["text"]

    def __init__(self, text, result, timed_out=False, **kwargs):
        self.text, self.result, self.timing_out = text, result, timed_out
        super().__init__(**kwargs)

    def run(self):
        if self.text is not None:
            self.summary = self.text
        self.timed_out = self.timing_out  # as runCommand sets it after a command's timeout
        return defer.succeed(self.result)


class TestSummarized(StepTestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        yield self.setup_test_build_step(with_secrets={"token": "s3cr3t-t0ken"})

    def test_the_sentence_is_shown_without_the_result(self):
        self.setup(Says("index answered 404", FAILURE))
        self.expect_outcome(result=FAILURE, state_string="index answered 404")
        self.expect_result_summary({"step": "index answered 404"})
        return self.run_step()

    def test_warnings_append_nothing_either(self):
        self.setup(Says("3 lint problems", WARNINGS))
        self.expect_outcome(result=WARNINGS, state_string="3 lint problems")
        return self.run_step()

    def test_a_secret_in_the_sentence_is_hidden(self):
        # Buildbot hides it in the step's state string in any case; the build's summary (the
        # failing step's, Build.stepDone) comes from getResultSummary as it is
        self.setup(
            Says(
                Interpolate("cannot fetch https://ci:%(secret:token)s@git.example/"),
                FAILURE,
                haltOnFailure=True,
            )
        )
        hidden = "cannot fetch https://ci:<token>@git.example/"
        self.expect_outcome(result=FAILURE, state_string=hidden)
        self.expect_result_summary({"step": hidden})
        self.expect_build_result_summary({"step": hidden, "build": hidden})
        return self.run_step()

    def test_a_timeout_is_said(self):
        self.setup(Says("tests failed", FAILURE, timed_out=True))
        self.expect_outcome(result=FAILURE, state_string="tests failed (timed out)")
        return self.run_step()

    def test_a_step_that_says_nothing_has_buildbots_summary(self):
        self.setup(Says(None, FAILURE))
        self.expect_outcome(result=FAILURE, state_string="said (failure)")
        return self.run_step()

    def test_nothing_said_and_success_is_the_description(self):
        self.setup(Says(None, SUCCESS))
        self.expect_outcome(result=SUCCESS, state_string="said")
        return self.run_step()


def test_failfast_steps_must_be_summarized():
    # its STOPPED is said through `summary`, which only a Summarized step shows
    with pytest.raises(TypeError, match="Summarized"):
        fails_with_the_package(type("Plain", (buildstep.BuildStep,), {}))


# One idiom: the steps of steps/ set `self.summary`; none changes descriptionDone at run time or
# overrides getResultSummary (steps/summary.py is the one place).


def step_modules() -> list[Path]:
    return sorted(STEPS.glob("*.py"))


def other_idioms(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if node.name == "getResultSummary" and path.name != "summary.py":
                found.append(f"{path.name}:{node.lineno}: def getResultSummary")
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            for part in ast.walk(target):
                if (
                    isinstance(part, ast.Attribute)
                    and isinstance(part.value, ast.Name)
                    and part.value.id == "self"
                    and part.attr == "descriptionDone"
                ):
                    found.append(f"{path.name}:{node.lineno}: self.descriptionDone = …")
                if isinstance(part, ast.Attribute) and part.attr == "getResultSummary":
                    found.append(f"{path.name}:{node.lineno}: getResultSummary replaced")
    return found


@pytest.mark.parametrize("path", step_modules(), ids=lambda p: p.name)
def test_steps_say_what_they_did_only_with_summary(path):
    assert other_idioms(path) == [], (
        "a step says what it did with `self.summary = …` (steps/summary.py)"
    )


def test_the_check_finds_the_other_idioms(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "class X:\n"
        "    def run(self):\n"
        "        self.descriptionDone = 'done'\n"
        "    def getResultSummary(self):\n"
        "        return {}\n"
    )
    assert sorted(other_idioms(bad)) == [
        "bad.py:3: self.descriptionDone = …",
        "bad.py:4: def getResultSummary",
    ]


def summarizing_classes(path: Path) -> list[str]:
    """The classes of a module whose methods set `self.summary`."""
    names = []
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.ClassDef) and any(
            isinstance(part, ast.Attribute)
            and isinstance(part.value, ast.Name)
            and part.value.id == "self"
            and part.attr == "summary"
            and isinstance(part.ctx, ast.Store)
            for part in ast.walk(node)
        ):
            names.append(node.name)
    return names


@pytest.mark.parametrize("path", step_modules(), ids=lambda p: p.name)
def test_a_step_that_sets_summary_is_summarized(path):
    # without the mixin, `self.summary` would be set and never shown
    module = importlib.import_module(f"steps.{path.stem}")
    for name in summarizing_classes(path):
        assert issubclass(getattr(module, name), Summarized), f"{path.name}: {name}"
