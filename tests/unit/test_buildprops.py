"""conveyor/buildprops.py is the contract of the properties that cross steps, builds, reporters
and the board: code uses its constants (never the string), and its table names exactly the
files that set or read each."""

from __future__ import annotations

import re
from pathlib import Path

from conveyor import buildprops

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("steps", "master", "conveyor", "ops")
NAMES = {
    name: value
    for name, value in vars(buildprops).items()
    if name.isupper() and isinstance(value, str)
}
# the same words used for something else: the board's JSON fields, a pipeline.toml key
NOT_PROPERTIES = {
    ("conveyor/board.py", "tests_passed"),
    ("conveyor/board.py", "tests_failed"),
    ("conveyor/settings.py", "coverage_threshold"),
}


def sources() -> dict[str, str]:
    return {
        str(p.relative_to(ROOT)): p.read_text()
        for package in PACKAGES
        for p in sorted((ROOT / package).rglob("*.py"))
        if p.name != "buildprops.py"
    }


def table() -> dict[str, set[str]]:
    """{constant: the files the docstring's table names for it}."""
    text = buildprops.__doc__.split("Each: set by → read by.", 1)[1]
    listed: dict[str, set[str]] = {}
    for entry in re.split(r"\n- ", "\n" + text.strip()):
        if not entry.strip():
            continue
        names, _, rest = entry.partition(":")
        files: set[str] = set()
        folder = ""
        for path in re.findall(r"[a-z_/]+\.py", rest):
            if "/" in path:
                folder = path.rsplit("/", 1)[0]
                files.add(path)
            else:  # "master/reporters/mail.py and admins.py"
                files.add(f"{folder}/{path}")
        for name in names.split(","):
            listed[name.strip()] = files
    return listed


def test_no_module_spells_a_property_out():
    for path, text in sources().items():
        for value in NAMES.values():
            if (path, value) in NOT_PROPERTIES:
                continue
            assert not re.search(rf"([\"']){re.escape(value)}\1", text), (
                f"{path} spells {value!r}: use conveyor.buildprops"
            )


def test_the_table_names_every_property_and_exactly_its_files():
    listed = table()
    assert set(listed) == set(NAMES)
    for name in NAMES:
        using = {
            path for path, text in sources().items() if re.search(rf"\bbuildprops\.{name}\b", text)
        }
        assert using == listed[name], (name, sorted(using ^ listed[name]))
