"""The release board's Flask app. Buildbot's UI fetches `index.html` and shows it under
"Releases" (#/releases); the same page stands alone at <web url>plugins/wsgi_dashboards/
releases/index.html, and its data as JSON at …/releases/board.json.

The "Promote" and "Roll back" buttons are shown only to users whom the authz matrix would let
force that very request (master/board/source.allowed); pressing one asks for a confirmation
naming the version and the target, then POSTs to the force scheduler's REST endpoint with the
browser's session, like `bin/conveyor`: the server decides again, whatever the page shows.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from typing import Any

from flask import Flask
from flask import Response
from flask import render_template
from flask import request

from conveyor import approvals
from conveyor import board as board_module
from conveyor import release
from conveyor import settings as settings_module
from conveyor.results import format_percent
from conveyor.results import result_name
from conveyor.settings import Settings
from master.board.source import DataSource
from master.board.source import allowed
from master.board.source import may_read
from master.board.source import user_info
from master.hostreports import current_view
from master.schedulers import APPROVE

TEMPLATES = os.path.join(os.path.dirname(__file__), "templates")


class CurrentSettings:
    """The settings the board shows. Buildbot hands a WSGI dashboard its app once, when the
    web site starts, not at a reconfig: so the app reads the settings file again when it has
    changed (a bad file keeps the last good settings; `buildbot reconfig` reports it)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.stamp = self.mtime()

    def mtime(self) -> float | None:
        try:
            return os.stat(self.settings.file).st_mtime
        except OSError:
            return None

    def get(self) -> Settings:
        stamp = self.mtime()
        if stamp != self.stamp:
            self.stamp = stamp
            try:
                self.settings = settings_module.load(self.settings.file)
            except settings_module.SettingsError:
                pass
        return self.settings


def make_app(settings: Settings) -> Flask:
    app = Flask("conveyor_board", template_folder=TEMPLATES)
    current = CurrentSettings(settings)
    app.jinja_env.filters["result_name"] = result_name
    app.jinja_env.filters["percent"] = lambda v: "" if v is None else f"{format_percent(v)}%"

    def refused() -> Response | None:
        """A 401 for who may not read (anonymous, unless [auth] public)."""
        if may_read(api_of(app), user_info(api_of(app), request.headers.get("Cookie"))):
            return None
        return Response(
            "The release board is for logged-in users with a role: log in to the web UI first.\n",
            status=401,
            mimetype="text/plain",
        )

    @app.route("/")
    @app.route("/index.html")
    def index() -> Any:
        return refused() or render_template("board.html", **page(app, current.get()))

    @app.route("/board.json")
    def as_json() -> Response:
        refusal = refused()
        if refusal is not None:
            return refusal
        settings, source = current.get(), DataSource(api_of(app))
        data = {**collect(settings, source).as_json(), "hosts": hosts_of(app, settings, source)}
        return Response(json.dumps(data, indent=1, default=str), mimetype="application/json")

    return app


def api_of(app: Flask) -> Any:
    return app.buildbot_api  # set by the wsgi_dashboards plugin


def collect(settings: Settings, source: DataSource) -> board_module.Board:
    def build_url(build: dict) -> str:
        return f"{settings.web_url}#/builders/{build['builderid']}/builds/{build['number']}"

    return board_module.collect(settings, source, build_url)


def promote_button(
    api: Any, user: dict, builderid: int | None, package: str, step: dict
) -> dict | None:
    """The "Promote to <target>" button of a step, if the user may press it."""
    if builderid is None or not step["promotable"] or step.get("frozen"):
        return None
    params = {
        "builderid": builderid,
        "package": package,
        "version": step["version"],
        "from_dist": step["source"],
        "to_dist": step["target"],
        "reason": "release board",
    }
    if not allowed(api, user, "promote", params):
        return None
    needed = (step.get("approvals") or {}).get("needed")
    return {
        "label": f"Ask to promote to {step['target']} ({needed} approvals)"
        if needed
        else f"Promote to {step['target']}",
        "scheduler": "promote",
        "params": params,
        "confirm": f"Promote {package} {step['version']} from {step['source']} to "
        f"{step['target']}?",
        "done": f"promotion of {package} {step['version']} to {step['target']}",
    }


def rollback_button(
    api: Any, user: dict, builderid: int | None, dist: str, history: list[dict]
) -> dict | None:
    """The "Roll back" button of a distribution: back to the state before the current one."""
    if builderid is None or len(history) < 2:
        return None
    try:
        target = release.rollback_target(history, history[-1]["snapshot"], None)
    except (release.ReleaseError, KeyError):
        return None
    params = {"builderid": builderid, "distribution": dist, "state": "", "reason": "release board"}
    if not allowed(api, user, "rollback", params):
        return None
    what = f"{target.get('package') or ''} {target.get('version') or 'nothing'}".strip()
    return {
        "label": "Roll back",
        "scheduler": "rollback",
        "params": params,
        "confirm": f"Roll back {dist} to state {target.get('n')} ({what}), from "
        f"{history[-1].get('version') or 'nothing'}?",
        "done": f"rollback of {dist} to state {target.get('n')}",
    }


def approve_button(api: Any, user: dict, builderid: int | None, dist: str, view: dict | None):
    """The "Approve" button of a distribution's pending request, if the user may press it: a
    production role (the authz), not its requester, not approved by them already."""
    pending = (view or {}).get("pending")
    if builderid is None or not pending or pending["state"] != "pending":
        return None
    me = approvals.identity(user)
    if me == pending["requested_by"] or me in pending["approved_by"]:
        return None
    params = {
        "builderid": builderid,
        "distribution": dist,
        "request": str(pending["request"]),
        "reason": "release board",
    }
    if not allowed(api, user, APPROVE, params):
        return None
    return {
        "label": f"Approve request {pending['request']}",
        "scheduler": APPROVE,
        "params": params,
        "confirm": f"Approve {pending['package']} {pending['version']} into {dist}, asked by "
        f"{pending['requested_by']}?",
        "done": f"approval of request {pending['request']}",
    }


def page(app: Flask, settings: Settings) -> dict:
    api = api_of(app)
    source = DataSource(api)
    data = collect(settings, source)
    user = user_info(api, request.headers.get("Cookie"))
    promote_id = rollback_id = None  # anonymous: no button, and the authz is not asked
    if not user.get("anonymous") and user.get("username"):
        promote_id, rollback_id = source.builder_id("promote"), source.builder_id("rollback")
    approve_id = None
    if promote_id is not None and settings.approvals.needed:
        approve_id = source.builder_id(APPROVE)
    for path in data.paths:
        for step in path["steps"]:
            step["button"] = promote_button(api, user, promote_id, path["package"], step)
            step["approve"] = approve_button(
                api, user, approve_id, step["target"], step.get("approvals")
            )
    rollbacks = {
        dist: rollback_button(api, user, rollback_id, dist, history)
        for dist, history in data.histories.items()
    }
    return {
        "board": data,
        "user": None if user.get("anonymous") else user.get("username"),
        "rollbacks": rollbacks,
        "web_path": urllib.parse.urlsplit(settings.web_url).path or "/",
        "web_url": settings.web_url,
        "json": json.dumps,
        "hosts": hosts_of(app, settings, source),
    }


def hosts_of(app: Flask, settings: Settings, source: DataSource) -> list[dict] | None:
    """What runs where (master/hostreports.py): per distribution, who runs which version; None
    when the kept reports cannot be read (the rest of the board still shows)."""
    try:
        return current_view(settings, source.text)["distributions"]
    except (OSError, ValueError) as exc:
        app.logger.error("the hosts' reports cannot be read: %s", exc)
        return None
