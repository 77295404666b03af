"""A client of the master's REST API (/api/v2): log in, force a build, wait for a build.

One client for every program that talks to a running master: the release CLI, the GitHub
simulator (ops/github.py) and the demo, the tests and bench/. Errors carry the exit code the CLI
gives them (see ops/cli.py).
"""

from __future__ import annotations

import ast
import base64
import http.client
import http.cookiejar
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from conveyor import served
from conveyor.results import result_name
from conveyor.served import read_index
from conveyor.settings import Settings
from ops.progress import follow_with_progress

OK, FAILED, REFUSED, FORBIDDEN, UNREACHABLE = 0, 1, 2, 3, 4
GET_TRIES = 3
CLI_CREDENTIALS = "cli-credentials"  # the secret `make run` writes: user:password


class ApiError(Exception):
    """A request the master refused or could not answer; `code` is the CLI's exit code."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Master:
    """A session on the master's REST API: anonymous, or logged in (the session cookie that
    /auth/login sets; the API itself ignores basic auth). With `credentials`, a GET that is
    refused (a private installation, or a session the master no longer knows) logs in with
    them and is asked once more."""

    def __init__(self, web_url: str, credentials: tuple[str, str] | None = None):
        self.web_url = web_url
        self.credentials = credentials
        self.user = None  # who logged in, if anyone
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect()
        )

    def request(self, path: str, data: dict | None = None, headers: dict | None = None):
        """GET (data None) or POST (JSON) a path of the master's site. A GET whose answer the
        master cut short (seen under load: the headers, then the connection closed) is asked
        again, up to GET_TRIES times; a POST never is."""
        for attempt in range(1, GET_TRIES + 1):
            try:
                return self._request(path, data, headers)
            except (
                http.client.IncompleteRead,
                http.client.RemoteDisconnected,
                ConnectionResetError,
            ):
                if data is not None or attempt == GET_TRIES:
                    raise
                time.sleep(0.5 * attempt)

    def _request(self, path: str, data: dict | None, headers: dict | None):
        body = json.dumps(data).encode() if data is not None else None
        request = urllib.request.Request(
            self.web_url + path,
            data=body,
            headers={"Content-Type": "application/json", **(headers or {})},
            method="POST" if data is not None else "GET",
        )
        try:
            with self.opener.open(request, timeout=30) as response:
                text = response.read().decode()
                return json.loads(text) if text.strip().startswith(("{", "[")) else text
        except urllib.error.HTTPError as exc:
            if exc.code in (301, 302, 303):  # /auth/login sends the browser back to the UI
                return ""
            text = exc.read().decode(errors="replace")
            try:
                message = json.loads(text)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = text.strip() or exc.reason
            try:  # a refused force: {'field': 'what is wrong', …} (a JSON object, or its repr)
                fields = message if isinstance(message, dict) else ast.literal_eval(message)
                message = "; ".join(fields.values())
            except (ValueError, SyntaxError, AttributeError, TypeError):
                pass
            code = FORBIDDEN if exc.code in (401, 403) else REFUSED
            raise ApiError(f"{exc.code}: {message}", code) from None
        except urllib.error.URLError as exc:
            raise ApiError(f"cannot reach {self.web_url}: {exc.reason}", UNREACHABLE) from None

    def get(self, path: str) -> dict:
        """GET /api/v2/<path> (a data API path with its query)."""
        try:
            return self.request(f"api/v2/{path}")
        except ApiError as exc:
            if exc.code != FORBIDDEN or self.credentials is None:
                raise
        self.login(*self.credentials)
        return self.request(f"api/v2/{path}")

    def login(self, user: str, password: str) -> None:
        """Basic auth on /auth/login answers 401 to a wrong password and sets the session
        cookie otherwise."""
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        try:
            self.request("auth/login", headers={"Authorization": f"Basic {token}"})
        except ApiError as exc:
            if exc.code == FORBIDDEN:
                raise ApiError(
                    f"log-in as {user} failed: wrong user name or password", FORBIDDEN
                ) from None
            raise
        self.user = user

    def builder_id(self, name: str) -> int:
        builders = self.get(f"builders?name={urllib.parse.quote(name)}")["builders"]
        if not builders:
            raise ApiError(
                f"the master has no builder {name!r}: is it in the settings the master runs with?",
                REFUSED,
            )
        return builders[0]["builderid"]

    def last_build_number(self, builder: str) -> int:
        builds = self.get(f"builders/{self.builder_id(builder)}/builds?order=-number&limit=1")[
            "builds"
        ]
        return builds[0]["number"] if builds else 0

    def force(self, scheduler: str, builder: str, **params) -> int:
        """Force a build; return its build request id."""
        reply = self.request(
            f"api/v2/forceschedulers/{scheduler}",
            {
                "jsonrpc": "2.0",
                "method": "force",
                "id": 1,
                "params": {"builderid": self.builder_id(builder), **params},
            },
        )
        if "error" in reply:
            raise ApiError(reply["error"].get("message", str(reply["error"])), REFUSED)
        _bsid, brids = reply["result"]
        return int(next(iter(brids.values())))

    def wait(self, query: str, order: str, what: str, timeout: float = 900, progress=None) -> dict:
        """The build that `builds?<query>&order=<order>` lists first, once it has finished,
        with its properties, its steps and its URL in the web UI. With a progress printer
        (ops/progress.StepPrinter), each step is printed as it finishes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            builds = self.get(f"builds?{query}&order={order}&limit=1&property=*")["builds"]
            if builds and progress is not None:
                follow_with_progress(self, builds[0], progress)
            if builds and builds[0]["complete"]:
                build = builds[0]
                build["url"] = (
                    f"{self.web_url}#/builders/{build['builderid']}/builds/{build['number']}"
                )
                build["steps"] = self.get(f"builds/{build['buildid']}/steps")["steps"]
                for step in build["steps"]:
                    if step.get("results") not in (0, 3):
                        step["log_tail"] = self.log_tail(step["stepid"])
                return build
            time.sleep(0.5)
        raise ApiError(f"{what} did not finish within {timeout:.0f} s", FAILED)

    def log_tail(self, stepid: int, lines: int = 15) -> str:
        """The last lines of a step's first log (what went wrong, for a failed step)."""
        try:
            logs = self.get(f"steps/{stepid}/logs")["logs"]
            if not logs:
                return ""
            count = logs[0].get("num_lines") or 0
            chunks = self.get(f"logs/{logs[0]['logid']}/contents?offset={max(0, count - lines)}")[
                "logchunks"
            ]
        except ApiError:
            return ""
        return "".join(chunk["content"] for chunk in chunks)[-3000:]

    def follow(self, brid: int, timeout: float = 900, progress=None) -> dict:
        """The last build of a build request (a retried request has several), once finished."""
        return self.wait(
            f"buildrequestid={int(brid)}", "-number", f"build request {brid}", timeout, progress
        )

    def wait_for_build(
        self, builder: str, after_number: int, timeout: float = 900, progress=None
    ) -> dict:
        """The first build of `builder` numbered above `after_number`, once finished."""
        return self.wait(
            f"builderid={self.builder_id(builder)}&number__gt={int(after_number)}",
            "number",
            f"the first build of {builder} after #{after_number}",
            timeout,
            progress,
        )


def describe(build: dict) -> str:
    """A finished build in a few lines: its URL, and each step that did not pass with the end
    of its log (`log_tail`, which Master.wait fetches for those steps)."""
    lines = [f"{build.get('url', '')} {result_name(build.get('results'))}"]
    for step in build.get("steps") or []:
        if step.get("results") not in (0, 3):
            lines.append(
                f"  {step['name']}: {step.get('state_string')} ({result_name(step.get('results'))})"
            )
            lines += [f"    | {line}" for line in (step.get("log_tail") or "").splitlines()]
    return "\n".join(lines)


def fetch_text(url: str, raw: bool = False):
    """A file the repository serves (an index, a history), as text (bytes: `raw`); None if it
    is not there."""
    try:
        return served.fetch(url, raw)
    except urllib.error.HTTPError as exc:
        raise ApiError(f"{url}: {exc.code}", UNREACHABLE) from None
    except urllib.error.URLError as exc:
        raise ApiError(f"cannot reach {url}: {exc.reason}", UNREACHABLE) from None


# --- reading an installation, as its operator ----------------------------------------------


def credentials(settings: Settings) -> tuple[str, str]:
    """The operator's user and password: CONVEYOR_USER and CONVEYOR_PASSWORD, or the file
    CONVEYOR_CREDENTIALS, or the secret cli-credentials (user:password)."""
    user, password = os.environ.get("CONVEYOR_USER"), os.environ.get("CONVEYOR_PASSWORD")
    if user and password:
        return user, password
    file = Path(os.environ.get("CONVEYOR_CREDENTIALS") or settings.secrets_dir / CLI_CREDENTIALS)
    try:
        user, _, password = file.read_text().strip().partition(":")
    except OSError:
        raise ApiError(
            f"no credentials: set CONVEYOR_USER and CONVEYOR_PASSWORD, or "
            f"CONVEYOR_CREDENTIALS to a file with user:password ({file} is not "
            "readable)",
            FORBIDDEN,
        ) from None
    return user, password


def reader(settings: Settings) -> Master:
    """A session that may read the master's API: it logs in with the operator's credentials
    when the master refuses to show anonymous users anything ([auth] public false, the
    default), and stays anonymous when the installation is public or has no credentials."""
    try:
        found = credentials(settings)
    except ApiError:
        found = None
    return Master(settings.web_url, credentials=found)


def api(settings: Settings, path: str) -> dict:
    return reader(settings).get(path)


def builder_id(settings: Settings, name: str) -> int:
    return reader(settings).builder_id(name)


def listed_versions(settings: Settings, distribution: str, package: str) -> list[str]:
    """The versions of `package` that a distribution's `Packages` index lists, read over HTTP as
    apt reads it (conveyor/served.py); none if the index is not there."""
    stanzas = read_index(settings, distribution, fetch_text) or []
    return [stanza["Version"] for stanza in stanzas if stanza["Package"] == package]


def last_build_number(settings: Settings, builder: str) -> int:
    return reader(settings).last_build_number(builder)


def wait_for_build(
    settings: Settings, builder: str, after_number: int, timeout: float = 900, progress=None
) -> dict:
    return reader(settings).wait_for_build(builder, after_number, timeout, progress)
