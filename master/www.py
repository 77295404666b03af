"""The web UI, the REST API and the GitHub change hook."""

from buildbot.plugins import util

from master.changes import github_hook_dialect
from master.settings import Settings

WEBHOOK_SECRET = "github-webhook-secret"


def www(settings: Settings) -> dict:
    return {
        "port": f"tcp:{settings.web_port}:interface={settings.web_bind}",
        "plugins": {"waterfall_view": {}, "console_view": {}, "grid_view": {}},
        "change_hook_dialects": github_hook_dialect(
            util.Secret(WEBHOOK_SECRET),
            {project.github: project.branch for project in settings.projects},
        ),
    }
