"""The web site's limits (master/limits.py), on Twisted's real Site and channel over a fake
transport and clock: a request received too slowly is cut off with 408, an idle connection is
closed, a change hook body is kept up to the limit only."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from twisted.internet import address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web import resource
from twisted.web import server
from twisted.web.test.requesthelper import DummyChannel

from master import hookguard
from master import limits


class Seen(resource.Resource):
    """Answers every request with what the request noted."""

    isLeaf = True

    def __init__(self):
        super().__init__()
        self.requests = []

    def render(self, request):
        self.requests.append(request)
        return b"ok"


def site_with_limits():
    root = Seen()
    site = server.Site(root)
    assert limits.install(SimpleNamespace(www=SimpleNamespace(site=site)))
    return site, root


def connect(site, clock):
    channel = site.buildProtocol(address.IPv4Address("TCP", "203.0.113.9", 4242))
    channel.callLater = clock.callLater  # as HTTPFactory gives it its reactor's
    transport = StringTransport()
    channel.makeConnection(transport)
    return channel, transport


def test_a_request_sent_too_slowly_gets_408_and_is_cut_off():
    site, root = site_with_limits()
    clock = Clock()
    channel, transport = connect(site, clock)
    request = b"POST /change_hook/github HTTP/1.1\r\nHost: ci\r\nContent-Length: 100\r\n\r\n"
    for second in range(limits.RECEIVE_DEADLINE + 1):  # a byte a second, never idle
        channel.dataReceived(request[second : second + 1])
        clock.advance(1)
    assert transport.value().startswith(b"HTTP/1.1 408")
    assert transport.disconnecting and root.requests == []


def test_a_request_in_time_is_answered_and_the_next_one_gets_its_own_deadline():
    site, root = site_with_limits()
    clock = Clock()
    channel, transport = connect(site, clock)
    for _ in range(3):
        channel.dataReceived(b"GET /x HTTP/1.1\r\nHost: ci\r\n")
        clock.advance(limits.RECEIVE_DEADLINE - 1)
        channel.dataReceived(b"\r\n")
        clock.advance(limits.RECEIVE_DEADLINE - 1)
    assert len(root.requests) == 3 and b"408" not in transport.value()
    assert not transport.disconnecting


def test_an_idle_connection_is_closed():
    site, _ = site_with_limits()
    clock = Clock()
    _, transport = connect(site, clock)
    clock.advance(limits.IDLE - 1)
    assert not transport.disconnecting
    clock.advance(2)
    assert transport.disconnecting


def limited(path: bytes = b"/change_hook/github") -> limits.LimitedRequest:
    channel = DummyChannel()
    channel._path = path
    return limits.LimitedRequest(channel)


def test_a_declared_oversize_body_is_not_kept():
    request = limited()
    request.gotLength(hookguard.MAX_BODY + 1)
    request.handleContentChunk(b"x" * 1000)
    assert request.body_too_large and request.content.getvalue() == b""


def test_an_undeclared_body_is_kept_up_to_the_limit_only():
    request = limited()
    request.gotLength(None)
    chunk = b"x" * (1024 * 1024)
    for _ in range(hookguard.MAX_BODY // len(chunk)):
        request.handleContentChunk(chunk)
    assert not request.body_too_large
    request.handleContentChunk(b"y")
    assert request.body_too_large and request.content.getvalue() == b""


def test_other_resources_are_not_limited():
    request = limited(b"/api/v2/builds")
    request.gotLength(hookguard.MAX_BODY + 1)
    assert not request.body_too_large


def test_installed_on_a_plain_site_only():
    site, _ = site_with_limits()
    assert (site.requestFactory, site.protocol, site.timeOut) == (
        limits.LimitedRequest,
        limits.GuardedChannel,
        limits.IDLE,
    )
    assert not limits.install(SimpleNamespace())  # no site yet: mounted again later
    other = server.Site(Seen(), requestFactory=type("Other", (server.Request,), {}))
    with pytest.raises(RuntimeError, match="cannot be set"):
        limits.install(SimpleNamespace(www=SimpleNamespace(site=other)))
