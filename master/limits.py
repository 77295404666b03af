"""What the master's web site allows every client, before any resource sees a request.

- A request must arrive whole (its request line, its headers and its body) within
  RECEIVE_DEADLINE seconds of its first byte; a client that sends it slower (one byte at a time,
  to hold a connection: "slowloris") gets 408 and its connection is closed. Twisted's own
  timeout only counts idle time, and a slow client is never idle.
- A connection with no request under way is closed after IDLE seconds (Twisted: 12 hours).
- A change hook body keeps at most hookguard.MAX_BODY bytes (`LimitedRequest`): the rest is
  received and dropped, with no memory and no temporary file, and the hook answers 413. A host's
  report (master/hostreports.py) keeps at most hostreports.MAX_REPORT bytes the same way.

`install` makes Buildbot's site use them: Twisted's documented factory attributes
(`requestFactory`, `protocol`, `timeOut`) of the site Buildbot made. A site that is not
Twisted's plain one is refused, so that no limit is silently off (master/site.py stops the
master then).
"""

from __future__ import annotations

import io
from typing import Any

from twisted.python import log
from twisted.web import http
from twisted.web import server

from conveyor.hostreports import MAX_REPORT
from master.hookguard import MAX_BODY
from master.hookguard import answer

RECEIVE_DEADLINE = 30  # seconds from a request's first byte to its last
IDLE = 120  # seconds a connection may stay open with no request under way
TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


# the bodies kept at most, by the start of their path (a host's report: master/hostreports.py)
BODY_LIMITS = ((b"/change_hook", MAX_BODY), (b"/hosts/report", MAX_REPORT))


class LimitedRequest(server.Request):
    """A request that keeps at most MAX_BODY bytes of a change hook's body (MAX_REPORT of a
    host's report)."""

    body_too_large = False

    def _path(self) -> bytes | None:
        path = getattr(self.channel, "_path", None) or getattr(self, "uri", None)
        return path if isinstance(path, bytes) else None

    def _limited(self) -> bool:
        path = self._path()
        return path is None or path.startswith(b"/change_hook")

    def _body_limit(self) -> int | None:
        path = self._path()
        if path is None:
            return MAX_BODY
        return next((limit for start, limit in BODY_LIMITS if path.startswith(start)), None)

    def render(self, resrc: Any) -> None:
        if self._limited() and self.method not in (b"GET", b"HEAD", b"POST"):
            answer(self, 405, "the GitHub change hook only accepts POST")  # not Twisted's 501
            return
        super().render(resrc)

    def gotLength(self, length: int | None) -> None:
        limit = self._body_limit()
        if length is not None and limit is not None and length > limit:
            self.body_too_large, self.content = True, io.BytesIO()
        else:
            super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        limit = self._body_limit()
        if (
            not self.body_too_large
            and limit is not None
            and (self.content.tell() + len(data) > limit)
        ):
            self.content.close()
            self.body_too_large, self.content = True, io.BytesIO()
        if not self.body_too_large:
            super().handleContentChunk(data)


class GuardedChannel(http.HTTPChannel):
    """Twisted's HTTP/1.1 channel with a deadline for receiving each request."""

    _deadline: Any = None

    def dataReceived(self, data: bytes) -> None:
        if self._deadline is None:  # the first byte of a request
            self._deadline = self.callLater(RECEIVE_DEADLINE, self._too_slow)
        super().dataReceived(data)

    def allContentReceived(self) -> None:
        self._cancel_deadline()
        super().allContentReceived()

    def connectionLost(self, reason: Any) -> None:
        self._cancel_deadline()
        super().connectionLost(reason)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            if self._deadline.active():
                self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        peer = self.transport.getPeer()
        log.msg(
            f"web: {getattr(peer, 'host', peer)} did not send its request within "
            f"{RECEIVE_DEADLINE} s: 408, connection closed"
        )
        self.transport.write(TIMED_OUT)
        self.timeoutConnection()  # closes, and aborts if the client does not read either


def install(master: Any) -> bool:
    """Give the master's web site these limits (from its next connection on). False if there
    is no site yet; a RuntimeError if it is not one these limits fit."""
    site = getattr(getattr(master, "www", None), "site", None)
    if site is None:
        return False
    if not isinstance(site, server.Site) or (
        site.requestFactory not in (server.Request, LimitedRequest)
        or getattr(site.protocol, "__func__", site.protocol)
        not in (http.HTTPFactory.protocol, GuardedChannel)
    ):
        raise RuntimeError(
            "the master's web site is not Twisted's plain Site: the change "
            "hook's body limit and the slow-client deadline cannot be set "
            "(master/limits.py)"
        )
    if site.requestFactory is not LimitedRequest:
        log.msg(
            f"web: bodies of the change hook larger than {MAX_BODY} bytes are dropped; "
            f"a request must arrive within {RECEIVE_DEADLINE} s, idle connections are "
            f"closed after {IDLE} s"
        )
    site.requestFactory, site.protocol, site.timeOut = LimitedRequest, GuardedChannel, IDLE
    return True
