"""The authorization matrix (master/authz.py): the rule list, and every cell against a stand-in
for Buildbot's data API (the same Authz loop and matchers the master runs; the integration test
tests/integration/test_authz.py walks the matrix against a running master)."""

from twisted.internet import defer

from buildbot.www.authz.authz import Forbidden
from buildbot.www.authz.endpointmatchers import AnyControlEndpointMatcher

from conveyor import settings as settings_module
from conveyor import users as users_module
from master import authz
from master import www
from tests.unit.test_settings import MINIMAL
from tests.unit.test_settings import write

PIPELINE = MINIMAL.replace('path = ["app-dev", "app"]', 'path = ["app-dev", "app-staging", "app"]')
AUTH = '[auth]\nproduction = ["release-managers"]\n'
USERS = users_module.parse(
    "dev:dev-password:developers\nrel:rel-password:releasers\n"
    "man:man-password:releasers,release-managers\nadm:adm-password:admins\n"
    "nobody:nobody-password:\n",
    "users",
)


def load(tmp_path, extra=AUTH):
    return settings_module.load(write(tmp_path, PIPELINE + extra))


# --- a stand-in for master.data: endpoints by path, and the objects they point at ---------------

BUILDERS = {1: "app-ci", 2: "app-pr", 3: "promote", 4: "rollback", 5: "publish", 6: "app-package"}
PROMOTE_INTO = {
    "app-staging": {"package": "app", "from_dist": "app-dev", "to_dist": ""},
    "app": {"package": "app", "from_dist": "app-staging", "to_dist": ""},
    "unknown": {"package": "nope", "from_dist": "app-staging", "to_dist": ""},
}
# build id -> (builder id, buildset properties)
BUILDS = {
    10: (1, {}),
    11: (2, {}),
    12: (5, {}),
    13: (6, {}),
    20: (3, PROMOTE_INTO["app-staging"]),
    21: (3, PROMOTE_INTO["app"]),
    22: (3, PROMOTE_INTO["unknown"]),
    30: (4, {"distribution": "app-staging"}),
    31: (4, {"distribution": "app"}),
}


class _Endpoint:
    def __init__(self, obj):
        self.obj = obj

    def get(self, resultSpec, kwargs):
        return defer.succeed(self.obj)


def _endpoint(name):
    return type(name, (_Endpoint,), {})


class _Scheduler:
    def __init__(self, builders):
        self.builders = builders

    def computeBuilderNames(self, builderNames=None, builderid=None):
        return defer.succeed(self.builders)


class ForceSchedulerEndpoint(_Endpoint):
    SCHEDULERS = {
        "app-force": ["app-ci"],
        "promote": ["promote"],
        "rollback": ["rollback"],
        "freeze": ["freeze"],
        "approve": ["approve"],
    }

    def findForceScheduler(self, name):  # (Buildbot's: None for a name it does not have)
        return defer.succeed(_Scheduler(self.SCHEDULERS[name]) if name in self.SCHEDULERS else None)


class FakeData:
    def getEndpoint(self, ep):
        kind, key = ep[0], ep[-1]
        if kind == "forceschedulers":
            return ForceSchedulerEndpoint(None), {"schedulername": key}
        if kind == "builds":
            builderid, _ = BUILDS[key]
            build = {"buildid": key, "builderid": builderid, "buildrequestid": key}
            return _endpoint("BuildEndpoint")(build), {"buildid": key}
        if kind == "buildrequests":
            br = {"buildrequestid": key, "builderid": BUILDS[key][0], "buildsetid": key}
            return _endpoint("BuildRequestEndpoint")(br), {"buildrequestid": key}
        if kind == "workers":
            return _endpoint("WorkerEndpoint")({"workerid": key}), {"workerid": key}
        if kind == "schedulers":
            return _endpoint("SchedulerEndpoint")({"name": "app"}), {"schedulerid": key}
        return _endpoint("BuildersEndpoint")([]), {}

    def get(self, path):
        if path[0] == "builders":
            return defer.succeed({"builderid": path[1], "name": BUILDERS[path[1]]})
        if path[0] == "buildrequests":
            key = path[1]
            return defer.succeed(
                {"buildrequestid": key, "builderid": BUILDS[key][0], "buildsetid": key}
            )
        assert path[0] == "buildsets" and path[2] == "properties"
        return defer.succeed({k: (v, "Force Build Form") for k, v in BUILDS[path[1]][1].items()})


class FakeMaster:
    data = FakeData()


ACTIONS = {  # name -> (path, action, options)
    "read": (("builders",), "get", {}),
    # the REST API asks with the HTTP method, the WebSocket and /sse with "get"
    "read a log": (("logs", 7, "contents"), "GET", {}),
    "force CI": (("forceschedulers", "app-force"), "force", {}),
    "rebuild CI": (("builds", 10), "rebuild", {}),
    "stop CI": (("builds", 10), "stop", {}),
    "cancel CI": (("buildrequests", 10), "cancel", {}),
    "rebuild PR": (("builds", 11), "rebuild", {}),
    "cancel PR": (("buildrequests", 11), "cancel", {}),
    "promote to staging": (
        ("forceschedulers", "promote"),
        "force",
        {"package": "app", "from_dist": "app-dev", "to_dist": ""},
    ),
    "promote to production": (
        ("forceschedulers", "promote"),
        "force",
        {"package": "app", "from_dist": "app-staging", "to_dist": "app"},
    ),
    "rebuild promote to staging": (("builds", 20), "rebuild", {}),
    "rebuild promote to production": (("builds", 21), "rebuild", {}),
    "rebuild promote unknown package": (("builds", 22), "rebuild", {}),
    "stop promote": (("builds", 21), "stop", {}),
    "cancel promote": (("buildrequests", 21), "cancel", {}),
    "cancel publish": (("buildrequests", 12), "cancel", {}),
    # a package build is part of a CI build (steps/package.py): stopped with it, not alone redone
    "stop package": (("builds", 13), "stop", {}),
    "rebuild package": (("builds", 13), "rebuild", {}),
    "roll back staging": (
        ("forceschedulers", "rollback"),
        "force",
        {"distribution": "app-staging"},
    ),
    "roll back production": (("forceschedulers", "rollback"), "force", {"distribution": "app"}),
    "rebuild rollback of staging": (("builds", 30), "rebuild", {}),
    "rebuild rollback of production": (("builds", 31), "rebuild", {}),
    "freeze production": (("forceschedulers", "freeze"), "force", {"distribution": "app"}),
    "pause worker": (("workers", 1), "pause", {}),
    "kill worker": (("workers", 1), "kill", {}),
    "enable scheduler": (("schedulers", 1), "enable", {"enabled": False}),
    "set priority": (("buildrequests", 10), "set_priority", {"priority": 5}),
    "unknown action": (("builds", 10), "frobnicate", {}),
    # publish is a Triggerable: Buildbot answers a force of it with a 500
    "force a scheduler that is no force scheduler": (("forceschedulers", "publish"), "force", {}),
}
D, R, M, A = "dev", "rel", "man", "adm"
EXPECTED = {
    # private by default: a logged-in user without a role ("nobody", as from GitHub) neither
    "read": {D, R, M, A},
    "read a log": {D, R, M, A},
    **{
        a: {D, R, M, A}
        for a in (
            "force CI",
            "rebuild CI",
            "stop CI",
            "cancel CI",
            "rebuild PR",
            "cancel PR",
            "stop package",
        )
    },
    **{
        a: {R, M, A}
        for a in (
            "promote to staging",
            "rebuild promote to staging",
            "stop promote",
            "cancel promote",
            "cancel publish",
            "roll back staging",
            "rebuild rollback of staging",
        )
    },
    **{
        a: {M, A}
        for a in (
            "promote to production",
            "rebuild promote to production",
            "rebuild promote unknown package",
            "roll back production",
            "rebuild rollback of production",
            "freeze production",
        )
    },
    **{a: {A} for a in ("pause worker", "kill worker", "enable scheduler", "rebuild package")},
    # refused to all with a 403 that says so (Buildbot: 500, 501, 500)
    **{
        a: set()
        for a in ("set priority", "unknown action", "force a scheduler that is no force scheduler")
    },
}


def allowed(rule_set, action, user) -> bool:
    path, method, options = ACTIONS[action]
    result = []
    d = rule_set.assertUserAllowed(path, method, options, {"username": user} if user else {})
    d.addCallbacks(
        lambda _: result.append(True), lambda f: result.append(False) if f.check(Forbidden) else f
    )
    assert result, f"{action} as {user}: no answer at once ({d.result!r})"
    return result[0]


def the_authz(settings):
    rule_set = authz.authz(settings, USERS, www.RolesFromGitHub(settings.auth.github_roles))
    rule_set.setMaster(FakeMaster())
    return rule_set


def test_every_cell_of_the_matrix(tmp_path):
    rule_set = the_authz(load(tmp_path))
    users = [None, "nobody", D, R, M, A]
    observed = {action: {u for u in users if allowed(rule_set, action, u)} for action in ACTIONS}
    assert observed == EXPECTED


def test_public_opens_reading_only(tmp_path):
    rule_set = the_authz(load(tmp_path, AUTH + "public = true\n"))
    users = [None, "nobody", D, R, M, A]
    observed = {action: {u for u in users if allowed(rule_set, action, u)} for action in ACTIONS}
    assert observed == {**EXPECTED, "read": set(users), "read a log": set(users)}


def test_production_defaults_to_the_releasers(tmp_path):
    rule_set = the_authz(load(tmp_path, extra=""))
    assert allowed(rule_set, "promote to production", R)
    assert allowed(rule_set, "rebuild rollback of production", R)
    assert not allowed(rule_set, "promote to production", D)


def test_a_refusal_names_the_role_of_its_level(tmp_path):
    rule_set = the_authz(load(tmp_path))
    d = rule_set.assertUserAllowed(
        *ACTIONS["rebuild promote to production"][:2], {}, {"username": R}
    )
    failures = []
    d.addErrback(failures.append)
    assert "you need to have role 'release-managers'" in str(failures[0].value)


def test_the_rule_list_ends_denying_every_other_control_action_to_everyone(tmp_path):
    settings = load(tmp_path, AUTH + 'admins = ["ops", "root"]\n')
    rules = authz.rules(settings)
    last = rules[-1]
    assert isinstance(last, AnyControlEndpointMatcher)
    assert (last.role, last.defaultDeny) == (authz.NO_SUCH_ACTION, True)
    assert not [r for r in rules[:-1] if isinstance(r, AnyControlEndpointMatcher)]
    # every level lists the admins, its own roles last (a refusal names them)
    assert authz.role_lists(settings) == {
        "admins": ("ops", "root"),
        "production": ("ops", "root", "release-managers"),
        "releasers": ("ops", "root", "release-managers", "releasers"),
        "developers": ("ops", "root", "release-managers", "releasers", "developers"),
    }


def test_github_roles_pass_the_rules_too(tmp_path):
    settings = load(tmp_path, AUTH + '[auth.github_roles]\nadmins = ["acme/ops"]\n')
    rule_set = the_authz(settings)
    path, method, options = ACTIONS["kill worker"]
    d = rule_set.assertUserAllowed(path, method, options, {"groups": ["acme/ops"]})
    assert d.called and d.result is None


def test_with_approvals_a_releaser_asks_and_only_production_roles_approve(tmp_path):
    # [approvals] app = 2: a promotion into app is a request (steps/approvals.py), which a
    # releaser may make; approving it is for the production roles (never the requester: the
    # build refuses that)
    rule_set = the_authz(load(tmp_path, AUTH + "[approvals]\napp = 2\n"))
    BUILDERS[7] = "approve"
    BUILDS[40] = (7, {"distribution": "app", "request": "3"})
    ACTIONS["approve"] = (
        ("forceschedulers", "approve"),
        "force",
        {"distribution": "app", "request": "3"},
    )
    ACTIONS["rebuild approve"] = (("builds", 40), "rebuild", {})
    try:
        users = [None, "nobody", D, R, M, A]
        for action, who in (
            ("promote to production", {R, M, A}),
            ("rebuild promote to production", {R, M, A}),
            ("roll back production", {M, A}),
            ("approve", {M, A}),
            ("rebuild approve", {A}),  # and the build refuses it: an approval is not rebuilt
        ):
            assert {u for u in users if allowed(rule_set, action, u)} == who, action
    finally:
        del BUILDERS[7], BUILDS[40], ACTIONS["approve"], ACTIONS["rebuild approve"]


def test_each_releases_package_and_tests_builds_are_stopped_with_the_ci_build_never_alone(
    tmp_path,
):
    # targets: a package builder per release and a tests builder per release after the first
    # (steps/beside.py), part of a CI build as the package build is
    settings = settings_module.load(
        write(
            tmp_path,
            PIPELINE.replace(
                'path = ["app-dev", "app-staging", "app"]',
                'path = ["app-dev", "app-staging", "app"]\ntargets = ["bookworm", "trixie"]',
            )
            + AUTH,
        )
    )
    rule_set = the_authz(settings)
    added = {8: "app-tests-trixie", 9: "app-package-trixie"}
    BUILDERS.update(added)
    BUILDS.update({50: (8, {}), 51: (9, {})})
    ACTIONS.update(
        {
            "stop tests build": (("builds", 50), "stop", {}),
            "rebuild tests build": (("builds", 50), "rebuild", {}),
            "stop trixie's package build": (("builds", 51), "stop", {}),
            "rebuild trixie's package build": (("builds", 51), "rebuild", {}),
        }
    )
    try:
        users = [None, "nobody", D, R, M, A]
        for action, who in (
            ("stop tests build", {D, R, M, A}),
            ("rebuild tests build", {A}),
            ("stop trixie's package build", {D, R, M, A}),
            ("rebuild trixie's package build", {A}),
        ):
            assert {u for u in users if allowed(rule_set, action, u)} == who, action
    finally:
        for key in added:
            del BUILDERS[key]
        del BUILDS[50], BUILDS[51]
        for action in (
            "stop tests build",
            "rebuild tests build",
            "stop trixie's package build",
            "rebuild trixie's package build",
        ):
            del ACTIONS[action]
