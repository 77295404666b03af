"""The GitHub change hook: signed webhooks in, changes for configured projects out.

Buildbot's own `GitHubEventHandler` only knows the SHA1 `X-Hub-Signature` header. The handler here
requires `X-Hub-Signature-256` on every request (there is no unsigned or SHA1 fallback) and records
pushes and pull requests only for the repositories and branches named in the settings.

Every request is checked cheapest first (method, content type, headers, size, HMAC, JSON depth,
shape: master/hookguard.py) and answered by the handler itself: 4xx naming what is wrong,
202 with what was recorded, 200 "already received" for a delivery (or a push head) recorded
before, 409 for a push whose scheduler is turned off (master/pushes.py), 500 only for a
server-side problem (an unreadable secret).
A push's commits are recorded as one change each, the head last; its build is one
(master/pushes.PushScheduler).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from twisted.internet import defer
from twisted.python import log

from buildbot.process.properties import Properties
from buildbot.util import unicode2bytes
from buildbot.www.hooks.github import GitHubEventHandler

from master import githubapi
from master import hookguard
from master import pushes

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred
    from twisted.web.server import Request

    from buildbot.interfaces import IRenderable
    from buildbot.util.twisted import InlineCallbacksType

PULL_REQUEST_ACTIONS = ("opened", "synchronize", "reopened")

Changes = tuple[list[dict[str, Any]], str]


class ConveyorGitHubHandler(githubapi.GitHubAPIMixin, GitHubEventHandler):
    """GitHubEventHandler that checks X-Hub-Signature-256 and filters on configured projects.

    `projects` maps a GitHub full name ("owner/name", matched case-insensitively) to the one
    branch that is built. `strict` is accepted for the parent's signature but ignored: the
    signature is always required.
    """

    def __init__(
        self,
        secret: str | IRenderable | None,
        strict: bool,
        *,
        projects: Mapping[str, str],
        schedulers: Mapping[str, str] | None = None,
        use_api: bool = False,
        **kwargs: Any,
    ) -> None:
        if not secret:
            raise ValueError("the GitHub change hook needs a webhook secret")
        super().__init__(secret, True, **kwargs)
        self._use_api = use_api
        self._initial = {"projects": dict(projects), "schedulers": dict(schedulers or {})}
        self._pushlog = pushes.PushLog(self.master)
        self._lock = defer.DeferredLock()  # recording is one delivery at a time

    def _current(self, keyword: str) -> dict[str, str]:
        """A keyword of the handler as of the master's current config: ChangeHookResource
        keeps this handler across reconfigs, so it is looked up in the config's own dialect
        on every request; a project added to pipeline.toml is accepted after `buildbot
        reconfig`, without a restart."""
        config = getattr(self.master, "config", None)
        www = getattr(config, "www", None) or {}
        current = www.get("change_hook_dialects", {}).get("github", {}).get("class")
        return getattr(current, "keywords", {}).get(keyword, self._initial[keyword])

    @property
    def _projects(self) -> dict[str, tuple[str, str]]:
        """Lower-cased full name -> (full name as configured, branch)."""
        return {name.lower(): (name, branch) for name, branch in self._current("projects").items()}

    @defer.inlineCallbacks
    def process(self, request: Request) -> InlineCallbacksType[Changes]:
        """Check, record and answer the request here (see master/hookguard.py): the answer
        may be 200, 405, 413 or 415 besides ChangeHookResource's 202, 400 and 500, and no input
        gets a 5xx. The returned Deferred never fires: the request is answered, and
        ChangeHookResource, which waits on it, has nothing to add."""
        try:
            code, message = yield self._receive(request)
        except ValueError as exc:  # hookguard.Refused, and the parent's ValueErrors
            code, message = getattr(exc, "code", 400), str(exc)
        except Exception:  # a server-side problem (the secret …), never the payload's
            log.err(None, "GitHub change hook")
            code, message = 500, "Error processing changes."
        hookguard.answer(request, code, message)
        return (yield defer.Deferred())  # compat: change_hook_answers_itself

    @defer.inlineCallbacks
    def _receive(self, request: Request) -> InlineCallbacksType[tuple[int, str]]:
        event, signature, delivery = hookguard.check_headers(request)
        body = hookguard.read_body(request)
        yield self._verify_signature(body, signature)
        payload = hookguard.parse(body)
        handler = getattr(self, f"handle_{event}", None)
        if handler is None:
            raise hookguard.Refused(f"Unknown event: {event}")
        hookguard.SHAPES.get(event, lambda payload: None)(payload)
        delivery = delivery or "sha256-" + hashlib.sha256(body).hexdigest()
        if event != "push" and (yield self._pushlog.seen(delivery)):
            # (a push delivered again is judged by its head: pushes.verdict)
            return 200, f"already received: delivery {delivery}; nothing recorded"
        changes, src = yield handler(payload, event)
        if not changes:
            return 202, "no change found"
        push = event == "push"
        head = payload["head_commit"]["id"] if push else None
        changes = pushes.mark(changes, delivery, head)
        scheduler = self._current("schedulers").get(changes[-1]["project"]) if push else None
        return (
            yield self._lock.run(
                pushes.record,
                self.master,
                self._pushlog,
                changes,
                src,
                delivery,
                head,
                forced=push and payload.get("forced") is True,
                scheduler=scheduler,
            )
        )

    @defer.inlineCallbacks
    def _verify_signature(self, body: bytes, header: bytes) -> InlineCallbacksType[None]:
        """`header` is sha256=<64 lower-case hex digits> (hookguard.check_headers)."""
        # compat: github_sha1_only (Buildbot's handler checks only the SHA1 header)
        # the secret may be a renderable such as util.Secret(...): render it as the parent does
        props = Properties()
        props.master = self.master
        secret = yield props.render(self._secret)
        if not secret:
            # a server-side problem (500), and an empty key would make any signature forgeable
            raise RuntimeError("the GitHub webhook secret is empty")
        expected = hmac.new(unicode2bytes(secret), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(b"sha256=" + expected.encode("ascii"), header):
            raise hookguard.Refused(
                "X-Hub-Signature-256 does not match the payload: wrong secret or altered body"
            )

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
            log.msg(
                f"GitHub push to {full_name!r} ignored: {what} {ref} is not the configured "
                f"branch refs/heads/{branch}"
            )
            return [], "git"

        head, commits = payload["head_commit"], payload["commits"]
        if not payload.get("created") and head["id"] not in {c["id"] for c in commits}:
            payload = {**payload, "commits": [*commits, head]}  # the head is always built
        changes, src = super().handle_push(payload, event)
        for change in changes:
            # the configured spelling, so schedulers can filter on project == settings' github
            change["project"] = name
            # change["repository"] stays the payload's html_url, for display only: the worker
            # clones from the project's configured clone_url, never from a URL in a webhook.
        return changes, src

    @defer.inlineCallbacks
    def handle_pull_request(
        self, payload: dict[str, Any], event: str
    ) -> InlineCallbacksType[Changes]:
        """A pull request opened, pushed to (synchronize) or reopened on a configured repository,
        against its configured branch, from a branch of that same repository: one change with
        category 'pull', branch refs/pull/N/head and the head commit as revision (the commit
        status goes there). Other actions (closed, edited, labeled …) record nothing.

        Pull requests from forks are ignored: their code would run on the build workers with
        the master's machine at hand, and anybody can open one on a public repository.
        """
        full_name, configured = self._configured(payload)
        if configured is None:
            log.msg(f"GitHub pull request on {full_name!r} ignored: repository not configured")
            return [], "git"
        name, branch = configured
        number = payload.get("number")
        action = payload.get("action")
        pr = payload.get("pull_request") or {}
        what = f"GitHub pull request #{number} on {full_name!r}"
        if action not in PULL_REQUEST_ACTIONS:
            log.msg(
                f"{what} ignored: action {action!r} is not one of {', '.join(PULL_REQUEST_ACTIONS)}"
            )
            return [], "git"
        base_ref = str((pr.get("base") or {}).get("ref") or "")
        if base_ref != branch:
            log.msg(
                f"{what} ignored: it targets {base_ref!r}, not the configured branch {branch!r}"
            )
            return [], "git"
        head = pr.get("head") or {}
        head_repo = str((head.get("repo") or {}).get("full_name") or "")
        if head_repo.lower() != full_name.lower():
            log.msg(
                f"{what} ignored: its head is in another repository ({head_repo or 'deleted'}"
                "); pull requests from forks are not built"
            )
            return [], "git"

        head_sha = str(head.get("sha") or "")
        commit = yield self._fetch_commit(full_name, head_sha)
        message = str(((commit or {}).get("commit") or {}).get("message") or "")
        if message and self._has_skip(message):
            log.msg(f"{what} ignored: its head commit message contains a skip pattern")
            return [], "git"

        changes, src = yield super().handle_pull_request(payload, event)
        author = ((commit or {}).get("commit") or {}).get("author") or {}
        for change in changes:
            change["project"] = name  # the configured spelling, as for pushes
            if author.get("name") and author.get("email"):
                # the head commit's author, so that mail reaches a person (the payload only
                # has the GitHub login of whoever triggered the event)
                change["author"] = f"{author['name']} <{author['email']}>"
        return changes, src

    def _get_commit_msg(self, repo: str, sha: str) -> Deferred[str]:
        # handle_pull_request has fetched the commit (once) and checked the skip patterns
        return defer.succeed("")


def github_hook_dialect(
    secret: str | IRenderable,
    projects: Mapping[str, str],
    *,
    schedulers: Mapping[str, str] | None = None,
    api_url: str | None = None,
    token: str | IRenderable | None = None,
) -> dict[str, dict[str, Any]]:
    """The value for c['www']['change_hook_dialects']: POST /change_hook/github.

    `projects` maps GitHub "owner/name" to the branch to build. GitHubHandler hands the
    `class` option a fixed set of keyword arguments, so `projects` is bound into the class
    with functools.partial. The handler is built on the first request and then cached by
    ChangeHookResource, also across reconfigs: it reads `projects` from the current config's
    partial on each request, so a reconfig changes them; a util.Secret is rendered on each
    request too. A changed api_url or token takes a master restart.

    `schedulers` maps a GitHub "owner/name" to its push scheduler: a push is refused (409)
    while that scheduler is turned off, rather than recorded and never built.

    Pull requests become changes on refs/pull/N/head (`pullrequest_ref` "head"), which GitHub
    keeps in the base repository. With `api_url` (settings.github.api_url) and `token` (a
    util.Secret) the handler asks that API for the head commit of a pull request (its author
    for mail, its message for [skip ci]) and its files; without `api_url` it asks nothing and
    the change's author is the GitHub login that sent the event.
    """
    if not secret:
        raise ValueError("the GitHub change hook needs a webhook secret")
    seen: dict[str, str] = {}
    for name in projects:
        if name.lower() in seen:
            raise ValueError(
                f"GitHub repository {name!r} is configured twice (also as {seen[name.lower()]!r})"
            )
        seen[name.lower()] = name
    handler = functools.partial(
        ConveyorGitHubHandler,
        projects=dict(projects),
        schedulers=dict(schedulers or {}),
        use_api=bool(api_url),
    )
    options: dict[str, Any] = {
        "class": handler,
        "secret": secret,
        "strict": True,
        "pullrequest_ref": "head",
    }
    if api_url:
        options["github_api_endpoint"] = api_url.rstrip("/")
        options["token"] = token
    return {"github": options}
