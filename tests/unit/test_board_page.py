"""The release board's page (master/board/): the Flask app on a fake data API, the user taken
from Buildbot's session cookie, buttons only for whom the authz allows, everything escaped."""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from types import SimpleNamespace

import jwt
import pytest

from conveyor.approvals import Approvals
from master.board import app as app_module
from master.board import dashboards
from master.board import source as source_module
from tests.unit.test_board import CHANGES
from tests.unit.test_board import PROJECT
from tests.unit.test_board import REPO
from tests.unit.test_board import TEXTS

SECRET = "a-session-secret-of-at-least-32-bytes"
SETTINGS = SimpleNamespace(
    projects=(PROJECT,),
    repository=REPO,
    distributions=PROJECT.path,
    approvals=Approvals(),
    targets_of=lambda dist: (),
    web_url="http://ci.test/",
    file=Path("/nonexistent/pipeline.toml"),
    state_dir=Path("/nonexistent/var"),  # no host has reported (tests/unit/test_host_reports_site)
)
BUILDERS = {"snowbird-ci": 1, "promote": 5, "rollback": 6, "publish": 7}


class FakeApi:
    """The wsgi_dashboards plugin as the app sees it: dataGet and master.www.site."""

    def __init__(self):
        self.master = SimpleNamespace(
            www=SimpleNamespace(site=SimpleNamespace(session_secret=SECRET))
        )

    def dataGet(self, path, filters=(), order=None, limit=None):
        wanted = {f.field: f.values[0] for f in filters or ()}
        if path == ("changes",):
            return CHANGES
        if path == ("builders",):
            return [{"builderid": BUILDERS[wanted["name"]]}] if wanted["name"] in BUILDERS else []
        if path == ("builders", 1, "builds"):
            return [
                {"buildid": 12, "builderid": 1, "number": 2, "results": 2, "complete": True},
                {"buildid": 11, "builderid": 1, "number": 1, "results": 0, "complete": True},
            ]
        if path in (("builders", 5, "builds"), ("builders", 6, "builds")):
            return []
        if path == ("builders", 7, "builds"):  # a publish that failed for good
            return [
                {
                    "buildid": 21,
                    "builderid": 7,
                    "number": 3,
                    "results": 2,
                    "complete": True,
                    "complete_at": 1_780_000_000,
                    "state_string": "GnuPG could not sign",
                }
            ]
        if path == ("builds", 21, "properties"):
            return {
                "project": ("snowbird", "publish"),
                "package_version": ("1.5+ci5", "ci"),
                "distribution": ("snowbird-staging", "publish"),
            }
        if path[0] == "builds" and path[2] == "properties":
            failing = path[1] == 12
            return {
                "coverage_percent": (None if failing else 91.5, "Coverage"),
                # the green build ran its tests on two target releases
                "by_target": (
                    {}
                    if failing
                    else {
                        "bookworm": {"passed": 9, "failed": 0, "coverage": 91.5},
                        "trixie": {"passed": 9, "failed": 0, "coverage": 92.0},
                    },
                    "RunTests",
                ),
                "tests_passed": (9, "RunTests"),
                "tests_failed": (int(failing), "RunTests"),
                "tests_failures": (
                    [{"name": "t::x", "text": "assert <a> == b"}] if failing else [],
                    "RunTests",
                ),
            }
        if path[0] == "builds" and path[2] == "test_result_sets":
            return [{"test_result_setid": path[1], "category": "pass_fail"}]
        if path[0] == "test_result_sets":
            assert wanted == {"value": "0"}
            return [{"test_name": "t::x"}] if path[1] == 12 else []
        raise AssertionError(path)


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setattr(source_module.DataSource, "text", lambda self, url: TEXTS.get(url))
    # the matrix (master/authz.py) is tested on its own: here, only the releaser passes it
    asked = []

    def allowed(api, user, scheduler, options):
        asked.append((user.get("username"), scheduler, options))
        return user.get("username") == "releaser"

    monkeypatch.setattr(app_module, "allowed", allowed)
    # reading: users with a role (here the releaser and the developer), or all when public
    monkeypatch.setattr(
        app_module,
        "may_read",
        lambda api, user: test_client.public or user.get("username") in ("releaser", "developer"),
    )
    flask_app = app_module.make_app(SETTINGS)
    flask_app.buildbot_api = FakeApi()
    test_client = flask_app.test_client()
    test_client.asked = asked
    test_client.public = False
    return test_client


def session_cookie(user: str) -> str:
    """What Buildbot's /auth/login sets: a JWT of the user's info, signed with the site's
    session secret."""
    return jwt.encode(
        {"user_info": {"username": user, "groups": []}, "exp": int(time.time()) + 600},
        SECRET,
        algorithm="HS256",
    )


def test_a_private_board_shows_anonymous_users_nothing(client):
    for path in ("/", "/index.html", "/board.json"):
        answer = client.get(path)
        assert answer.status_code == 401, path
        assert "log in to the web UI" in answer.get_data(as_text=True)
        assert "snowbird" not in answer.get_data(as_text=True)
    client.set_cookie("TWISTED_SESSION", "not-a-jwt")  # a forged cookie: anonymous
    assert client.get("/board.json").status_code == 401


def test_a_public_board_shows_anyone_the_grid_commits_history_and_ci_but_no_button(client):
    client.public = True
    page = client.get("/index.html").get_data(as_text=True)
    assert 'id="cell-snowbird-snowbird-staging" data-version="1.4.0+ci4.gccccccc"' in page
    assert f'href="https://github.com/sprintly/snowbird/commit/{"c" * 40}"' in page
    assert "CI build #4</a>" in page
    assert "second <span" in page and "(Bob &lt;bob@x&gt;)" in page
    assert "failing since #2</a>" in page
    assert "<pre>assert &lt;a&gt; == b</pre>" in page  # escaped
    assert "<svg" in page and "#1: 91.5%" in page
    assert 'class="conveyor-provenance conveyor-provenance-verified"' in page
    assert ">provenance verified</div>" in page
    # each target release's figures of the green build, in its own line
    assert '<div class="conveyor-target" data-release="trixie">trixie: 92%</div>' in page
    assert '<div class="conveyor-target" data-release="bookworm">bookworm: 9</div>' in page
    assert "conveyor-force" not in page.replace(".conveyor-force", "")
    assert "log in (top right)" in page
    assert client.asked == []  # anonymous: authz is not even asked
    # a publish that failed for good, with its build
    assert (
        '<b>publish failed</b> <span class="conveyor-muted">2026-05-28T20:26:40+00:00'
        "</span>: snowbird 1.5+ci5 was not published into snowbird-staging: GnuPG could "
        'not sign (<a href="http://ci.test/#/builders/7/builds/3">build</a>)'
    ) in page


def test_the_releaser_gets_the_buttons_the_authz_allows(client):
    client.set_cookie("TWISTED_SESSION", session_cookie("releaser"))
    page = client.get("/index.html")
    text = page.get_data(as_text=True)
    assert ">Promote to snowbird</button>" in text
    assert ">Roll back</button>" in text  # staging's history has a state to go back to
    params = [
        json.loads(html.unescape(p))
        for p in text.split('data-params="')[1:]
        for p in [p.split('"', 1)[0]]
    ]
    assert {
        "builderid": 5,
        "package": "snowbird",
        "version": "1.4.0+ci4.gccccccc",
        "from_dist": "snowbird-staging",
        "to_dist": "snowbird",
        "reason": "release board",
    } in params
    assert (
        'data-confirm="Promote snowbird 1.4.0+ci4.gccccccc from snowbird-staging to snowbird?"'
    ) in text
    assert 'data-url="/api/v2/forceschedulers/promote"' in text
    # the question asked of the authz is the request the button sends
    assert ("releaser", "promote", params[0]) in client.asked


def test_a_developer_or_a_forged_cookie_gets_no_button(client):
    client.public = True
    for cookie in (session_cookie("developer"), "not-a-jwt"):
        client.set_cookie("TWISTED_SESSION", cookie)
        text = client.get("/").get_data(as_text=True)
        assert "CI build #4</a>" in text and "</button>" not in text


def test_the_json_beside_the_page(client):
    client.set_cookie("TWISTED_SESSION", session_cookie("developer"))
    data = client.get("/board.json").get_json()
    assert data["paths"][0]["steps"][1]["commits"][1]["subject"] == "third"
    assert data["ci"][0]["failing"][0]["since"] == 2


def test_the_dashboard_is_registered_for_buildbots_ui():
    (dashboard,) = dashboards(SETTINGS)
    assert (dashboard["name"], dashboard["caption"]) == ("releases", "Releases")
    assert callable(dashboard["app"])  # a WSGI app


def test_after_a_reconfig_the_page_follows_the_settings_file(tmp_path):
    """Buildbot keeps the app it got at start; the app reads a changed file again (and keeps
    the last good settings when the file is wrong)."""
    import os

    from tests.integration.helpers import write_pipeline

    settings = write_pipeline(tmp_path)
    current = app_module.CurrentSettings(settings)
    assert current.get() is settings
    text = settings.file.read_text().replace(
        'upload_to = "snowbird-staging"', 'upload_to = "snowbird-development"'
    )
    settings.file.write_text(text)
    os.utime(settings.file, (1, 1))
    assert current.get().projects[0].upload_to == "snowbird-development"
    settings.file.write_text("[[not toml")
    os.utime(settings.file, (2, 2))
    assert current.get().projects[0].upload_to == "snowbird-development"
