"""The lint step: the project's own linter (e.g. `ruff check --output-format=json .`), its problems
counted and the first of them, with file and line, in a log of their own.

The linter runs from the build's virtualenv (its bin/ first on PATH), in the sandbox, like the
tests. Two parsers: ruff's JSON (`--output-format=json`), and the `file:line[:column]: message`
lines of flake8, pycodestyle, mypy, pylint's parseable format and ruff's concise format.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from twisted.internet import defer

from buildbot import config
from buildbot.process import buildstep
from buildbot.process.results import CANCELLED
from buildbot.process.results import FAILURE
from buildbot.process.results import SUCCESS
from buildbot.process.results import WARNINGS

from conveyor import buildprops
from steps.failfast import fails_with_the_package
from steps.summary import Summarized

PARSERS = ("ruff-json", "lines")
FIRST_PROBLEMS = 20  # shown in the `problems` log (and so in the failure mail)
LINE = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?:(?P<column>\d+):)?\s*(?P<text>.+)$")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    column: int | None
    text: str  # the rule's code (if any) and its message

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" + (f":{self.column}" if self.column else "")
        return f"{where}: {self.text}"


def parser_for(command: list[str]) -> str:
    """ruff asked for JSON gets the JSON parser; anything else, lines."""
    words = [str(word) for word in command]
    if (
        words
        and words[0].rsplit("/", 1)[-1] == "ruff"
        and (
            "--output-format=json" in words
            or any(
                a == "--output-format" and b == "json"
                for a, b in zip(words, words[1:], strict=False)
            )
        )
    ):
        return "ruff-json"
    return "lines"


def relative(path: str, root: str | None) -> str:
    if root and path.startswith(root.rstrip("/") + "/"):
        return path[len(root.rstrip("/")) + 1 :]
    return path


def parse_ruff_json(text: str, root: str | None = None) -> list[Problem]:
    """ruff's `--output-format=json`: a list of {filename, location: {row, column}, code,
    message}. Raises ValueError when the output is not that."""
    data = json.loads(text or "[]")
    if not isinstance(data, list):
        raise ValueError("ruff's JSON output is not a list")
    problems = []
    for item in data:
        location = item.get("location") or {}
        code = item.get("code") or ""
        problems.append(
            Problem(
                relative(str(item.get("filename", "?")), root),
                int(location.get("row") or 0),
                location.get("column"),
                f"{code} {item.get('message', '')}".strip(),
            )
        )
    return problems


def parse_lines(text: str, root: str | None = None) -> list[Problem]:
    problems = []
    for line in (text or "").splitlines():
        match = LINE.match(line.strip())
        if match:
            column = match.group("column")
            problems.append(
                Problem(
                    relative(match.group("file"), root),
                    int(match.group("line")),
                    int(column) if column else None,
                    match.group("text").strip(),
                )
            )
    return problems


def count_text(n: int) -> str:
    return f"{n} lint problem" + ("" if n == 1 else "s")


@fails_with_the_package
class Lint(Summarized, buildstep.ShellMixin, buildstep.BuildStep):
    """Runs the project's linter. Sets `lint_problems` (int). No problems: SUCCESS; problems:
    WARNINGS or FAILURE (`below`: what they do to the build); a linter that crashed (an exit
    status above 1 and nothing parsed): FAILURE."""

    logEnviron = False  # the worker's environment is in no log (steps/__init__.py)

    name = "lint"
    description = "linting"
    descriptionDone = "lint"
    haltOnFailure = True
    renderables = ["command", "venv", "sandbox"]

    def __init__(
        self, command=(), parser=None, below="warnings", venv="../venv", sandbox=(), **kwargs
    ):
        if not command:
            config.error("Lint: a command is required, e.g. ['ruff', 'check', '.']")
        if below not in ("failure", "warnings"):
            config.error(f"Lint: below must be 'failure' or 'warnings', not {below!r}")
        parser = parser or parser_for(list(command))
        if parser not in PARSERS:
            config.error(f"Lint: parser must be one of {', '.join(PARSERS)}, not {parser!r}")
        self.command = list(command)
        self.parser = parser
        self.below = below
        self.venv = venv
        self.sandbox = sandbox
        kwargs = self.setupShellMixin(kwargs, prohibitArgs=["command"])
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def run(self):
        cmd = yield self.makeRemoteShellCommand(
            command=[*self.sandbox, *self.command],
            collectStdout=True,
            env={"PATH": [f"{self.venv}/bin", "${PATH}"]},
        )
        yield self.runCommand(cmd)
        if self.stopped or cmd.results() == CANCELLED:
            return CANCELLED
        root = self.build.path_module.join(self.getProperty("builddir") or "", self.workdir)
        try:
            parse = parse_ruff_json if self.parser == "ruff-json" else parse_lines
            problems = parse(cmd.stdout, root)
        except (ValueError, TypeError, AttributeError) as exc:
            self.summary = f"linter output unreadable ({self.parser})"
            yield (yield self.getLog("stdio")).addStderr(f"\n{self.summary}: {exc}\n")
            return FAILURE
        if cmd.rc not in (0, 1) and not problems:
            self.summary = f"linter failed (exit {cmd.rc})"
            return FAILURE
        self.setProperty(buildprops.LINT_PROBLEMS, len(problems), self.__class__.__name__)
        if not problems:
            self.summary = "no lint problems"
            return SUCCESS
        shown = [str(p) for p in problems[:FIRST_PROBLEMS]]
        if len(problems) > FIRST_PROBLEMS:
            shown.append(f"… and {len(problems) - FIRST_PROBLEMS} more")
        yield self.addCompleteLog("problems", "\n".join(shown) + "\n")
        self.setProperty(buildprops.LINT_FIRST, shown[:5], self.__class__.__name__)
        self.summary = f"{count_text(len(problems))}, first: {problems[0]}"
        return FAILURE if self.below == "failure" else WARNINGS
