"""The web UI, the REST API, log-in and who may do what, and the GitHub change hook.

Anyone may look. Logged-in users (users file: see conveyor/users.py) may build and stop CI builds;
only the releaser roles may promote, roll back, or touch the repository's builders.
"""

from buildbot.plugins import util
from buildbot.www.authz.endpointmatchers import EndpointMatcherBase
from buildbot.www.authz.roles import RolesFromBase
from buildbot.www.authz.endpointmatchers import Match
from twisted.internet import defer

from conveyor import users as users_module
from master.changes import github_hook_dialect
from master.schedulers import PROMOTE
from master.schedulers import PUBLISH
from conveyor.release import ReleaseError
from master.schedulers import ROLLBACK
from master.schedulers import promotion_target
from conveyor.settings import WEBHOOK_SECRET
from conveyor.settings import Settings

REPOSITORY_BUILDERS = (PROMOTE, ROLLBACK, PUBLISH)


class PromoteIntoProductionMatcher(EndpointMatcherBase):
    """Matches a promote request whose target is the last distribution of its path, so that
    it can need the narrower [auth] production roles (any auth: users file or other)."""

    def __init__(self, settings: Settings, **kwargs):
        self.conveyor = settings
        super().__init__(**kwargs)

    def match_ForceSchedulerEndpoint_force(self, epobject, epdict, options):
        if epdict.get("schedulername") != PROMOTE:
            return defer.succeed(None)
        try:
            package, _, target = promotion_target(self.conveyor, options)
        except ReleaseError:
            return defer.succeed(None)  # the scheduler refuses it with the reason
        project = self.conveyor.project_of_package(package)
        if target != project.path[-1]:
            return defer.succeed(None)
        return defer.succeed(Match(self.master))


def _any_of(matcher, roles, **kwargs) -> list:
    """One rule per role; a user passes with any of them, the last rule denies the rest."""
    return [matcher(role=role, defaultDeny=(i == len(roles) - 1), **kwargs)
            for i, role in enumerate(roles)]


class RolesFromGitHub(RolesFromBase):
    """Roles from the GitHub organisations and teams a user belongs to ([auth.github_roles]);
    GitHubAuth lists them in the user's groups as "org" and "org/team-slug"."""

    def __init__(self, roles: dict[str, tuple[str, ...]]):
        super().__init__()
        self.roles = roles

    def getRolesFromUser(self, userDetails: dict) -> list[str]:
        groups = {g.lower() for g in userDetails.get("groups") or []}
        return sorted(role for role, names in self.roles.items()
                      if groups & {n.lower() for n in names})


def github_auth(settings: Settings):
    """GitHub (or GitHub Enterprise, from [github] api_url) OAuth log-in."""
    api = settings.github.api_url
    server = None if api == "https://api.github.com" else api.removesuffix("/api/v3")
    teams = any("/" in name for names in settings.auth.github_roles.values() for name in names)
    return util.GitHubAuth(settings.auth.github_client_id,
                           util.Secret(settings.auth.github_client_secret),
                           serverURL=server, apiVersion=4 if teams else 3,
                           getTeamsMembership=teams)


def authz(settings: Settings, users: dict) -> util.Authz:
    releasers = settings.auth.releasers
    rules = _any_of(PromoteIntoProductionMatcher, settings.auth.production, settings=settings)
    for builder in REPOSITORY_BUILDERS:
        for matcher in (util.ForceBuildEndpointMatcher, util.RebuildBuildEndpointMatcher,
                        util.StopBuildEndpointMatcher):
            rules += _any_of(matcher, releasers, builder=builder)
    rules.append(util.AnyControlEndpointMatcher(role="*"))
    by_role: dict[str, list[str]] = {}
    for user in users.values():
        for role in user.roles:
            by_role.setdefault(role, []).append(user.name)
    return util.Authz(
        allowRules=rules,
        roleMatchers=[util.RolesFromUsername(roles=[role], usernames=names)
                      for role, names in sorted(by_role.items())]
        + [RolesFromGitHub(settings.auth.github_roles)],
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
    if settings.auth.github_client_id:
        config["auth"] = github_auth(settings)
    elif users:
        config["auth"] = util.UserPasswordAuth({u.name: u.password for u in users.values()})
    return config
