"""Settings -> BuildmasterConfig. The one function master.cfg calls."""

from __future__ import annotations

import os

from buildbot.config.errors import ConfigErrors
from buildbot.plugins import secrets
from buildbot.plugins import util

from conveyor import settings as settings_module
from master import pullrequests
from master.site import SiteService
from master.builders import builders
from master.reporters import reporters
from master.schedulers import schedulers_for
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


def build(settings: settings_module.Settings) -> dict:
    return {
        "title": settings.title,
        "titleURL": settings.web_url,
        "buildbotURL": settings.web_url,
        "buildbotNetUsageData": None,
        "db": {"db_url": settings.db_url},
        "protocols": {"pb": {"port": f"tcp:{settings.worker_port}"
                                     f":interface={settings.worker_bind}"}},
        "secretsProviders": [secrets.SecretInAFile(dirname=str(settings.secrets_dir))],
        "workers": workers(settings),
        "schedulers": schedulers_for(settings) + pullrequests.schedulers(settings),
        "builders": builders(settings) + pullrequests.builders(settings),
        "projects": [util.Project(name=p.name, description=f"{p.github} ({p.branch}) → "
                                  f"{' → '.join(p.path)}") for p in settings.projects],
        "services": reporters(settings) + [
            SiteService(str(settings.artifacts_dir), settings.auth.public_reports)],
        "www": www(settings),
        "change_source": [],
        "collapseRequests": False,
        "properties": {"conveyor_repository": settings.repository.url},
        "logCompressionMethod": "gz",
        "multiMaster": False,
    }
