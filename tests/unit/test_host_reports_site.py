"""The hosts' report endpoint and view on the master's site (master/hostreports.py): a report is
kept only with its host's valid token, about that host, whole and well formed; the view is for
readers."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest
from twisted.internet import defer
from twisted.web import server
from twisted.web.test.requesthelper import DummyChannel
from twisted.web.test.requesthelper import DummyRequest

from buildbot.www.authz.authz import Authz
from buildbot.www.authz.roles import RolesFromUsername

from conveyor import hostreports
from conveyor import hosttokens
from master import hostreports as endpoint
from master import limits
from tests.integration.helpers import write_pipeline
from tests.unit import test_board_page as board_page
from tests.unit.test_board_page import client  # noqa: F401 (the board's test client, a fixture)

V1 = "1.4.0+ci20261204.140521.1.g4d4a7f9"
READERS = ("developers",)


@pytest.fixture
def settings(tmp_path):
    return write_pipeline(tmp_path)


def report(host="web-1", version=V1) -> bytes:
    return json.dumps(
        {
            "host": host,
            "distribution": "snowbird",
            "packages": [
                {"name": "snowbird", "version": version, "status": "install ok installed"}
            ],
        }
    ).encode()


def post(settings, data: bytes, token: str | None, length: int | None = None):
    request = DummyRequest([b""])
    request.method = b"POST"
    request.content = io.BytesIO(data)
    request.requestHeaders.setRawHeaders(
        b"content-length", [str(len(data) if length is None else length).encode()]
    )
    if token is not None:
        request.requestHeaders.setRawHeaders(b"authorization", [f"Bearer {token}".encode()])
    body = endpoint.ReportResource(settings).render(request)
    return request.responseCode or 200, body.decode()


def kept(settings) -> dict:
    return hostreports.load(hostreports.reports_file(settings.state_dir))


def test_a_report_with_its_hosts_token_is_kept(settings):
    token = hosttokens.add(hosttokens.tokens_file(settings.state_dir), "web-1")
    assert post(settings, report(), token) == (204, "")
    assert kept(settings)["web-1"]["snowbird"]["packages"][0]["version"] == V1


def test_no_token_an_unknown_or_a_revoked_one_gets_401_and_nothing_is_kept(settings):
    path = hosttokens.tokens_file(settings.state_dir)
    token = hosttokens.add(path, "web-1")
    code, text = post(settings, report(), None)
    assert code == 401 and "no token" in text
    code, text = post(settings, report(), token[:-1] + "x")
    assert code == 401 and "not valid" in text
    hosttokens.revoke(path, "web-1")
    code, text = post(settings, report(), token)
    assert code == 401 and "not valid (unknown or revoked)" in text
    assert kept(settings) == {}


def test_a_token_reports_for_its_own_host_only(settings):
    token = hosttokens.add(hosttokens.tokens_file(settings.state_dir), "web-1")
    code, text = post(settings, report(host="web-2"), token)
    assert code == 403 and "web-1's" in text and "not web-2" in text
    assert kept(settings) == {}


def test_a_report_too_large_gets_413_before_its_token_or_body_is_read(settings):
    code, text = post(settings, b"{}", None, length=hostreports.MAX_REPORT + 1)
    assert code == 413 and f"at most {hostreports.MAX_REPORT} bytes" in text
    token = hosttokens.add(hosttokens.tokens_file(settings.state_dir), "web-1")
    # a body longer than its Content-Length says: read up to the limit only
    code, _ = post(settings, b" " * (hostreports.MAX_REPORT + 10), token, length=10)
    assert code == 413
    assert kept(settings) == {}


def test_a_malformed_report_gets_400_with_what_is_wrong(settings):
    token = hosttokens.add(hosttokens.tokens_file(settings.state_dir), "web-1")
    code, text = post(settings, b"{nope", token)
    assert code == 400 and "not JSON" in text
    code, text = post(settings, report(version="not a version"), token)
    assert code == 400 and "is not a Debian version" in text
    assert kept(settings) == {}


def test_only_post_is_answered(settings):
    request = DummyRequest([b""])
    request.method = b"GET"
    body = endpoint.ReportResource(settings).render(request)
    assert request.responseCode == 405 and b"POST" in body


def test_the_site_keeps_a_reports_body_up_to_its_limit_only():
    channel = DummyChannel()
    channel._path = b"/hosts/report"
    request = limits.LimitedRequest(channel)
    assert request._body_limit() == hostreports.MAX_REPORT
    request.gotLength(hostreports.MAX_REPORT + 1)
    assert request.body_too_large
    channel._path = b"/api/v2/builds"
    assert limits.LimitedRequest(channel)._body_limit() is None


def master():
    authz = Authz(roleMatchers=[RolesFromUsername(roles=["developers"], usernames=["dev"])])
    return SimpleNamespace(www=SimpleNamespace(authz=authz))


def get(resource, user_info):
    request = DummyRequest([b""])
    request.method = b"GET"
    request.getSession = lambda: SimpleNamespace(user_info=user_info)
    result = resource.render(request)
    return request, result


def test_the_view_is_for_readers(settings, monkeypatch):
    token = hosttokens.add(hosttokens.tokens_file(settings.state_dir), "web-1")
    assert post(settings, report(), token)[0] == 204
    resource = endpoint.HostsResource(master(), settings, False, READERS)
    request, result = get(resource, {"anonymous": True})
    text = result if isinstance(result, bytes) else b"".join(request.written)
    assert request.responseCode == 401 and b"log in" in text.lower()

    monkeypatch.setattr(endpoint.served_module, "fetch", lambda url: None)
    monkeypatch.setattr(endpoint.threads, "deferToThread", lambda f, *a: defer.succeed(f(*a)))
    view = endpoint.current_view(settings, lambda url: f"Package: snowbird\nVersion: {V1}\n")
    (prod,) = [d for d in view["distributions"] if d["distribution"] == "snowbird"]
    assert prod["hosts"][0]["host"] == "web-1" and prod["hosts"][0]["lags"] is False
    request, result = get(resource, {"username": "dev"})
    assert result == server.NOT_DONE_YET and request.finished
    answer = json.loads(b"".join(request.written))
    (prod,) = [d for d in answer["distributions"] if d["distribution"] == "snowbird"]
    assert prod["served"] is None and prod["hosts"][0]["lags"] is None  # repository not there


# --- on the release board (master/board/) ------------------------------------------------------


def test_the_board_lists_each_host_with_its_version_and_who_lags(client, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.setattr(board_page.SETTINGS, "state_dir", tmp_path)
    path = hostreports.reports_file(tmp_path)
    for host, version in (("web-1", "1.4.0+ci1.gaaaaaaa"), ("web-2", "1.4.0+ci4.gccccccc")):
        hostreports.record(path, json.loads(report(host, version)))
    client.set_cookie("TWISTED_SESSION", board_page.session_cookie("developer"))
    text = client.get("/").get_data(as_text=True)
    section = text[text.index('id="hosts-snowbird"') :]
    assert 'data-host="web-1"' in section and 'data-host="web-2"' in section
    assert "1 of 2 host(s) behind" in section  # production serves ci1: web-2 runs ci4
    web2 = section[section.index('data-host="web-2"') :].split("</tr>")[0]
    assert "1.4.0+ci4.gccccccc" in web2 and "behind: snowbird serves 1.4.0+ci1.gaaaaaaa" in web2
    web1 = section[section.index('data-host="web-1"') :].split("</tr>")[0]
    assert "current" in web1 and "behind" not in web1
    (prod,) = [d for d in client.get("/board.json").get_json()["hosts"] if d["hosts"]]
    assert (prod["distribution"], prod["lagging"]) == ("snowbird", ["web-2"])


def test_a_board_without_reports_says_how_hosts_report(client):  # noqa: F811
    client.set_cookie("TWISTED_SESSION", board_page.session_cookie("developer"))
    text = client.get("/").get_data(as_text=True)
    assert "No host has reported yet" in text and "bin/conveyor host-token add HOST" in text
