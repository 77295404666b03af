"""The web UI, the REST API, log-in and who may do what, and the GitHub change hook.

Anyone may look. Logged-in users (users file: see master/users.py) may build and stop CI builds;
only the releaser roles may promote, roll back, or touch the repository's builders.
"""

from buildbot.plugins import util

from master import users as users_module
from master.changes import github_hook_dialect
from master.schedulers import PROMOTE
from master.schedulers import PUBLISH
from master.schedulers import ROLLBACK
from master.settings import Settings

WEBHOOK_SECRET = "github-webhook-secret"
REPOSITORY_BUILDERS = (PROMOTE, ROLLBACK, PUBLISH)


def authz(settings: Settings, users: dict) -> util.Authz:
    releasers = settings.auth.releasers
    rules = []
    for builder in REPOSITORY_BUILDERS:
        for matcher in (util.ForceBuildEndpointMatcher, util.RebuildBuildEndpointMatcher,
                        util.StopBuildEndpointMatcher):
            # a user passes with any one of the releaser roles; the last rule denies the rest
            rules += [matcher(builder=builder, role=role, defaultDeny=(i == len(releasers) - 1))
                      for i, role in enumerate(releasers)]
    rules.append(util.AnyControlEndpointMatcher(role="*"))
    by_role: dict[str, list[str]] = {}
    for user in users.values():
        for role in user.roles:
            by_role.setdefault(role, []).append(user.name)
    return util.Authz(
        allowRules=rules,
        roleMatchers=[util.RolesFromUsername(roles=[role], usernames=names)
                      for role, names in sorted(by_role.items())],
    )


def www(settings: Settings) -> dict:
    users = users_module.load(settings)
    config = {
        "port": f"tcp:{settings.web_port}:interface={settings.web_bind}",
        "plugins": {"waterfall_view": {}, "console_view": {}, "grid_view": {}},
        "change_hook_dialects": github_hook_dialect(
            util.Secret(WEBHOOK_SECRET),
            {project.github: project.branch for project in settings.projects},
            # pull requests: the hook asks the API for the head commit (skip ci, files, author)
            api_url=settings.github.api_url,
            token=(util.Secret(settings.github.token_secret)
                   if settings.read_secret(settings.github.token_secret) else None),
        ),
        "authz": authz(settings, users),
    }
    if users:
        config["auth"] = util.UserPasswordAuth({u.name: u.password for u in users.values()})
    return config
