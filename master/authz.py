"""Who may do what in the web UI and the REST API: an explicit matrix, default deny.

Roles come from the users file (conveyor/users.py) or from GitHub ([auth.github_roles]); the
role lists are [auth] developers, releasers, production and admins.

Reading (every GET of the REST API, the WebSocket, /sse, the release board, the artifacts) needs
one of those roles: anonymous users, and users logged in (by GitHub) without a role, see the
log-in page and nothing else. `[auth] public = true` opens reading to all, for open-source
projects; control actions stay as below.

    control action                               anonymous developers releasers production admins
    force/rebuild/stop CI and PR builds (-ci,
      -pr, the <project>-force button)               -         yes        yes        yes      yes
    cancel build requests of CI and PR builders      -         yes        yes        yes      yes
    force/rebuild/stop promote, rollback, publish    -          -         yes        yes      yes
    cancel build requests of those builders          -          -         yes        yes      yes
    promote into the last distribution of a path
      (force, and rebuild of such a promotion)       -          -          -         yes      yes
      (one that needs [approvals]: a request)        -          -         yes        yes      yes
    roll back the last distribution of a path
      (force, and rebuild of such a rollback)        -          -          -         yes      yes
    freeze or unfreeze a distribution (`freeze`)     -          -          -         yes      yes
    approve a promotion request (`approve`; never
      one's own: the build refuses it)               -          -          -         yes      yes
    workers: stop, kill, pause, unpause              -          -          -          -       yes
    schedulers: enable (and disable)                 -          -          -          -       yes
    build requests: set_priority                     -          -          -          -        -
      (Buildbot 4.3 fails on it with a 500: refused to all, with a 403 that says so)
    any other control action, or a force scheduler   -          -          -          -        -
      that does not exist (Buildbot: 501, 500)

Each column has the rights of the columns to its left (a production role can do what releasers
can, an admin everything). Rules are tried in order; the first whose matcher fits decides, and
the last rule refuses every control action to everyone, with a 403 that says so, so nothing
unlisted is allowed. A user without a role (anonymous) passes no rule.
"""

from twisted.internet import defer

from buildbot.plugins import util
from buildbot.www.authz.endpointmatchers import EndpointMatcherBase
from buildbot.www.authz.endpointmatchers import Match

from conveyor.release import ReleaseError
from conveyor.settings import Settings
from master.forms import form_value
from master.schedulers import APPROVE
from master.schedulers import FREEZE
from master.schedulers import PROMOTE
from master.schedulers import PUBLISH
from master.schedulers import ROLLBACK
from master.schedulers import promotion_target

REPOSITORY_BUILDERS = (PROMOTE, ROLLBACK, PUBLISH)
# a role nobody has: what the 403 of an action Conveyor does not support says
UNSUPPORTED = "none (not supported: Buildbot 4.3 cannot change a request's priority)"
NO_SUCH_ACTION = "none (no such action, or no such force scheduler)"


class PromoteIntoProductionMatcher(EndpointMatcherBase):
    """Matches a change into the last distribution of a path, so that it needs the narrower
    [auth] production roles: a promote request whose target is such a distribution, a rollback
    of one, and the rebuild of either. A rebuild copies the original buildset's properties (an
    empty to_dist is resolved again at rebuild time), so its target is computed from those, the
    same way the rebuilt build will. When in doubt it matches (fail closed)."""

    def __init__(self, settings: Settings, **kwargs):
        self.conveyor = settings
        super().__init__(**kwargs)

    def _into_production(self, scheduler: str, options: dict) -> bool:
        if scheduler == ROLLBACK:
            # strict choices: an empty or unknown distribution is refused by the scheduler,
            # except that a missing one is the last distribution: treat both as production,
            # and a malformed one too (the scheduler refuses it; fail closed meanwhile)
            try:
                dist = form_value(options, "distribution")
            except ReleaseError:
                return True
            return not dist or dist in {p.path[-1] for p in self.conveyor.projects}
        try:
            package, _, target = promotion_target(self.conveyor, options)
        except ReleaseError:
            return False  # malformed or unknown: the scheduler refuses it with the reason
        # a distribution that needs approvals: asking changes nothing; the approvals, by
        # production roles (the `approve` builder below), promote
        if self.conveyor.approvals.of(target):
            return False
        return target == self.conveyor.project_of_package(package).path[-1]

    def match_ForceSchedulerEndpoint_force(self, epobject, epdict, options):
        scheduler = epdict.get("schedulername")
        if scheduler not in (PROMOTE, ROLLBACK) or not self._into_production(scheduler, options):
            return defer.succeed(None)
        return defer.succeed(Match(self.master))

    @defer.inlineCallbacks
    def match_BuildEndpoint_rebuild(self, epobject, epdict, options):
        build = yield epobject.get({}, epdict)
        if build is None:
            return None
        builder = yield self.master.data.get(("builders", build["builderid"]))
        if builder is None or builder["name"] not in (PROMOTE, ROLLBACK):
            return None
        br = yield self.master.data.get(("buildrequests", build["buildrequestid"]))
        if br is None:
            return Match(self.master, build=build)  # fail closed
        props = yield self.master.data.get(("buildsets", br["buildsetid"], "properties"))
        opts = {name: value[0] for name, value in (props or {}).items()}
        if builder["name"] == PROMOTE:
            try:
                promotion_target(self.conveyor, opts)
            except ReleaseError:
                return Match(self.master, build=build)  # fail closed: unknown package
        if not self._into_production(builder["name"], opts):
            return None
        return Match(self.master, build=build)


class ReadEndpointMatcher(EndpointMatcherBase):
    """Any GET: reading any endpoint (the WebSocket and /sse ask for ("masters",) "get")."""

    def match(self, ep, action="get", options=None):
        if str(action).lower() == "get":
            return defer.succeed(Match(self.master))
        return defer.succeed(None)


class BuildRequestEndpointMatcher(EndpointMatcherBase):
    """cancel of /buildrequests/<id> (the built-in StopBuildEndpointMatcher waits for a `stop`
    that the UI never sends), on the builder(s) `builder` (fnmatch; None: every builder)."""

    def __init__(self, builder: str | None = None, **kwargs):
        self.builder = builder
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def match_BuildRequestEndpoint_cancel(self, epobject, epdict, options):
        br = yield epobject.get({}, epdict)
        if br is None:
            return None
        if self.builder is not None:
            builder = yield self.master.data.get(("builders", br["builderid"]))
            if builder is None or not self.authz.match(builder["name"], self.builder):
                return None
        return Match(self.master, buildrequest=br)


class SetPriorityEndpointMatcher(EndpointMatcherBase):
    """set_priority of any build request."""

    def match_BuildRequestEndpoint_set_priority(self, epobject, epdict, options):
        return defer.succeed(Match(self.master))


class WorkerControlEndpointMatcher(EndpointMatcherBase):
    """stop (graceful shutdown), kill, pause and unpause of a worker, by any of its paths."""

    def _any(self, epobject, epdict, options):
        return defer.succeed(Match(self.master))

    match_WorkerEndpoint_stop = match_WorkerEndpoint_kill = _any
    match_WorkerEndpoint_pause = match_WorkerEndpoint_unpause = _any


class SchedulerEnableEndpointMatcher(EndpointMatcherBase):
    """enable of a scheduler, with {"enabled": true} or false (there is no `disable`)."""

    def match_SchedulerEndpoint_enable(self, epobject, epdict, options):
        return defer.succeed(Match(self.master))


def _any_of(matcher, roles, **kwargs) -> list:
    """One rule per role; a user passes with any of them, the last rule denies the rest
    (its role is the one the 403 names)."""
    return [
        matcher(role=role, defaultDeny=(i == len(roles) - 1), **kwargs)
        for i, role in enumerate(roles)
    ]


def _roles(*lists) -> tuple[str, ...]:
    """The roles of several lists, in order, each once."""
    return tuple(dict.fromkeys(role for roles in lists for role in roles))


def role_lists(settings: Settings) -> dict[str, tuple[str, ...]]:
    """Who passes each level: every level includes the ones above it. The level's own roles
    come last, so that a refusal names them."""
    auth = settings.auth
    admins = _roles(auth.admins)
    production = _roles(admins, auth.production)
    releasers = _roles(production, auth.releasers)
    return {
        "admins": admins,
        "production": production,
        "releasers": releasers,
        "developers": _roles(releasers, auth.developers),
    }


def readers(settings: Settings) -> tuple[str, ...] | None:
    """The roles that may read, or None: everybody ([auth] public)."""
    return None if settings.auth.public else role_lists(settings)["developers"]


def rules(settings: Settings) -> list:
    """The allow rules, in order; the last one denies every control action but to admins.
    Unless [auth] public, the first ones let only users with a role read."""
    roles = role_lists(settings)
    reading = readers(settings)
    result = [] if reading is None else _any_of(ReadEndpointMatcher, reading)
    result += _any_of(PromoteIntoProductionMatcher, roles["production"], settings=settings)
    build_matchers = (
        util.ForceBuildEndpointMatcher,
        util.RebuildBuildEndpointMatcher,
        util.StopBuildEndpointMatcher,
        BuildRequestEndpointMatcher,
    )
    for builder in REPOSITORY_BUILDERS:
        for matcher in build_matchers:
            result += _any_of(matcher, roles["releasers"], builder=builder)
    for matcher in build_matchers:  # freezing and unfreezing a distribution
        result += _any_of(matcher, roles["production"], builder=FREEZE)
    for matcher in (  # approving a promotion request (never rebuilt: steps/approvals.py)
        util.ForceBuildEndpointMatcher,
        util.StopBuildEndpointMatcher,
        BuildRequestEndpointMatcher,
    ):
        result += _any_of(matcher, roles["production"], builder=APPROVE)
    for project in settings.projects:
        for builder in (project.ci_builder, project.pr_builder):
            for matcher in build_matchers:
                result += _any_of(matcher, roles["developers"], builder=builder)
        # a package or tests build is part of a CI build: stopped with it, never forced or
        # rebuilt alone
        for _, builder in (*project.package_builders, *project.tests_builders):
            result += _any_of(util.StopBuildEndpointMatcher, roles["developers"], builder=builder)
    # Buildbot 4.3's set_priority fails inside (SQLAlchemy 2): a clear 403 for all, not a 500
    # (compat: set_priority_fails)
    result.append(SetPriorityEndpointMatcher(role=UNSUPPORTED, defaultDeny=True))
    # admins: the builds and requests of every builder (the maintenance buttons among them),
    # "*" rather than no filter: a force scheduler that does not exist then matches nothing
    for matcher in build_matchers:
        result += _any_of(matcher, roles["admins"], builder="*")
    for matcher in (WorkerControlEndpointMatcher, SchedulerEnableEndpointMatcher):
        result += _any_of(matcher, roles["admins"])
    # anything else, for everyone: a 403 that says so (Buildbot would answer an action it does
    # not have with a 501, and a force scheduler it does not have with a 500)
    result.append(util.AnyControlEndpointMatcher(role=NO_SUCH_ACTION, defaultDeny=True))
    return result


def authz(settings: Settings, users: dict, github_roles=None) -> util.Authz:
    """The matrix, with roles from the users file and (github_roles: a role matcher) GitHub."""
    by_role: dict[str, list[str]] = {}
    for user in users.values():
        for role in user.roles:
            by_role.setdefault(role, []).append(user.name)
    return util.Authz(
        allowRules=rules(settings),
        roleMatchers=[
            util.RolesFromUsername(roles=[role], usernames=names)
            for role, names in sorted(by_role.items())
        ]
        + ([github_roles] if github_roles is not None else []),
    )
