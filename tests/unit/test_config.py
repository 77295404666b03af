"""master.cfg as `buildbot checkconfig` sees it: the shipped settings, a multi-project example,
and a wrong file that must stop it with file, key and reason."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from master import config

ROOT = Path(__file__).resolve().parents[2]
BUILDBOT = str(Path(sys.executable).parent / "buildbot")


def checkconfig(settings_file: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CONVEYOR_SETTINGS": str(settings_file)}
    return subprocess.run(
        [BUILDBOT, "checkconfig", str(ROOT / "master.cfg")],
        env=env,
        capture_output=True,
        text=True,
        cwd=settings_file.parent,
    )


def copy_settings(tmp_path: Path, source: Path, **replace: str) -> Path:
    text = source.read_text()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    target = tmp_path / "pipeline.toml"
    target.write_text(text)
    # both files keep their state in var/ beside them
    (tmp_path / "var" / "secrets").mkdir(parents=True, mode=0o700)
    return target


def test_shipped_pipeline_passes_checkconfig(tmp_path):
    target = copy_settings(
        tmp_path,
        ROOT / "pipeline.toml",
        **{'clone_url = "var/git/snowbird.git"': f'clone_url = "{tmp_path}/snowbird.git"'},
    )
    proc = checkconfig(target)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Config file is good!" in proc.stdout


def test_multi_project_example_passes_checkconfig_and_has_a_builder_each(tmp_path):
    target = copy_settings(
        tmp_path,
        ROOT / "examples" / "pipeline-multi.toml",
        **{'state_dir = "/srv/conveyor"': 'state_dir = "var"'},
    )
    proc = checkconfig(target)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cfg = config.load(str(target))
    names = [b.name for b in cfg["builders"]]
    # a CI and a package builder per project, on the project's build workers (steps/package.py)
    assert names[:5] == [
        "snowbird-ci",
        "snowbird-package",
        "falcon-ci",
        "falcon-package",
        "publish",
    ]
    # pull requests: a builder per project (master/pullrequests.py), appended after the rest
    assert names[-2:] == ["snowbird-pr", "falcon-pr"]
    publish = cfg["builders"][4]
    assert publish.workernames == ["apt"]
    assert cfg["builders"][2].workernames == ["build-1", "build-2"]
    assert cfg["builders"][3].workernames == ["build-1", "build-2"]
    assert {s.name for s in cfg["schedulers"]} >= {
        "snowbird-push",
        "falcon-push",
        "publish",
        "snowbird-package",
        "falcon-package",
    }


def test_each_target_release_has_a_package_builder_and_its_ci_build_starts_them_all(tmp_path):
    """Two releases: two package builders per project, so their builds run side by side (a
    worker runs one build of a builder at a time), each triggered by the CI build's first step
    and building one release."""
    path = 'path = ["sprintly-development", "sprintly-staging", "sprintly"]'
    target = copy_settings(
        tmp_path,
        ROOT / "examples" / "pipeline-multi.toml",
        **{
            'state_dir = "/srv/conveyor"': 'state_dir = "var"',
            path: f'{path}\ntargets = ["bookworm", "trixie"]',
        },
    )
    proc = checkconfig(target)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cfg = config.load(str(target))
    builders = {b.name: b for b in cfg["builders"]}
    assert [n for n in builders if n.startswith("falcon-")] == [
        "falcon-ci",
        "falcon-package-bookworm",
        "falcon-package-trixie",
        "falcon-tests-trixie",
        "falcon-pr",
    ]
    assert {s.name for s in cfg["schedulers"]} >= {
        "falcon-package-bookworm",
        "falcon-package-trixie",
        "falcon-tests-trixie",
    }
    start = builders["falcon-ci"].factory.steps[0]
    assert start.kwargs["schedulers"] == ["falcon-package-bookworm", "falcon-package-trixie"]
    for release in ("bookworm", "trixie"):
        built = [s.buildStep().name for s in builders[f"falcon-package-{release}"].factory.steps]
        assert f"deb-{release}" in built and f"install-check-{release}" in built
        other = {"bookworm": "trixie", "trixie": "bookworm"}[release]
        assert not any(other in name for name in built), built


def test_wrong_settings_stop_checkconfig_with_file_key_and_reason(tmp_path):
    target = copy_settings(
        tmp_path, ROOT / "pipeline.toml", **{"coverage_threshold = 80": "coverage_threshold = 180"}
    )
    proc = checkconfig(target)
    assert proc.returncode != 0
    assert (
        f"{target}: [projects.snowbird.coverage_threshold] must be between 0 and 100, not 180"
    ) in proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_reconfig_drops_changed_modules(tmp_path, monkeypatch):
    """master.cfg removes master.* and steps.* from sys.modules so a reconfig re-imports them."""
    import steps.debian  # noqa: F401

    target = copy_settings(tmp_path, ROOT / "pipeline.toml")
    monkeypatch.setenv("CONVEYOR_SETTINGS", str(target))
    before = dict(sys.modules)
    marker = object()
    sys.modules["steps.debian"].marker = marker
    namespace = {"__file__": str(ROOT / "master.cfg")}
    try:
        exec(
            compile((ROOT / "master.cfg").read_text(), str(ROOT / "master.cfg"), "exec"), namespace
        )
        assert "BuildmasterConfig" in namespace
        assert getattr(sys.modules["steps.debian"], "marker", None) is not marker
    finally:
        # other tests hold the modules imported before: give them back
        sys.modules.update(before)


def test_an_sqlite_database_keeps_its_connection_and_a_server_its_own_pool(tmp_path):
    # Buildbot alone gives an SQLite file a new connection for every database operation; with
    # the config's engine_kwargs, its own create_engine keeps one (master/config.py: database)
    import sqlalchemy as sa

    from buildbot.db import enginestrategy

    target = copy_settings(
        tmp_path,
        ROOT / "pipeline.toml",
        **{'clone_url = "var/git/snowbird.git"': f'clone_url = "{tmp_path}/snowbird.git"'},
    )
    db = config.load(str(target))["db"]

    def connections(**engine_kwargs) -> int:
        engine = enginestrategy.create_engine(db["db_url"], basedir=str(tmp_path), **engine_kwargs)
        opened = []
        sa.event.listen(engine.pool, "connect", lambda *_: opened.append(1))
        for _ in range(5):
            with engine.connect() as conn:
                conn.exec_driver_sql("select 1")
        engine.dispose()
        return len(opened)

    assert db["db_url"].startswith("sqlite:")
    assert connections() == 5  # Buildbot's NullPool
    assert connections(**db["engine_kwargs"]) == 0  # the one opened at set-up, kept
    (tmp_path / "pg").mkdir()
    server = copy_settings(
        tmp_path / "pg",
        ROOT / "pipeline.toml",
        **{
            'clone_url = "var/git/snowbird.git"': f'clone_url = "{tmp_path}/snowbird.git"',
            'db_url = "sqlite:///state.sqlite"': 'db_url = "postgresql://bb@db.example:5432/bb"',
        },
    )
    assert config.load(str(server))["db"] == {"db_url": "postgresql://bb@db.example:5432/bb"}


def test_no_step_of_any_builder_logs_the_workers_environment(tmp_path):
    # Buildbot's commands write the worker's whole environment into the step's log unless
    # told not to; whoever may read a build's logs would read it (steps/__init__.py)
    target = copy_settings(
        tmp_path,
        ROOT / "examples" / "pipeline-multi.toml",
        **{'state_dir = "/srv/conveyor"': 'state_dir = "var"'},
    )
    cfg = config.load(str(target))
    checked = 0
    for builder in cfg["builders"]:
        for factory in builder.factory.steps:
            step = factory.buildStep()
            if hasattr(step, "logEnviron"):
                assert step.logEnviron is False, f"{builder.name}: {step.name} logs it"
                checked += 1
    assert checked > 20  # the shell steps of CI, package, publish, promote, rollback…
