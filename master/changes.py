"""The GitHub change hook: signed webhooks in, changes for configured projects out.

Buildbot's own `GitHubEventHandler` only knows the SHA1 `X-Hub-Signature` header. The handler here
requires `X-Hub-Signature-256` on every request (there is no unsigned or SHA1 fallback) and records
pushes only for the repositories and branches named in the settings.

A `ValueError` raised while handling a request becomes HTTP 400 with its message as the body
(buildbot.www.change_hook.ChangeHookResource); any other exception becomes 500 "Error processing
changes." and is logged. Either way nothing is recorded.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from twisted.internet import defer
from twisted.python import log

from buildbot.process.properties import Properties
from buildbot.util import unicode2bytes
from buildbot.www.hooks.github import GitHubEventHandler

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred
    from twisted.web.server import Request

    from buildbot.interfaces import IRenderable
    from buildbot.util.twisted import InlineCallbacksType

SIGNATURE_HEADER = b"X-Hub-Signature-256"

Changes = tuple[list[dict[str, Any]], str]


class ConveyorGitHubHandler(GitHubEventHandler):
    """GitHubEventHandler that checks X-Hub-Signature-256 and filters on configured projects.

    `projects` maps a GitHub full name ("owner/name", matched case-insensitively) to the one
    branch that is built. `strict` is accepted for the parent's signature but ignored: the
    signature is always required.
    """

    def __init__(self, secret: str | IRenderable | None, strict: bool, *,
                 projects: Mapping[str, str], **kwargs: Any) -> None:
        if not secret:
            raise ValueError("the GitHub change hook needs a webhook secret")
        super().__init__(secret, True, **kwargs)
        # lower-cased full name -> (full name as configured, branch)
        self._projects: dict[str, tuple[str, str]] = {
            name.lower(): (name, branch) for name, branch in projects.items()}

    @defer.inlineCallbacks
    def _get_payload(self, request: Request) -> InlineCallbacksType[dict[str, Any]]:
        # Replaces the parent's version entirely: the body can be read only once, and the
        # signature must be checked on exactly those bytes before anything is parsed.
        assert request.content is not None
        body: bytes = request.content.read()
        yield self._verify_signature(body, request.getHeader(SIGNATURE_HEADER))

        content_type = request.getHeader(b"Content-Type") or b""
        if content_type.split(b";")[0].strip().lower() != b"application/json":
            raise ValueError("unsupported Content-Type: set the webhook's content type to "
                             "application/json")
        payload = json.loads(body)  # JSONDecodeError / UnicodeDecodeError are ValueErrors
        if not isinstance(payload, dict):
            raise ValueError("the payload is not a JSON object")
        return payload

    @defer.inlineCallbacks
    def _verify_signature(self, body: bytes, header: bytes | None) -> InlineCallbacksType[None]:
        if not header:
            raise ValueError("missing X-Hub-Signature-256 header: the request is not signed "
                             "with the webhook secret")
        kind, sep, digest = header.partition(b"=")
        if not sep or not digest:
            raise ValueError("malformed X-Hub-Signature-256 header: expected sha256=<hex digest>")
        if kind != b"sha256":
            raise ValueError("unsupported X-Hub-Signature-256 type: expected sha256=<hex digest>")

        # the secret may be a renderable such as util.Secret(...): render it as the parent does
        props = Properties()
        props.master = self.master
        secret = yield props.render(self._secret)
        if not secret:
            # a server-side problem (500), and an empty key would make any signature forgeable
            raise RuntimeError("the GitHub webhook secret is empty")

        expected = hmac.new(unicode2bytes(secret), body, hashlib.sha256).hexdigest()
        # compare bytes: compare_digest refuses non-ASCII str, and the header is untrusted input
        if not hmac.compare_digest(expected.encode("ascii"), digest.lower()):
            raise ValueError("X-Hub-Signature-256 does not match the payload: wrong secret or "
                             "altered body")

    def _configured(self, payload: dict[str, Any]) -> tuple[str, tuple[str, str] | None]:
        """The payload's repository full name, and its (configured name, branch) if any."""
        full_name = str((payload.get("repository") or {}).get("full_name") or "")
        return full_name, self._projects.get(full_name.lower())

    def handle_push(self, payload: dict[str, Any], event: str) -> Changes:
        full_name, configured = self._configured(payload)
        ref = str(payload.get("ref") or "")
        if configured is None:
            log.msg(f"GitHub push to {full_name!r} ignored: repository not configured")
            return [], "git"
        name, branch = configured
        if payload.get("deleted"):
            log.msg(f"GitHub push to {full_name!r} ignored: {ref} was deleted")
            return [], "git"
        if ref != f"refs/heads/{branch}":
            what = "tag" if ref.startswith("refs/tags/") else "ref"
            log.msg(f"GitHub push to {full_name!r} ignored: {what} {ref} is not the configured "
                    f"branch refs/heads/{branch}")
            return [], "git"

        changes, src = super().handle_push(payload, event)
        for change in changes:
            # the configured spelling, so schedulers can filter on project == settings' github
            change["project"] = name
            # change["repository"] stays the payload's html_url, for display only: the worker
            # clones from the project's configured clone_url, never from a URL in a webhook.
        return changes, src

    def handle_pull_request(self, payload: dict[str, Any], event: str) -> Deferred[Changes]:
        # Configured repositories keep Buildbot's behaviour (branch refs/pull/N/merge, category
        # 'pull'); no builder uses those changes yet.
        full_name, configured = self._configured(payload)
        if configured is None:
            log.msg(f"GitHub pull request on {full_name!r} ignored: repository not configured")
            return defer.succeed(([], "git"))
        return super().handle_pull_request(payload, event)


def github_hook_dialect(secret: str | IRenderable,
                        projects: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The value for c['www']['change_hook_dialects']: POST /change_hook/github.

    `projects` maps GitHub "owner/name" to the branch to build. GitHubHandler hands the
    `class` option a fixed set of keyword arguments, so `projects` is bound into the class
    with functools.partial. The handler is built on the first request and then cached by
    ChangeHookResource, also across reconfigs: a changed `projects` takes a master restart
    (a util.Secret is rendered on each request, so a changed secret file does not).
    """
    if not secret:
        raise ValueError("the GitHub change hook needs a webhook secret")
    seen: dict[str, str] = {}
    for name in projects:
        if name.lower() in seen:
            raise ValueError(f"GitHub repository {name!r} is configured twice "
                             f"(also as {seen[name.lower()]!r})")
        seen[name.lower()] = name
    handler = functools.partial(ConveyorGitHubHandler, projects=dict(projects))
    return {"github": {"class": handler, "secret": secret, "strict": True}}
