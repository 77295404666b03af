"""Settings -> BuildmasterConfig. The one function master.cfg calls."""

from __future__ import annotations

import os

from sqlalchemy.pool import SingletonThreadPool

from buildbot.config.errors import ConfigErrors
from buildbot.plugins import secrets
from buildbot.plugins import util

from conveyor import settings as settings_module
from master import authz
from master import pullrequests
from master import repository
from master import retention
from master.builders import builders
from master.reporters import reporters
from master.schedulers import schedulers_for
from master.site import SiteService
from master.workers import workers
from master.www import www


def settings_path(root: str) -> str:
    """CONVEYOR_SETTINGS names the settings file; the default is pipeline.toml beside master.cfg."""
    return os.environ.get("CONVEYOR_SETTINGS") or os.path.join(root, "pipeline.toml")


def load(path: str) -> dict:
    try:
        settings = settings_module.load(path)
    except settings_module.SettingsError as exc:
        raise ConfigErrors([str(exc)]) from None
    return build(settings)


def database_url(settings: settings_module.Settings) -> str:
    """db_url with the password of its secret file, read here, when the config loads. Buildbot
    4.3 renders a secret inside c['db'] in the master and upgrade-master, but not in copy-db
    or cleanupdb (their secrets manager is never set up). The master logs the URL without
    its password; nothing of ours logs it."""
    password = (
        settings.read_secret(settings.db_password_secret) if settings.db_password_secret else None
    )
    if not password:
        return settings.db_url  # e.g. SQLite, or a server that trusts this host (pg_hba)
    from sqlalchemy.engine import make_url

    return make_url(settings.db_url).set(password=password).render_as_string(hide_password=False)


def database(settings: settings_module.Settings) -> dict:
    """c['db']: the URL; for SQLite, one connection kept open.

    Buildbot 4.3 gives an SQLite file SQLAlchemy's NullPool: each database operation (a build
    writes hundreds: steps, logs, properties, state strings) opened the file anew, and SQLite
    read the schema again for its first statement. That was half of Conveyor's own time from
    push to staging (bench/versus_script.py: 2.0 s → 1.1 s). Buildbot runs SQLite's operations
    in a single thread (its pool's size is 1 for SQLite); SingletonThreadPool keeps a
    connection per thread, used by that thread alone. PostgreSQL keeps SQLAlchemy's default
    pool, which already reuses its connections."""
    url = database_url(settings)
    if not url.startswith("sqlite"):
        return {"db_url": url}
    return {"db_url": url, "engine_kwargs": {"poolclass": SingletonThreadPool}}


def build(settings: settings_module.Settings) -> dict:
    settings = repository.with_fingerprint(settings)  # a repository apart: its key, served
    return {
        "title": settings.title,
        "titleURL": settings.web_url,
        "buildbotURL": settings.web_url,
        "buildbotNetUsageData": None,
        "db": database(settings),
        "protocols": {
            "pb": {"port": f"tcp:{settings.worker_port}:interface={settings.worker_bind}"}
        },
        "secretsProviders": [secrets.SecretInAFile(dirname=str(settings.secrets_dir))],
        "workers": workers(settings),
        "schedulers": schedulers_for(settings)
        + pullrequests.schedulers(settings)
        + retention.schedulers(settings),
        "builders": builders(settings)
        + retention.builders(settings)
        + pullrequests.builders(settings),
        "configurators": retention.configurators(settings),
        "projects": [
            util.Project(name=p.name, description=f"{p.github} ({p.branch}) → {' → '.join(p.path)}")
            for p in settings.projects
        ],
        "services": reporters(settings)
        + [
            SiteService(
                str(settings.artifacts_dir),
                authz.role_lists(settings)["developers"],
                public=settings.auth.public,
                public_reports=settings.auth.public_reports,
                hosts_settings=settings,
            )
        ],
        "www": www(settings),
        "change_source": [],
        "collapseRequests": False,
        "properties": {"conveyor_repository": settings.repository.url},
        "logCompressionMethod": "gz",
        "multiMaster": False,
    }
