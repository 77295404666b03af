"""The master on PostgreSQL, end to end, with one installation and one real PostgreSQL server
(Debian's, started by tests/integration/postgres.py as the `postgres` user on a free port):

1. the embedded default (SQLite) builds a push; `python -m ops.copydb postgresql://…` moves its
   database to the server (Buildbot's copy-db), the password only in a secret file;
2. on PostgreSQL (db_url in pipeline.toml, no password there), a push reaches staging and is
   promoted;
3. the master's database is lost (dropped and made anew, empty; the repository is kept): after a
   restart build numbers start at 1 again, yet the new push's version is higher than every
   version already published, and it is promoted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

import pytest

from conveyor import debformats
from conveyor import settings as settings_module
from conveyor.results import result_name
from ops import api
from ops import demo
from ops import github
from ops import services
from ops import setup
from tests.integration.helpers import ROOT
from tests.integration.helpers import installation_base
from tests.integration.helpers import running_installation
from tests.integration.postgres import postgres_server

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="runs PostgreSQL as the postgres user: root"),
]

PACKAGE = "snowbird"
STAGING, PRODUCTION = "snowbird-staging", "snowbird"


@pytest.fixture(scope="module")
def pg():
    with installation_base("pgserver") as base, postgres_server(base) as server:
        yield server


@pytest.fixture(scope="module")
def state(pg):
    """The installation (SQLite first) and what the tests learn on the way."""
    with running_installation("postgres") as settings:
        project = settings.projects[0]
        yield {
            "settings": settings,
            "project": project,
            "versions": [],
            "checkout": demo.ensure_demo_repo(settings, project),
        }


def push(state: dict) -> dict:
    """A new commit, pushed and built; its build (SUCCESS asserted)."""
    settings, project, checkout = state["settings"], state["project"], state["checkout"]
    before = github.git(checkout, "rev-parse", "HEAD")
    if state["versions"]:
        github.git(checkout, "commit", "--quiet", "--allow-empty", "-m", "Another push")
        github.push_branch(checkout, project)
    build = github.push_and_wait(
        settings, project, checkout, before=before if state["versions"] else github.ZERO
    )
    assert result_name(build["results"]) == "SUCCESS", api.describe(build)
    state["versions"].append(build["properties"]["package_version"][0])
    return build


def listed(settings, dist: str) -> set[str]:
    url = f"{settings.repository.url}dists/{dist}/main/binary-amd64/Packages"
    with urllib.request.urlopen(url, timeout=30) as response:
        return debformats.parse_packages_index(response.read().decode()).get(PACKAGE, set())


def promote(settings, version: str) -> dict:
    master = api.Master(settings.web_url)
    users = dict(
        line.split(":")[:2]
        for line in settings.read_secret(settings.auth.users_secret).splitlines()
    )
    master.login("releaser", users["releaser"])
    build = master.follow(
        master.force(
            "promote",
            "promote",
            package=PACKAGE,
            version=version,
            from_dist=STAGING,
            to_dist=PRODUCTION,
            reason="test",
        )
    )
    assert result_name(build["results"]) == "SUCCESS", api.describe(build)
    return build


def use_postgresql(settings, pg) -> settings_module.Settings:
    """db_url in pipeline.toml (no password: that is var/secrets/db-password)."""
    text = settings.file.read_text().replace(
        "[conveyor]\n", f'[conveyor]\ndb_url = "{pg.url}"\n', 1
    )
    settings.file.write_text(text)
    return settings_module.load(settings.file)


def test_copy_db_moves_an_embedded_installation_to_postgresql(state, pg):
    settings = state["settings"]
    first = push(state)
    services.stop(settings)
    setup.write_secret(settings, "db-password", pg.password)

    # the documented one line (docs/operating.md, "PostgreSQL"), as a user runs it
    proc = subprocess.run(
        [sys.executable, "-m", "ops.copydb", pg.url, "--settings", str(settings.file)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert pg.password not in proc.stdout + proc.stderr
    assert f'db_url = "{pg.url}"' in proc.stdout + proc.stderr  # what to write next
    assert int(pg.psql("SELECT count(*) FROM builds")) >= 2  # the CI build and its publish

    settings = state["settings"] = use_postgresql(settings, pg)
    assert pg.password not in settings.file.read_text()
    services.start(settings)
    # the build made on SQLite is there, on PostgreSQL
    assert api.last_build_number(settings, state["project"].ci_builder) == first["number"]
    log = (settings.master_dir / "twistd.log").read_text(errors="replace")
    assert "postgresql" in log and pg.password not in log


def test_push_reaches_staging_and_is_promoted_on_postgresql(state, pg):
    settings = state["settings"]
    build = push(state)
    assert build["number"] == 2  # numbering went on from the copied database
    version = state["versions"][-1]
    assert version in listed(settings, STAGING)
    promote(settings, version)
    assert version in listed(settings, PRODUCTION)
    # the builds are PostgreSQL's rows
    assert (
        int(
            pg.psql(
                "SELECT max(number) FROM builds b JOIN builders r ON "
                f"b.builderid = r.id WHERE r.name = '{state['project'].ci_builder}'"
            )
        )
        == 2
    )


def test_a_lost_database_starts_again_with_versions_above_every_published_one(state, pg):
    settings = state["settings"]
    published = listed(settings, STAGING) | listed(settings, PRODUCTION)
    assert set(state["versions"]) <= published

    services.stop(settings)
    pg.psql("DROP DATABASE conveyor", dbname="postgres")  # lost: the repository is kept
    pg.psql(f"CREATE DATABASE conveyor OWNER {pg.user}", dbname="postgres")
    services.start(settings)  # upgrade-master makes the empty database's tables
    assert api.last_build_number(settings, state["project"].ci_builder) == 0

    build = push(state)
    assert build["number"] == 1  # numbering started again…
    version = state["versions"][-1]
    for old in published:  # …yet the version is above every one already published
        assert debformats.compare_versions(version, old) > 0, (version, old)
        assert subprocess.run(["dpkg", "--compare-versions", version, "gt", old]).returncode == 0
    assert version in listed(settings, STAGING)
    promote(settings, version)
    assert version in listed(settings, PRODUCTION)
