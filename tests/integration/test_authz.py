"""The authorization matrix (master/authz.py), cell by cell, against a running master's REST API:
every control action and reading as anonymous, a developer, a releaser, a manager (the
production role) and an admin. One table of expected cells, one assert: a failure shows the whole
matrix. Then what no table cell holds: anonymous users read nothing (API, /sse, the board, the
artifacts) until `[auth] public = true` opens reading, and only reading.

While the matrix is walked every worker is paused, so that an allowed force or rebuild only
queues a build request (cancelled afterwards) and nothing runs. Needs root like make run.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request

import pytest

from conveyor.results import result_name
from ops import api
from ops import demo
from ops import github
from ops import services
from tests.integration.helpers import running_installation
from tests.integration.helpers import users_file

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="starts the services as root like make run"),
]

STAGING, PRODUCTION, DEVELOPMENT = "snowbird-staging", "snowbird", "snowbird-development"
USERS = {
    "developer": ("developer-password", "developers"),
    "releaser": ("releaser-password", "releasers"),
    "manager": ("manager-password", "releasers,release-managers"),
    "admin": ("admin-password", "admins"),
}
WHO = ("anonymous", "developer", "releaser", "manager", "admin")

# the matrix: action -> the users allowed ("ok"); everyone else gets 403
_DEV, _REL, _PROD, _ADMIN = WHO[1:], WHO[2:], WHO[3:], WHO[4:]
ALLOWED = {
    # private by default: anonymous users read nothing
    "read the builders": _DEV,
    "read a build's properties": _DEV,
    "read a log": _DEV,
    "read the changes": _DEV,
    "force CI (snowbird-force)": _DEV,
    "rebuild a CI build": _DEV,
    "stop a CI build": _DEV,
    "cancel a CI build request": _DEV,
    "stop a package build": _DEV,  # part of a CI build (steps/package.py)
    "rebuild a package build": _ADMIN,  # never alone: it would publish nothing
    "promote into staging": _REL,
    "roll back staging": _REL,
    "stop a promote build": _REL,
    "cancel a promote build request": _REL,
    "promote into production": _PROD,
    "rebuild a promotion into production": _PROD,
    "roll back production": _PROD,
    "pause a worker": _ADMIN,
    "unpause a worker": _ADMIN,
    "enable/disable a scheduler": _ADMIN,
    "set a build request's priority": (),  # Buildbot 4.3 fails on it: refused to all
    # what Buildbot answers with a 500 (publish is no force scheduler) and a 501: a 403 to all
    "force the publish trigger": (),
    "an action Buildbot does not have": (),
    "stop a worker (graceful)": _ADMIN,
    "kill a worker": _ADMIN,
    "force a retention prune": _ADMIN,
    "force the log janitor": _ADMIN,
}
EXPECTED = {
    action: {who: "ok" if who in allowed else "403" for who in WHO}
    for action, allowed in ALLOWED.items()
}


def rpc(method: str, **params) -> dict:
    return {"jsonrpc": "2.0", "method": method, "id": 1, "params": params}


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    with running_installation(
        "authz", extra='[auth]\nproduction = ["release-managers"]\n', before_start=users_file(USERS)
    ) as settings:
        yield settings


@pytest.fixture(scope="module")
def sessions(installation) -> dict[str, api.Master]:
    result = {}
    for who in WHO:
        result[who] = api.Master(installation.web_url)
        if who in USERS:
            result[who].login(who, USERS[who][0])
    return result


@pytest.fixture(scope="module")
def builds(installation, sessions) -> dict:
    """A finished CI build (its version is in staging) and a finished promotion of it into
    production, by the manager."""
    project = installation.projects[0]
    checkout = demo.ensure_demo_repo(installation, project)
    ci = github.push_and_wait(installation, project, checkout, before=github.ZERO)
    assert result_name(ci["results"]) == "SUCCESS", api.describe(ci)
    manager = sessions["manager"]
    promotion = manager.follow(
        manager.force(
            "promote",
            "promote",
            package="snowbird",
            version="",
            from_dist=STAGING,
            to_dist=PRODUCTION,
            reason="authz test",
        )
    )
    assert result_name(promotion["results"]) == "SUCCESS", api.describe(promotion)
    return {"ci": ci, "promotion": promotion}


def attempt(master: api.Master, path: str, method: str, **params) -> tuple[str, object]:
    """("ok", result), ("403", None) or ("<HTTP status>", None)."""
    try:
        reply = master.request(f"api/v2/{path}", rpc(method, **params) if method else None)
    except api.ApiError as exc:
        return ("403" if exc.code == api.FORBIDDEN else str(exc).split(":")[0]), None
    if isinstance(reply, dict) and "error" in reply:
        return f"error {reply['error']}", None
    return "ok", reply.get("result") if isinstance(reply, dict) else reply


def pending(admin: api.Master) -> list[int]:
    return [
        br["buildrequestid"] for br in admin.get("buildrequests?complete=false")["buildrequests"]
    ]


def cancel_pending(admin: api.Master) -> None:
    """Cancel every queued request, and wait until none is left."""
    deadline = time.monotonic() + 30
    while brids := pending(admin):
        assert time.monotonic() < deadline, f"build requests {brids} are still not cancelled"
        for brid in brids:
            attempt(admin, f"buildrequests/{brid}", "cancel", reason="authz test")
        time.sleep(0.5)


def test_the_matrix(installation, sessions, builds):
    admin = sessions["admin"]
    ids = {b["name"]: b["builderid"] for b in admin.get("builders")["builders"]}
    workers = admin.get("workers")["workers"]
    for w in workers:  # nothing runs while the matrix is walked: requests only queue
        assert attempt(admin, f"workers/{w['workerid']}", "pause", reason="authz test")[0] == "ok"
    worker = workers[0]["workerid"]
    (scheduler,) = admin.get("schedulers?name=snowbird-force")["schedulers"]
    ci, promotion = builds["ci"]["buildid"], builds["promotion"]["buildid"]
    (package,) = admin.get(f"builders/{ids['snowbird-package']}/builds?order=-number&limit=1")[
        "builds"
    ]

    def force(scheduler_name, builder, **params):
        return (
            f"forceschedulers/{scheduler_name}",
            "force",
            {"builderid": ids[builder], "reason": "authz test", **params},
        )

    def queued(scheduler_name, builder, **params) -> int:
        """A new pending build request, forced by the admin."""
        path, method, options = force(scheduler_name, builder, **params)
        status, result = attempt(admin, path, method, **options)
        assert status == "ok", (path, status)
        return int(next(iter(result[1].values())))

    # requests valid when asked (master/basis.py): a version named (development has none to
    # be "the newest"), a rollback's state named (the one before is the empty first state)
    promote = dict(package="snowbird", version=builds["ci"]["properties"]["package_version"][0])
    to_staging = dict(promote, from_dist=DEVELOPMENT, to_dist=STAGING)
    calls = {  # action -> who -> (path, method, params); a callable makes a fresh target
        "read the builders": ("builders", None, {}),
        "read a build's properties": (f"builds/{ci}/properties", None, {}),
        "read a log": (f"builds/{ci}/steps/0/logs", None, {}),
        "read the changes": ("changes", None, {}),
        "force CI (snowbird-force)": force("snowbird-force", "snowbird-ci"),
        "rebuild a CI build": (f"builds/{ci}", "rebuild", {}),
        "stop a CI build": (f"builds/{ci}", "stop", {"reason": "authz test"}),
        "cancel a CI build request": lambda: (
            f"buildrequests/{queued('snowbird-force', 'snowbird-ci')}",
            "cancel",
            {},
        ),
        "stop a package build": (f"builds/{package['buildid']}", "stop", {"reason": "authz test"}),
        "rebuild a package build": (f"builds/{package['buildid']}", "rebuild", {}),
        "promote into staging": force("promote", "promote", **to_staging),
        "roll back staging": force("rollback", "rollback", distribution=STAGING, state="1"),
        "stop a promote build": (f"builds/{promotion}", "stop", {"reason": "authz test"}),
        "cancel a promote build request": lambda: (
            f"buildrequests/{queued('promote', 'promote', **to_staging)}",
            "cancel",
            {},
        ),
        "promote into production": force(
            "promote", "promote", **promote, from_dist=STAGING, to_dist=PRODUCTION
        ),
        "rebuild a promotion into production": (f"builds/{promotion}", "rebuild", {}),
        "roll back production": force("rollback", "rollback", distribution=PRODUCTION, state="1"),
        "pause a worker": (f"workers/{worker}", "pause", {"reason": "authz test"}),
        "unpause a worker": (f"workers/{worker}", "unpause", {}),
        "enable/disable a scheduler": (
            f"schedulers/{scheduler['schedulerid']}",
            "enable",
            {"enabled": False},
        ),
        "set a build request's priority": (
            f"buildrequests/{builds['ci']['buildrequestid']}",
            "set_priority",
            {"priority": 5},
        ),
        "stop a worker (graceful)": (f"workers/{worker}", "stop", {"reason": "authz test"}),
        "kill a worker": (f"workers/{worker}", "kill", {"reason": "authz test"}),
        "force a retention prune": force("retention-force", "retention"),
        "force the log janitor": force("__Janitor_force", "__Janitor"),
        "force the publish trigger": (
            "forceschedulers/publish",
            "force",
            {"builderid": ids["publish"], "reason": "authz test"},
        ),
        "an action Buildbot does not have": (f"builds/{ci}", "frobnicate", {}),
    }
    observed: dict[str, dict[str, str]] = {}
    for action, call in calls.items():
        observed[action] = {}
        for who in WHO:
            if action in ("stop a worker (graceful)", "kill a worker") and who == "admin":
                continue  # done last: the worker goes away
            if action == "unpause a worker":
                cancel_pending(admin)  # an unpaused worker would start what is queued
            path, method, params = call() if callable(call) else call
            observed[action][who], _ = attempt(sessions[who], path, method, **params)
            if action == "enable/disable a scheduler" and observed[action][who] == "ok":
                assert attempt(sessions[who], path, method, enabled=True)[0] == "ok"
            if action == "unpause a worker" and observed[action][who] == "ok":
                attempt(admin, path, "pause", reason="authz test")
    cancel_pending(admin)
    for action in ("stop a worker (graceful)", "kill a worker"):  # the last thing this test does
        path, method, params = calls[action]
        observed[action]["admin"], _ = attempt(admin, path, method, **params)

    assert observed == EXPECTED, (
        "\n" + grid(observed, "observed") + "\n" + grid(EXPECTED, "expected")
    )


def grid(table: dict[str, dict[str, str]], title: str) -> str:
    width = max(map(len, table)) + 2
    lines = [title.ljust(width) + "".join(who.ljust(11) for who in WHO)]
    lines += [
        action.ljust(width) + "".join(cells.get(who, "?").ljust(11) for who in WHO)
        for action, cells in table.items()
    ]
    return "\n".join(lines)


def status_of(url: str, opener=None) -> int:
    """The HTTP status of a GET (a stream, such as /sse, is not read to its end)."""
    try:
        with (opener or urllib.request.build_opener()).open(url, timeout=10) as response:
            response.read(1)
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_anonymous_users_read_nothing_until_the_installation_is_public(
    installation, sessions, builds
):
    """Reading needs a role; [auth] public = true (a reconfig) opens reading to all, and only
    reading."""
    web = installation.web_url
    ci = builds["ci"]["buildid"]
    places = [
        f"api/v2/builds/{ci}/properties",
        "api/v2/changes",
        "sse/listen/builds",
        "plugins/wsgi_dashboards/releases/board.json",
        "plugins/wsgi_dashboards/releases/index.html",
        "artifacts/",
    ]
    assert {place: status_of(web + place) for place in places} == {
        **{place: 403 for place in places[:2]},
        **{place: 401 for place in places[2:]},
    }
    developer = sessions["developer"]
    assert {place: status_of(web + place, developer.opener) for place in places} == {
        place: 200 for place in places
    }

    text = installation.file.read_text()
    installation.file.write_text(text.replace("[auth]\n", "[auth]\npublic = true\n"))
    try:
        services.start(installation)  # a running master: reconfig
        assert {place: status_of(web + place) for place in places} == {
            **{place: 200 for place in places[:5]},
            "artifacts/": 401,
        }  # public_reports
        status, _ = attempt(
            sessions["anonymous"],
            "forceschedulers/promote",
            "force",
            builderid=developer.builder_id("promote"),
            reason="authz test",
            package="snowbird",
            version="",
            from_dist=STAGING,
            to_dist=PRODUCTION,
        )
        assert status == "403"
    finally:
        installation.file.write_text(text)
        services.start(installation)
    assert status_of(web + "api/v2/changes") == 403
