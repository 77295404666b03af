"""The version and entry points agree across pyproject.toml, the package and debian/."""

import re
import tomllib
from pathlib import Path

import snowbird

ROOT = Path(__file__).resolve().parent.parent


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_versions_agree():
    top = (ROOT / "debian" / "changelog").read_text().splitlines()[0]
    match = re.match(r"^snowbird \(([^)]+)\) ", top)
    assert match, top
    upstream = re.split(r"[+~-]", match.group(1))[0]  # 1.4.0+ci57.g3f2a9c1 -> 1.4.0
    assert pyproject()["project"]["version"] == snowbird.__version__ == upstream


def test_entry_points_resolve():
    import importlib

    for name, target in pyproject()["project"]["scripts"].items():
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func)), name


def test_static_files_are_package_data():
    patterns = pyproject()["tool"]["setuptools"]["package-data"]["snowbird"]
    static = ROOT / "snowbird" / "static"
    shipped = {p.name for pattern in patterns for p in (ROOT / "snowbird").glob(pattern)}
    assert shipped == {p.name for p in static.iterdir() if p.is_file()}


def test_service_runs_the_venv_entry_point():
    unit = (ROOT / "debian" / "snowbird.service").read_text()
    assert "ExecStart=/opt/venvs/snowbird/bin/snowbird" in unit
    assert "User=snowbird" in unit
