"""Where the board's data comes from, on the master: Buildbot's data API (through the WSGI
plugin's `dataGet`, which runs each query in the reactor and waits for it from the page's
thread), the repository's indexes and history over HTTP (as apt and the CLI read them), and who
is looking (the session cookie of Buildbot's own log-in) with what the authz matrix lets them
do. Every function here runs in the web server's thread pool, never in the reactor."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from twisted.internet import reactor
from twisted.internet.threads import blockingCallFromThread

from buildbot.data.resultspec import Filter
from buildbot.www import auth

from conveyor import board
from conveyor.settings import Project


class DataSource:
    """conveyor.board.Source on the master's data API; `api` is the WSGI plugin (it has
    `dataGet` and `master`). One per page: the board and what runs where read the same
    indexes, fetched once."""

    def __init__(self, api: Any, timeout: float = 10):
        self.api = api
        self.timeout = timeout
        self.texts: dict[str, str | None] = {}  # one page reads each file once

    def text(self, url: str) -> str | None:
        if url not in self.texts:
            self.texts[url] = self._text(url)
        return self.texts[url]

    def get(self, path: tuple, **kwargs) -> Any:
        return self.api.dataGet(path, **kwargs)

    def _text(self, url: str) -> str | None:
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                return response.read().decode()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        except (urllib.error.URLError, OSError):
            return None  # the repository is unreachable: the cells say so

    def changes(self, project: Project) -> list[dict]:
        return list(
            self.get(
                ("changes",),
                filters=[Filter("project", "eq", [project.github])],
                order=["-changeid"],
                limit=board.CHANGES,
            )
            or []
        )

    def builder_id(self, name: str) -> int | None:
        builders = self.get(("builders",), filters=[Filter("name", "eq", [name])]) or []
        return builders[0]["builderid"] if builders else None

    def recent(self, builder: str, limit: int) -> list[dict]:
        builderid = self.builder_id(builder)
        if builderid is None:
            return []
        result = []
        for build in (
            self.get(("builders", builderid, "builds"), order=["-number"], limit=limit) or []
        ):
            build = dict(build)
            props = self.get(("builds", build["buildid"], "properties")) or {}
            build["properties"] = {name: value for name, (value, _source) in props.items()}
            result.append(build)
        return result

    def builds(self, project: Project, limit: int) -> list[dict]:
        builds = self.recent(project.ci_builder, limit)
        for build in builds:
            build["failing_tests"] = self.failing_tests(build["buildid"])
        return builds

    def failing_tests(self, buildid: int) -> list[str] | None:
        """The names of the build's failed tests, from its test results (pass_fail sets:
        "0" is a failure); None when the build recorded no test results."""
        sets = self.get(("builds", buildid, "test_result_sets")) or []
        if not sets:
            return None
        names: list[str] = []
        for result_set in sets:
            if result_set.get("category") != "pass_fail":
                continue
            results = (
                self.get(
                    ("test_result_sets", result_set["test_result_setid"], "results"),
                    filters=[Filter("value", "eq", ["0"])],
                )
                or []
            )
            names += [r["test_name"] for r in results if r.get("test_name")]
        return names


# --- who is looking, and may they press the buttons -------------------------------------------


def user_info(api: Any, cookie_header: str | None) -> dict:
    """The user of Buildbot's session cookie (a JWT signed with the site's session secret),
    or the anonymous user."""
    site = getattr(getattr(api.master, "www", None), "site", None)
    secret = getattr(site, "session_secret", None)
    if secret:
        for part in (cookie_header or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name.startswith(("TWISTED_SESSION", "TWISTED_SECURE_SESSION")) and value:
                try:
                    return auth.parse_user_info_from_token(value, secret)
                except Exception:  # expired or forged: anonymous
                    continue
    return auth.build_anonymous_user_info()


def may_read(api: Any, user: dict) -> bool:
    """Whether Buildbot's authz lets `user` read (the question its WebSocket asks): anyone with
    [auth] public, else a user with a role (master/authz.py)."""
    www = api.master.www

    def check():
        return www.authz.assertUserAllowed(("masters",), "get", {}, user)

    try:
        blockingCallFromThread(reactor, check)
    except Exception:  # Forbidden, or anything else: nothing to see
        return False
    return True


def allowed(api: Any, user: dict, scheduler: str, options: dict) -> bool:
    """Whether Buildbot's authz (master/authz.py's matrix) lets `user` force `scheduler` with
    these parameters: the same question the REST API asks when the button is pressed."""
    if user.get("anonymous") or not user.get("username"):
        return False
    www = api.master.www

    def check():
        return www.authz.assertUserAllowed(("forceschedulers", scheduler), "force", options, user)

    try:
        blockingCallFromThread(reactor, check)
    except Exception:  # Forbidden, or anything else: no button (the server decides anyway)
        return False
    return True
