"""The web UI, the REST API, log-in and who may do what, and the GitHub change hook.

Who may look (a role, unless [auth] public) and who may do what (the roles of the users file,
conveyor/users.py, or of GitHub) is the matrix in master/authz.py.
"""

from buildbot.plugins import util
from buildbot.www.authz.roles import RolesFromBase

from conveyor import users as users_module
from conveyor.settings import WEBHOOK_SECRET
from conveyor.settings import Settings
from master import authz
from master import board
from master.changes import github_hook_dialect


class RolesFromGitHub(RolesFromBase):
    """Roles from the GitHub organisations and teams a user belongs to ([auth.github_roles]);
    GitHubAuth lists them in the user's groups as "org" and "org/team-slug"."""

    def __init__(self, roles: dict[str, tuple[str, ...]]):
        super().__init__()
        self.roles = roles

    def getRolesFromUser(self, userDetails: dict) -> list[str]:
        groups = {g.lower() for g in userDetails.get("groups") or []}
        return sorted(
            role for role, names in self.roles.items() if groups & {n.lower() for n in names}
        )


def github_auth(settings: Settings):
    """GitHub (or GitHub Enterprise, from [github] api_url) OAuth log-in."""
    api = settings.github.api_url
    server = None if api == "https://api.github.com" else api.removesuffix("/api/v3")
    teams = any("/" in name for names in settings.auth.github_roles.values() for name in names)
    return util.GitHubAuth(
        settings.auth.github_client_id,
        util.Secret(settings.auth.github_client_secret),
        serverURL=server,
        apiVersion=4 if teams else 3,
        getTeamsMembership=teams,
    )


def www(settings: Settings) -> dict:
    users = users_module.load(settings)
    config = {
        "port": f"tcp:{settings.web_port}:interface={settings.web_bind}",
        "plugins": {
            "waterfall_view": {},
            "console_view": {},
            "grid_view": {},
            "wsgi_dashboards": board.dashboards(settings),
        },  # the release board
        "change_hook_dialects": github_hook_dialect(
            util.Secret(WEBHOOK_SECRET),
            {project.github: project.branch for project in settings.projects},
            schedulers={project.github: project.push_scheduler for project in settings.projects},
            # pull requests: the hook asks the API for the head commit (skip ci, files, author)
            api_url=settings.github.api_url,
            token=(
                util.Secret(settings.github.token_secret)
                if settings.read_secret(settings.github.token_secret)
                else None
            ),
        ),
        "authz": authz.authz(settings, users, RolesFromGitHub(settings.auth.github_roles)),
    }
    if settings.auth.github_client_id:
        config["auth"] = github_auth(settings)
    elif users:
        config["auth"] = util.UserPasswordAuth({u.name: u.password for u in users.values()})
    return config
