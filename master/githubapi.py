"""What the GitHub change hook asks GitHub's API (settings.github.api_url): a pull request's
head commit (its author for mail, its message for [skip ci]) and its files. The API is a
nicety: every call gives up after API_TIMEOUT seconds, and a pull request is built without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from twisted.internet import defer
from twisted.python import log

from buildbot.process.properties import Properties
from buildbot.util import httpclientservice

if TYPE_CHECKING:
    from buildbot.util.twisted import InlineCallbacksType

API_TIMEOUT = 5  # seconds; GitHub gives a webhook delivery 10


class GitHubAPIMixin:
    """For a GitHubEventHandler subclass that sets `_use_api`."""

    _use_api: bool

    @defer.inlineCallbacks
    def _fetch_commit(self, repo: str, sha: str) -> InlineCallbacksType[dict[str, Any] | None]:
        """GET /repos/{repo}/commits/{sha} from the configured API, or None: without an API
        (use_api false), on an error, or after API_TIMEOUT seconds. Never raises."""
        if not self._use_api or not sha:
            return None
        try:
            http = yield self._api_session(repo)
            res = yield http.get(f"/repos/{repo}/commits/{sha}", timeout=API_TIMEOUT)
            if 200 <= res.code < 300:
                data = yield res.json()
                return data if isinstance(data, dict) else None
            log.msg(f"GitHub API: commit {sha[:12]} of {repo}: HTTP {res.code}")
        except Exception as exc:  # the API is a nicety: a pull request is built without it
            log.msg(f"GitHub API: commit {sha[:12]} of {repo} not fetched: {type(exc).__name__}")
        return None

    @defer.inlineCallbacks
    def _api_session(self, repo: str) -> InlineCallbacksType[Any]:
        headers = {"User-Agent": "Buildbot"}
        if self._token:
            props = Properties()
            props.master = self.master
            props.setProperty("full_name", repo, "change_hook")
            token = yield props.render(self._token)
            if token:
                headers["Authorization"] = "token " + token
        return httpclientservice.HTTPSession(
            self.master.httpservice,
            self.github_api_endpoint.rstrip("/"),
            headers=headers,
            debug=False,
            verify=self.verify,
        )

    @defer.inlineCallbacks
    def _get_pr_files(self, repo: str, number: int) -> InlineCallbacksType[list[str]]:
        if not self._use_api:
            return []
        try:
            files = yield super()._get_pr_files(repo, number)
        except Exception as exc:
            log.msg(
                f"GitHub API: files of pull request #{number} of {repo} not fetched: "
                f"{type(exc).__name__}"
            )
            return []
        return files
