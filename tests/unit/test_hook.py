"""The GitHub change hook (master/changes.py), driven through Buildbot's real ChangeHookResource.

The payloads are real GitHub webhook deliveries (tests/fixtures/github-webhooks/, a copy of the
team's shared fixtures, MIT licence beside them), all for
Codertocat/Hello-World except ping (Octocoders/Hello-World). Each test signs the exact bytes it
sends, as GitHub does, with the secret served by a fake secret provider.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.python import log
from twisted.trial import unittest

from buildbot.plugins import util
from buildbot.secrets.manager import SecretManager
from buildbot.test.fake import httpclientservice as fakehttpclientservice
from buildbot.test.fake.secrets import FakeSecretStorage
from buildbot.test.fake.web import FakeRequest
from buildbot.test.fake.web import fakeMasterForHooks
from buildbot.test.reactor import TestReactorMixin
from buildbot.www.change_hook import ChangeHookResource

from master.changes import github_hook_dialect

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "github-webhooks"
SECRET_NAME = "github-webhook-secret"
SECRET = "s3cret-for-tests"
REPO = "Codertocat/Hello-World"
NEW_BRANCH_SHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"

MISSING = b"missing X-Hub-Signature-256 header: the request is not signed with the webhook secret"
MISMATCH = b"X-Hub-Signature-256 does not match the payload: wrong secret or altered body"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sign(body: bytes, secret: str = SECRET) -> bytes:
    return b"sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()


def make_request(event: bytes, body: bytes, headers: dict[bytes, bytes] | None = None,
                 signed: bool = True) -> FakeRequest:
    request = FakeRequest(content=body)
    request.uri = b"/change_hook/github"
    request.method = b"POST"
    request.received_headers = {b"X-GitHub-Event": event, b"Content-Type": b"application/json"}
    if signed:
        request.received_headers[b"X-Hub-Signature-256"] = sign(body)
    request.received_headers.update(headers or {})
    return request


class HookTestCase(TestReactorMixin, unittest.TestCase):
    """Buildbot's real ChangeHookResource on a fake master with a fake secret store, the hook
    configured by master.changes.github_hook_dialect; any GitHub API call that a test does not
    expect fails it. Subclasses set `api_url` (and get the token) to let the hook ask the API."""

    projects: dict[str, str] = {"codertocat/hello-world": "master"}
    secret: Any = util.Secret(SECRET_NAME)
    api_url: str | None = None
    token: tuple[str, str] | None = None  # (secret name, value) for the API

    @defer.inlineCallbacks
    def setUp(self) -> Any:
        self.setup_test_reactor()
        self.master = yield fakeMasterForHooks(self)
        headers = {"User-Agent": "Buildbot"}
        if self.api_url and self.token:
            headers["Authorization"] = f"token {self.token[1]}"
        self.http = yield fakehttpclientservice.HTTPClientService.getService(
            self.master, self, self.api_url or "https://api.github.com", headers=headers,
            debug=False, verify=True)
        storage = FakeSecretStorage()
        secrets = SecretManager()
        secrets.services = [storage]
        yield secrets.setServiceParent(self.master)
        yield self.master.startService()
        self.addCleanup(self.master.stopService)
        storage.reconfigService(secretdict={SECRET_NAME: SECRET, **dict([self.token] if
                                                                         self.token else [])})
        token = util.Secret(self.token[0]) if self.api_url and self.token else None
        self.hook = ChangeHookResource(dialects=github_hook_dialect(
            self.secret, self.projects, api_url=self.api_url, token=token), master=self.master)
        self.logged: list[str] = []

        def observe(event: dict[str, Any]) -> None:
            self.logged.append(" ".join(str(m) for m in event.get("message", ())))
        log.addObserver(observe)
        self.addCleanup(log.removeObserver, observe)

    @property
    def changes(self) -> list[dict[str, Any]]:
        return self.master.data.updates.changesAdded


class GitHubHookTest(HookTestCase):
    @defer.inlineCallbacks
    def post(self, event: bytes, body: bytes, **kwargs: Any) -> Any:
        request = make_request(event, body, **kwargs)
        yield request.test_render(self.hook)
        return request

    def assertRejected(self, request: FakeRequest, message: bytes) -> None:
        request.setResponseCode.assert_called_with(400, message)
        self.assertEqual(request.written, message)
        self.assertEqual(self.changes, [])

    def assertNothingRecorded(self, request: FakeRequest, reason: str) -> None:
        request.setResponseCode.assert_called_with(202)
        self.assertEqual(request.written, b"no change found")
        self.assertEqual(self.changes, [])
        self.assertTrue(any(reason in line for line in self.logged),
                        f"no log line with {reason!r} in {self.logged!r}")


class SignatureTest(GitHubHookTest):
    @defer.inlineCallbacks
    def test_signed_push_to_configured_branch_is_recorded(self) -> Any:
        request = yield self.post(b"push", fixture("push-with-new-branch.payload.json"))
        request.setResponseCode.assert_called_with(202)
        self.assertEqual(request.written, b"1 change found")
        self.assertEqual(len(self.changes), 1)
        change = self.changes[0]
        self.assertEqual(change["revision"], NEW_BRANCH_SHA)
        self.assertEqual(change["branch"], "master")
        # the name as configured, whatever GitHub's spelling
        self.assertEqual(change["project"], "codertocat/hello-world")
        self.assertEqual(change["repository"], "https://github.com/Codertocat/Hello-World")
        self.assertEqual(change["category"], None)
        self.assertEqual(change["src"], "git")
        self.assertEqual(change["files"], ["README.md"])
        self.assertEqual(change["author"],
                         "Codertocat <21031067+Codertocat@users.noreply.github.com>")

    @defer.inlineCallbacks
    def test_wrong_secret(self) -> Any:
        body = fixture("push-with-new-branch.payload.json")
        request = yield self.post(b"push", body,
                                  headers={b"X-Hub-Signature-256": sign(body, "not-the-secret")})
        self.assertRejected(request, MISMATCH)

    @defer.inlineCallbacks
    def test_body_altered_after_signing(self) -> Any:
        body = fixture("push-with-new-branch.payload.json")
        altered = body.replace(NEW_BRANCH_SHA.encode(), b"0" * 40)
        self.assertNotEqual(altered, body)
        request = yield self.post(b"push", altered, headers={b"X-Hub-Signature-256": sign(body)})
        self.assertRejected(request, MISMATCH)

    @defer.inlineCallbacks
    def test_missing_signature(self) -> Any:
        request = yield self.post(b"push", fixture("push-with-new-branch.payload.json"),
                                  signed=False)
        self.assertRejected(request, MISSING)

    @defer.inlineCallbacks
    def test_sha1_signature_only_is_refused(self) -> Any:
        body = fixture("push-with-new-branch.payload.json")
        sha1 = b"sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest().encode()
        request = yield self.post(b"push", body, signed=False,
                                  headers={b"X-Hub-Signature": sha1})
        self.assertRejected(request, MISSING)

    @defer.inlineCallbacks
    def test_sha1_digest_in_sha256_header_is_refused(self) -> Any:
        body = fixture("push-with-new-branch.payload.json")
        sha1 = b"sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest().encode()
        request = yield self.post(b"push", body, headers={b"X-Hub-Signature-256": sha1})
        self.assertRejected(
            request, b"unsupported X-Hub-Signature-256 type: expected sha256=<hex digest>")

    @defer.inlineCallbacks
    def test_malformed_signature(self) -> Any:
        body = fixture("push-with-new-branch.payload.json")
        bare = sign(body)[len(b"sha256="):]
        request = yield self.post(b"push", body, headers={b"X-Hub-Signature-256": bare})
        self.assertRejected(
            request, b"malformed X-Hub-Signature-256 header: expected sha256=<hex digest>")

    @defer.inlineCallbacks
    def test_form_encoded_content_type_is_refused(self) -> Any:
        body = b"payload=" + fixture("push-with-new-branch.payload.json")
        request = yield self.post(
            b"push", body, headers={b"Content-Type": b"application/x-www-form-urlencoded"})
        self.assertRejected(
            request,
            b"unsupported Content-Type: set the webhook's content type to application/json")

    @defer.inlineCallbacks
    def test_signed_body_that_is_not_json(self) -> Any:
        request = yield self.post(b"push", b"not json")
        request.setResponseCode.assert_called_with(400, request.written)
        self.assertIn(b"Expecting value", request.written)
        self.assertEqual(self.changes, [])

    @defer.inlineCallbacks
    def test_unsigned_ping_is_refused(self) -> Any:
        request = yield self.post(b"ping", fixture("ping-payload.json"), signed=False)
        self.assertRejected(request, MISSING)

    @defer.inlineCallbacks
    def test_ping(self) -> Any:
        request = yield self.post(b"ping", fixture("ping-payload.json"))
        request.setResponseCode.assert_called_with(202)
        self.assertEqual(request.written, b"no change found")
        self.assertEqual(self.changes, [])

    @defer.inlineCallbacks
    def test_unknown_event(self) -> Any:
        request = yield self.post(b"issues", b"{}")
        self.assertRejected(request, b"Unknown event: issues")


class PlainSecretTest(GitHubHookTest):
    """The secret may also be given as a plain string."""
    secret = SECRET

    @defer.inlineCallbacks
    def test_signed_push_is_recorded(self) -> Any:
        request = yield self.post(b"push", fixture("push-with-new-branch.payload.json"))
        self.assertEqual(request.written, b"1 change found")
        self.assertEqual([c["revision"] for c in self.changes], [NEW_BRANCH_SHA])


class UnknownSecretTest(GitHubHookTest):
    """A secret missing from the secret store is a server error: 500, nothing recorded."""
    secret = util.Secret("no-such-secret")

    @defer.inlineCallbacks
    def test_push_is_not_recorded(self) -> Any:
        request = yield self.post(b"push", fixture("push-with-new-branch.payload.json"))
        request.setResponseCode.assert_called_with(500, b"Error processing changes.")
        self.assertEqual(self.changes, [])
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 1)


class ProjectFilterTest(GitHubHookTest):
    projects = {"Codertocat/Hello-World": "master", "sprintly/snowbird": "main"}

    @defer.inlineCallbacks
    def test_configured_spelling_is_the_project(self) -> Any:
        yield self.post(b"push", fixture("push-with-no-username-committer.payload.json"))
        self.assertEqual([(c["project"], c["branch"], c["revision"]) for c in self.changes],
                         [(REPO, "master", NEW_BRANCH_SHA)])

    @defer.inlineCallbacks
    def test_tag_deletion_is_ignored(self) -> Any:
        # push-payload.json deletes refs/tags/simple-tag
        request = yield self.post(b"push", fixture("push-payload.json"))
        self.assertNothingRecorded(request, "refs/tags/simple-tag was deleted")

    @defer.inlineCallbacks
    def test_tag_push_is_ignored(self) -> Any:
        payload = json.loads(fixture("push-with-new-branch.payload.json"))
        payload["ref"] = "refs/tags/v1.0"
        request = yield self.post(b"push", json.dumps(payload).encode())
        self.assertNothingRecorded(request, "tag refs/tags/v1.0 is not the configured branch")

    @defer.inlineCallbacks
    def test_branch_deletion_is_ignored(self) -> Any:
        payload = json.loads(fixture("push-with-new-branch.payload.json"))
        payload.update(created=False, deleted=True, head_commit=None, commits=[])
        request = yield self.post(b"push", json.dumps(payload).encode())
        self.assertNothingRecorded(request, "refs/heads/master was deleted")

    @defer.inlineCallbacks
    def test_pull_request_on_configured_repository_is_a_change_on_its_head(self) -> Any:
        # without an API URL in the dialect, the hook asks GitHub nothing
        # (more in tests/unit/test_pull_requests.py)
        head = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
        request = yield self.post(b"pull_request", fixture("pull_request-opened.payload.json"))
        self.assertEqual(request.written, b"1 change found")
        [change] = self.changes
        self.assertEqual((change["branch"], change["category"], change["revision"]),
                         ("refs/pull/2/head", "pull", head))

    @defer.inlineCallbacks
    def test_closed_pull_request_is_ignored(self) -> Any:
        request = yield self.post(b"pull_request", fixture("pull_request-closed.payload.json"))
        self.assertNothingRecorded(request, "action 'closed' is not one of")


class ForeignRepositoryTest(GitHubHookTest):
    projects = {"sprintly/snowbird": "main"}

    @defer.inlineCallbacks
    def test_push_is_ignored(self) -> Any:
        request = yield self.post(b"push", fixture("push-with-new-branch.payload.json"))
        self.assertNothingRecorded(request, "'Codertocat/Hello-World' ignored: repository not "
                                            "configured")

    @defer.inlineCallbacks
    def test_pull_request_is_ignored_without_calling_github(self) -> Any:
        request = yield self.post(b"pull_request",
                                  fixture("pull_request-synchronize.payload.json"))
        self.assertNothingRecorded(request, "repository not configured")

    @defer.inlineCallbacks
    def test_forged_push_is_still_refused(self) -> Any:
        body = fixture("push-with-new-branch.payload.json")
        request = yield self.post(b"push", body,
                                  headers={b"X-Hub-Signature-256": sign(body, "guess")})
        self.assertRejected(request, MISMATCH)


    @defer.inlineCallbacks
    def test_a_project_added_by_reconfig_is_accepted_without_restart(self) -> Any:
        body = fixture("push-with-new-branch.payload.json")
        request = yield self.post(b"push", body)  # the handler is built and cached now
        self.assertNothingRecorded(request, "repository not configured")
        # `buildbot reconfig` with the repository added to pipeline.toml
        self.master.config.www = {"change_hook_dialects": github_hook_dialect(
            self.secret, {**self.projects, REPO: "master"})}
        request = yield self.post(b"push", body)
        self.assertEqual(request.written, b"1 change found")
        self.assertEqual(self.changes[0]["project"], REPO)


class OtherBranchTest(GitHubHookTest):
    projects = {"Codertocat/Hello-World": "main"}

    @defer.inlineCallbacks
    def test_push_to_unconfigured_branch_is_ignored(self) -> Any:
        request = yield self.post(b"push", fixture("push-with-new-branch.payload.json"))
        self.assertNothingRecorded(
            request, "ref refs/heads/master is not the configured branch refs/heads/main")


class DialectTest(unittest.TestCase):
    def test_dialect_shape(self) -> None:
        dialect = github_hook_dialect(util.Secret(SECRET_NAME), {REPO: "master"})
        self.assertEqual(set(dialect), {"github"})
        options = dialect["github"]
        self.assertEqual(options["strict"], True)
        self.assertEqual(options["class"].keywords,
                         {"projects": {REPO: "master"}, "use_api": False})
        self.assertEqual(options["pullrequest_ref"], "head")

    def test_secret_is_required(self) -> None:
        with self.assertRaises(ValueError):
            github_hook_dialect("", {REPO: "master"})

    def test_repository_configured_twice(self) -> None:
        with self.assertRaisesRegex(ValueError, "configured twice"):
            github_hook_dialect(SECRET, {REPO: "master", REPO.lower(): "main"})
