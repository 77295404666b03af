"""What Conveyor adds to the master's web site (Buildbot 4 has no place for it in the config).

Reports and packages behind log-in: the master's web server serves the artifact store
(coverage reports, which are the project's source, and every built .deb, pull requests' too)
at <web url>artifacts/, to logged-in users with a role only; `[auth] public_reports = true`
opens it to all.

Buildbot's /sse (every event: builds, steps, properties) asks no authz, unlike the REST API and
the WebSocket: it is guarded here the same way, so that a private installation ([auth] public
false, master/authz.py) shows anonymous users nothing.

The limits of every client (master/limits.py): a change hook body of at most 25 MB, a request
received whole within 30 s, idle connections closed. If they cannot be set, the master stops
with a message rather than run without them.

What runs where (master/hostreports.py): hosts POST their reports to <web url>hosts/report
with their own token (no log-in); readers GET <web url>hosts.

Only the apt repository itself (dists/, pool/, the public key, the history) is served without
log-in, by the repository's own web server. Buildbot 4 serves no files of its own, so a small
service puts a Twisted resource beside /api and /auth on the master's site; the session is
Buildbot's (the cookie /auth/login sets).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet import reactor
from twisted.python import log
from twisted.web import pages
from twisted.web import resource
from twisted.web import static

from buildbot.util import service

from master import limits

ARTIFACTS = b"artifacts"
SSE = b"sse"


def reader(master: Any, request: Any, readers: tuple[str, ...]) -> bool:
    """Whether the request's user is logged in with one of the roles `readers` (the roles
    Buildbot's authz gives it)."""
    try:
        info = request.getSession().user_info or {}
    except Exception:  # no session: anonymous
        return False
    if info.get("anonymous") or not info.get("username"):
        return False
    return bool(set(master.www.authz.getRolesFromUser(info)) & set(readers))


class ForReaders:
    """Base of a resource for readers only (or all, when `public`)."""

    master: Any
    public: bool
    readers: tuple[str, ...]

    def allowed(self, request: Any) -> bool:
        return self.public or reader(self.master, request, self.readers)


def refusal(what: str) -> resource.Resource:
    return pages.errorPage(
        401,
        "Log in to see this",
        f"{what} are for logged-in users with a role: log in to the web UI first.",
    )


class ArtifactsResource(ForReaders, resource.Resource):
    """The artifact store as static files, for readers (or all, when public)."""

    def __init__(self, master: Any, directory: str, public: bool, readers: tuple[str, ...]):
        super().__init__()
        self.master, self.files = master, static.File(directory)
        self.public, self.readers = public, readers

    def getChildWithDefault(self, name: bytes, request: Any) -> resource.Resource:
        if not self.allowed(request):
            return refusal("Coverage reports and packages")
        return self.files.getChildWithDefault(name, request)

    def render(self, request: Any) -> bytes:
        if not self.allowed(request):
            return refusal("Coverage reports and packages").render(request)
        return self.files.render(request)


class GuardedEvents(ForReaders, resource.Resource):
    """Buildbot's /sse resource, for readers only."""

    isLeaf = True

    def __init__(
        self, master: Any, events: resource.Resource, public: bool, readers: tuple[str, ...]
    ):
        super().__init__()
        self.master, self.events, self.public, self.readers = master, events, public, readers

    def render(self, request: Any) -> Any:
        if not self.allowed(request):
            return refusal("Build events").render(request)
        return self.events.render(request)


class SiteService(service.BuildbotService):
    """As soon as the master's site exists, and again after each reconfig (the directory or
    `public` may change): mounts ArtifactsResource at /artifacts, guards Buildbot's /sse, and
    sets the site's limits (master/limits.py)."""

    name = "conveyor-site"

    def checkConfig(
        self,
        directory: str,
        readers: tuple[str, ...],
        public: bool = False,
        public_reports: bool = False,
        hosts_settings: Any = None,
    ) -> None:
        pass

    @defer.inlineCallbacks
    def reconfigService(
        self,
        directory: str,
        readers: tuple[str, ...],
        public: bool = False,
        public_reports: bool = False,
        hosts_settings: Any = None,
    ) -> Any:
        """`readers`: the roles that may read; `public`: anyone may read, but the artifacts
        ([auth] public); `public_reports`: anyone may read the artifacts; `hosts_settings`:
        the settings of what runs where (master/hostreports.py), None for none."""
        self.directory, self.readers, self.hosts_settings = directory, readers, hosts_settings
        self.public, self.public_reports = public, public_reports
        yield self.mount()

    def mount(self, tries: int = 600) -> defer.Deferred:
        root = getattr(getattr(self.master, "www", None), "root", None)
        if root is None:  # the web service sets its site up after this service
            if tries:
                reactor.callLater(0.1, self.mount, tries - 1)
            else:
                self.fail(RuntimeError("the master's web site did not start within 60 s"))
            return defer.succeed(None)
        try:
            root.putChild(
                ARTIFACTS,
                ArtifactsResource(self.master, self.directory, self.public_reports, self.readers),
            )
            events = root.getStaticEntity(SSE)
            if isinstance(events, GuardedEvents):
                events = events.events
            if events is None:
                raise RuntimeError("Buildbot's web site has no /sse to guard")
            root.putChild(SSE, GuardedEvents(self.master, events, self.public, self.readers))
            if self.hosts_settings is not None:
                from master import hostreports  # it builds on this module's ForReaders

                root.putChild(
                    hostreports.HOSTS,
                    hostreports.HostsResource(
                        self.master, self.hosts_settings, self.public, self.readers
                    ),
                )
            if not limits.install(self.master):
                raise RuntimeError("the master's web site has a root but no site")
        except Exception as exc:
            self.fail(exc)
        return defer.succeed(None)

    def fail(self, exc: Exception) -> None:
        """No guard is silently off: the master stops, saying why."""
        log.err(
            exc,
            "conveyor-site: the web site's guards and limits cannot be set "
            "(master/site.py, master/limits.py); the master stops",
        )
        reactor.stop()
