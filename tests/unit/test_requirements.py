"""requirements/: the master's runtime, the workers' and the tests' tools kept apart, each
compiled (`make requirements`) from its .in file with every version pinned and hashed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DIR = Path(__file__).resolve().parents[2] / "requirements"
TEST_TOOLS = {"pytest", "pytest-xdist", "playwright", "selenium", "execnet", "iniconfig"}


def pins(name: str) -> dict[str, str]:
    """{normalized name: version} of a compiled file; each pin must carry hashes."""
    text = (DIR / f"{name}.txt").read_text()
    found = {}
    for block in re.split(r"\n(?=[A-Za-z])", text):
        match = re.match(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)", block)
        if match:
            assert "--hash=sha256:" in block, f"{name}.txt: {match.group(1)} has no hash"
            found[normalize(match.group(1))] = match.group(2)
    return found


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def direct(name: str) -> set[str]:
    """The names an .in file asks for (not its -r includes)."""
    names = set()
    for line in (DIR / f"{name}.in").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.add(normalize(re.split(r"[\[=<>~! ]", line)[0]))
    return names


@pytest.mark.parametrize("name", ["master", "worker", "test"])
def test_each_compiled_file_pins_what_its_in_file_asks_for(name):
    compiled = pins(name)
    assert direct(name) <= set(compiled), direct(name) - set(compiled)


def test_the_master_hosts_runtime_carries_no_test_tooling():
    assert not TEST_TOOLS & set(pins("master"))
    assert not TEST_TOOLS & set(pins("worker"))
    assert {"pytest", "pytest-xdist", "playwright"} <= set(pins("test"))


def test_the_tests_run_on_the_master_runtimes_versions_and_the_workers_agree():
    master, worker, test = pins("master"), pins("worker"), pins("test")
    assert {k: test[k] for k in master} == master
    assert {k: master[k] for k in worker if k in master} == {
        k: v for k, v in worker.items() if k in master
    }
    assert worker["buildbot-worker"] == master["buildbot-worker"] == "4.3.0"
