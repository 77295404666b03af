"""What Conveyor adds to the master's web site (Buildbot 4 has no place for it in the config).

Reports and packages behind log-in: the master's web server serves the artifact store
(coverage reports, which are the project's source, and every built .deb, pull requests' too)
at <web url>artifacts/, to logged-in users only; `[auth] public_reports = true` opens it to all.

The change hook's body limit: the site's requests keep at most 25 MB of a /change_hook body
(master/hookguard.py), before Twisted has buffered it.

Only the apt repository itself (dists/, pool/, the public key, the history) is served without
log-in, by the repository's own web server. Buildbot 4 serves no files of its own, so a small
service puts a Twisted resource beside /api and /auth on the master's site; the session is
Buildbot's (the cookie /auth/login sets).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet import reactor
from twisted.web import pages
from twisted.web import resource
from twisted.web import static

from buildbot.util import service

from master import hookguard

ARTIFACTS = b"artifacts"


def logged_in(request: Any) -> bool:
    try:
        info = request.getSession().user_info or {}
    except Exception:  # no session: anonymous
        return False
    return bool(info.get("username")) and not info.get("anonymous")


class ArtifactsResource(resource.Resource):
    """The artifact store as static files, for logged-in users (or all, when public)."""

    def __init__(self, directory: str, public: bool):
        super().__init__()
        self.files = static.File(directory)
        self.public = public

    def refuse(self) -> resource.Resource:
        return pages.errorPage(401, "Log in to see this",
                               "Coverage reports and packages are for logged-in users: log in "
                               "to the web UI first.")

    def getChildWithDefault(self, name: bytes, request: Any) -> resource.Resource:
        if not (self.public or logged_in(request)):
            return self.refuse()
        return self.files.getChildWithDefault(name, request)

    def render(self, request: Any) -> bytes:
        if not (self.public or logged_in(request)):
            return self.refuse().render(request)
        return self.files.render(request)


class SiteService(service.BuildbotService):
    """As soon as the master's site exists, and again after each reconfig (the directory or
    `public` may change): mounts ArtifactsResource at /artifacts, and makes the site's requests
    LimitedRequests (the change hook's body limit)."""

    name = "conveyor-site"

    def checkConfig(self, directory: str, public: bool = False) -> None:
        pass

    @defer.inlineCallbacks
    def reconfigService(self, directory: str, public: bool = False) -> Any:
        self.directory, self.public = directory, public
        yield self.mount()

    def mount(self, tries: int = 100) -> defer.Deferred:
        root = getattr(getattr(self.master, "www", None), "root", None)
        if root is None:  # the web service sets its site up after this service
            if tries:
                reactor.callLater(0.1, self.mount, tries - 1)
            return defer.succeed(None)
        root.putChild(ARTIFACTS, ArtifactsResource(self.directory, self.public))
        hookguard.install_body_limit(self.master)
        return defer.succeed(None)
