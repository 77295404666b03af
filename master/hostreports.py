"""What runs where, on the master's web site (mounted by master/site.py):

- `POST <web url>hosts/report`: a host's report (conveyor/hostreports.py), sent by
  conveyor-report after each dpkg run. No log-in: the credential is the host's token
  (`Authorization: Bearer …`, conveyor/hosttokens.py, read from its file at each request, so a
  revocation counts at once). It grants storing that host's own report and nothing else:
  401 without a valid token (missing, unknown or revoked), 413 over MAX_REPORT bytes (the
  Content-Length is checked first and the body is kept up to the limit only, master/limits.py),
  400 for a report that is not one (what is wrong), 403 for a report about another host than
  the token's, 204 when kept.
- `GET <web url>hosts`: per distribution, which hosts run which version and which lag behind,
  as JSON, for readers (the board's rule, master/site.ForReaders).

No token is logged: a refusal names the peer's address and what is wrong, never the header.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import threads
from twisted.python import log
from twisted.web import resource
from twisted.web import server

from conveyor import hostreports
from conveyor import hosttokens
from conveyor import served as served_module
from conveyor import settings as settings_module
from master.site import ForReaders
from master.site import refusal

HOSTS = b"hosts"
REPORT = b"report"


def text_answer(request: Any, code: int, message: str) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
    if code == 401:
        request.setHeader(b"WWW-Authenticate", b'Bearer realm="conveyor host reports"')
    return (message + "\n").encode("utf-8", "replace")


def bearer(request: Any) -> str | None:
    value = (request.getHeader(b"authorization") or "").strip()
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def peer(request: Any) -> str:
    address = request.getClientAddress()
    return str(getattr(address, "host", address))


class ReportResource(resource.Resource):
    """POST hosts/report."""

    isLeaf = True

    def __init__(self, settings: settings_module.Settings):
        super().__init__()
        self.settings = settings
        self.allowed = {
            dist: frozenset(names)
            for dist, names in hostreports.packages_by_distribution(settings).items()
        }

    def render_POST(self, request: Any) -> bytes:
        length = request.getHeader(b"content-length")
        try:
            too_large = int(length) > hostreports.MAX_REPORT if length else False
        except ValueError:
            return text_answer(request, 400, "the Content-Length is not a number")
        if too_large or getattr(request, "body_too_large", False) is True:
            return self.refuse(request, 413, f"a report has at most {hostreports.MAX_REPORT} bytes")
        token = bearer(request)
        if token is None:
            return self.refuse(
                request,
                401,
                "no token: send the host's token as 'Authorization: Bearer TOKEN' "
                "(bin/conveyor host-token add HOST on the master makes one)",
            )
        try:
            tokens = hosttokens.load(hosttokens.tokens_file(self.settings.state_dir))
        except hosttokens.TokenError as exc:
            log.msg(f"host reports: the tokens cannot be read: {exc}")
            return text_answer(request, 503, "the master cannot read its hosts' tokens now")
        host = hosttokens.host_of(tokens, token)
        if host is None:
            return self.refuse(request, 401, "the token is not valid (unknown or revoked)")
        body = request.content.read(hostreports.MAX_REPORT + 1) if request.content else b""
        try:
            report = hostreports.parse(body, self.allowed)
        except hostreports.ReportError as exc:
            code = 413 if len(body) > hostreports.MAX_REPORT else 400
            return self.refuse(request, code, str(exc), host)
        if report["host"] != host:
            return self.refuse(
                request,
                403,
                f"this token is {host}'s: it may report for {host} only, not {report['host']}",
                host,
            )
        try:
            hostreports.record(hostreports.reports_file(self.settings.state_dir), report)
        except (OSError, ValueError) as exc:
            log.msg(f"host reports: {host}'s report cannot be kept: {exc}")
            return text_answer(request, 503, "the master cannot keep the report now")
        request.setResponseCode(204)
        return b""

    def refuse(self, request: Any, code: int, message: str, host: str | None = None) -> bytes:
        who = f"{host} ({peer(request)})" if host else peer(request)
        log.msg(f"host reports: refused {code} from {who}: {message}")
        return text_answer(request, code, message)

    def render(self, request: Any) -> bytes:
        if request.method == b"POST":
            return self.render_POST(request)
        request.setHeader(b"Allow", b"POST")
        return text_answer(request, 405, "hosts send their reports with POST")


def current_view(settings: settings_module.Settings, text_of=None) -> dict:
    """The view (conveyor.hostreports.view) of the kept reports and the served versions (read
    by `text_of(url)`, default: over HTTP, as apt reads them)."""
    text_of = text_of or served_module.fetch
    reports = hostreports.load(hostreports.reports_file(settings.state_dir))
    try:
        tokens = hosttokens.load(hosttokens.tokens_file(settings.state_dir))
    except hosttokens.TokenError:
        tokens = {}
    served = {
        dist: hostreports.served_versions(settings, dist, text_of)
        for dist in settings.distributions
    }
    return {
        "distributions": hostreports.view(
            hostreports.packages_by_distribution(settings),
            reports,
            served,
            hosttokens.revoked(tokens),
        )
    }


class HostsResource(ForReaders, resource.Resource):
    """GET hosts (the view, for readers); its child `report` is for the hosts."""

    def __init__(
        self, master: Any, settings: settings_module.Settings, public: bool, readers: tuple
    ):
        super().__init__()
        self.master, self.settings, self.public, self.readers = master, settings, public, readers
        self.putChild(REPORT, ReportResource(settings))

    def getChild(self, name: bytes, request: Any) -> resource.Resource:
        if name == b"":
            return self
        return resource.NoResource("no such page")

    def render_GET(self, request: Any) -> Any:
        if not self.allowed(request):
            return refusal("What runs where").render(request)

        gone: list = []
        request.notifyFinish().addErrback(gone.append)  # the client went away meanwhile

        def done(view: dict) -> None:
            if not gone:
                request.setHeader(b"Content-Type", b"application/json")
                request.write(json.dumps(view, indent=1).encode())
                request.finish()

        def failed(failure: Any) -> None:
            log.err(failure, "host reports: the view failed")
            if not gone:
                request.setResponseCode(500)
                request.write(b"the hosts' view could not be made; see the master's log\n")
                request.finish()

        threads.deferToThread(current_view, self.settings).addCallbacks(done, failed)
        return server.NOT_DONE_YET
