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
import uuid
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

from master import hookguard
from master.changes import github_hook_dialect

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "github-webhooks"
SECRET_NAME = "github-webhook-secret"
SECRET = "s3cret-for-tests"
REPO = "Codertocat/Hello-World"
NEW_BRANCH_SHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"

MISSING = b"missing X-Hub-Signature-256 header: the request is not signed with the webhook secret"
MISMATCH = b"X-Hub-Signature-256 does not match the payload: wrong secret or altered body"
MALFORMED = b"malformed X-Hub-Signature-256 header: expected sha256=<64 lower-case hex digits>"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sign(body: bytes, secret: str = SECRET) -> bytes:
    return b"sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()


def make_request(
    event: bytes, body: bytes, headers: dict[bytes, bytes] | None = None, signed: bool = True
) -> FakeRequest:
    request = FakeRequest(content=body)
    request.uri = b"/change_hook/github"
    request.method = b"POST"
    request.received_headers = {
        b"X-GitHub-Event": event,
        b"Content-Type": b"application/json",
        b"X-GitHub-Delivery": str(uuid.uuid4()).encode(),
    }
    if signed:
        request.received_headers[b"X-Hub-Signature-256"] = sign(body)
    request.received_headers.update(headers or {})
    request.received_headers = {k: v for k, v in request.received_headers.items() if v is not None}
    return request


class HookTestCase(TestReactorMixin, unittest.TestCase):
    """Buildbot's real ChangeHookResource on a fake master with a fake secret store, the hook
    configured by master.changes.github_hook_dialect; any GitHub API call that a test does not
    expect fails it. Subclasses set `api_url` (and get the token) to let the hook ask the API."""

    projects: dict[str, str] = {"codertocat/hello-world": "master"}
    schedulers: dict[str, str] = {}  # project -> push scheduler (none: not asked)
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
            self.master,
            self,
            self.api_url or "https://api.github.com",
            headers=headers,
            debug=False,
            verify=True,
        )
        storage = FakeSecretStorage()
        secrets = SecretManager()
        secrets.services = [storage]
        yield secrets.setServiceParent(self.master)
        yield self.master.startService()
        self.addCleanup(self.master.stopService)
        storage.reconfigService(
            secretdict={SECRET_NAME: SECRET, **dict([self.token] if self.token else [])}
        )
        token = util.Secret(self.token[0]) if self.api_url and self.token else None
        self.hook = ChangeHookResource(
            dialects=github_hook_dialect(
                self.secret,
                self.projects,
                schedulers=self.schedulers,
                api_url=self.api_url,
                token=token,
            ),
            master=self.master,
        )
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

    def assertRejected(self, request: FakeRequest, message: bytes, code: int = 400) -> None:
        request.setResponseCode.assert_called_with(code)
        self.assertEqual(request.written, message)
        self.assertEqual(self.changes, [])

    def assertNothingRecorded(self, request: FakeRequest, reason: str) -> None:
        request.setResponseCode.assert_called_with(202)
        self.assertEqual(request.written, b"no change found")
        self.assertEqual(self.changes, [])
        self.assertTrue(
            any(reason in line for line in self.logged),
            f"no log line with {reason!r} in {self.logged!r}",
        )


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
        self.assertEqual(
            change["author"], "Codertocat <21031067+Codertocat@users.noreply.github.com>"
        )

    @defer.inlineCallbacks
    def test_wrong_secret(self) -> Any:
        body = fixture("push-with-new-branch.payload.json")
        request = yield self.post(
            b"push", body, headers={b"X-Hub-Signature-256": sign(body, "not-the-secret")}
        )
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
        request = yield self.post(
            b"push", fixture("push-with-new-branch.payload.json"), signed=False
        )
        self.assertRejected(request, MISSING)

    @defer.inlineCallbacks
    def test_sha1_signature_only_is_refused(self) -> Any:
        body = fixture("push-with-new-branch.payload.json")
        sha1 = b"sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest().encode()
        request = yield self.post(b"push", body, signed=False, headers={b"X-Hub-Signature": sha1})
        self.assertRejected(request, MISSING)

    @defer.inlineCallbacks
    def test_sha1_digest_in_sha256_header_is_refused(self) -> Any:
        body = fixture("push-with-new-branch.payload.json")
        sha1 = b"sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest().encode()
        request = yield self.post(b"push", body, headers={b"X-Hub-Signature-256": sha1})
        self.assertRejected(request, MALFORMED)

    @defer.inlineCallbacks
    def test_malformed_signature(self) -> Any:
        body = fixture("push-with-new-branch.payload.json")
        bare = sign(body)[len(b"sha256=") :]
        request = yield self.post(b"push", body, headers={b"X-Hub-Signature-256": bare})
        self.assertRejected(request, MALFORMED)

    @defer.inlineCallbacks
    def test_form_encoded_content_type_is_refused(self) -> Any:
        body = b"payload=" + fixture("push-with-new-branch.payload.json")
        request = yield self.post(
            b"push", body, headers={b"Content-Type": b"application/x-www-form-urlencoded"}
        )
        self.assertRejected(
            request,
            b"unsupported Content-Type: set the webhook's content type to application/json",
            415,
        )

    @defer.inlineCallbacks
    def test_signed_body_that_is_not_json(self) -> Any:
        request = yield self.post(b"push", b"not json")
        request.setResponseCode.assert_called_with(400)
        self.assertEqual(
            request.written,
            b"the payload is not valid JSON: Expecting value: line 1 column 1 (char 0)",
        )
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
        request.setResponseCode.assert_called_with(500)
        self.assertEqual(request.written, b"Error processing changes.")
        self.assertEqual(self.changes, [])
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 1)


class ProjectFilterTest(GitHubHookTest):
    projects = {"Codertocat/Hello-World": "master", "sprintly/snowbird": "main"}

    @defer.inlineCallbacks
    def test_configured_spelling_is_the_project(self) -> Any:
        yield self.post(b"push", fixture("push-with-no-username-committer.payload.json"))
        self.assertEqual(
            [(c["project"], c["branch"], c["revision"]) for c in self.changes],
            [(REPO, "master", NEW_BRANCH_SHA)],
        )

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
        self.assertEqual(
            (change["branch"], change["category"], change["revision"]),
            ("refs/pull/2/head", "pull", head),
        )

    @defer.inlineCallbacks
    def test_closed_pull_request_is_ignored(self) -> Any:
        request = yield self.post(b"pull_request", fixture("pull_request-closed.payload.json"))
        self.assertNothingRecorded(request, "action 'closed' is not one of")


class ForeignRepositoryTest(GitHubHookTest):
    projects = {"sprintly/snowbird": "main"}

    @defer.inlineCallbacks
    def test_push_is_ignored(self) -> Any:
        request = yield self.post(b"push", fixture("push-with-new-branch.payload.json"))
        self.assertNothingRecorded(
            request, "'Codertocat/Hello-World' ignored: repository not configured"
        )

    @defer.inlineCallbacks
    def test_pull_request_is_ignored_without_calling_github(self) -> Any:
        request = yield self.post(b"pull_request", fixture("pull_request-synchronize.payload.json"))
        self.assertNothingRecorded(request, "repository not configured")

    @defer.inlineCallbacks
    def test_forged_push_is_still_refused(self) -> Any:
        body = fixture("push-with-new-branch.payload.json")
        request = yield self.post(
            b"push", body, headers={b"X-Hub-Signature-256": sign(body, "guess")}
        )
        self.assertRejected(request, MISMATCH)

    @defer.inlineCallbacks
    def test_a_project_added_by_reconfig_is_accepted_without_restart(self) -> Any:
        body = fixture("push-with-new-branch.payload.json")
        request = yield self.post(b"push", body)  # the handler is built and cached now
        self.assertNothingRecorded(request, "repository not configured")
        # `buildbot reconfig` with the repository added to pipeline.toml
        self.master.config.www = {
            "change_hook_dialects": github_hook_dialect(
                self.secret, {**self.projects, REPO: "master"}
            )
        }
        request = yield self.post(b"push", body)
        self.assertEqual(request.written, b"1 change found")
        self.assertEqual(self.changes[0]["project"], REPO)


class OtherBranchTest(GitHubHookTest):
    projects = {"Codertocat/Hello-World": "main"}

    @defer.inlineCallbacks
    def test_push_to_unconfigured_branch_is_ignored(self) -> Any:
        request = yield self.post(b"push", fixture("push-with-new-branch.payload.json"))
        self.assertNothingRecorded(
            request, "ref refs/heads/master is not the configured branch refs/heads/main"
        )


class DialectTest(unittest.TestCase):
    def test_dialect_shape(self) -> None:
        dialect = github_hook_dialect(util.Secret(SECRET_NAME), {REPO: "master"})
        self.assertEqual(set(dialect), {"github"})
        options = dialect["github"]
        self.assertEqual(options["strict"], True)
        self.assertEqual(
            options["class"].keywords,
            {"projects": {REPO: "master"}, "schedulers": {}, "use_api": False},
        )
        self.assertEqual(options["pullrequest_ref"], "head")

    def test_secret_is_required(self) -> None:
        with self.assertRaises(ValueError):
            github_hook_dialect("", {REPO: "master"})

    def test_repository_configured_twice(self) -> None:
        with self.assertRaisesRegex(ValueError, "configured twice"):
            github_hook_dialect(SECRET, {REPO: "master", REPO.lower(): "main"})


# ---- hostile input: cheap checks first, every refusal a 4xx naming what is wrong ------------


class _Unreadable:
    """A body that fails the test if the hook reads it."""

    def seek(self, *args: Any) -> None:
        raise AssertionError("the body was read")

    read = seek


class OrderTest(GitHubHookTest):
    """method → content type → event → signature form → size → HMAC → depth → shape."""

    @defer.inlineCallbacks
    def render(self, request: FakeRequest) -> Any:
        yield request.test_render(self.hook)
        return request

    def request(self, **headers: bytes | None) -> FakeRequest:
        body = fixture("push-with-new-branch.payload.json")
        return make_request(
            b"push", body, headers={k.replace("_", "-").encode(): v for k, v in headers.items()}
        )

    @defer.inlineCallbacks
    def test_get_is_405_before_anything_else(self) -> Any:
        request = self.request(**{"Content_Type": b"text/plain", "X_Hub_Signature_256": None})
        request.method = b"GET"
        request.content = _Unreadable()
        yield self.render(request)
        self.assertRejected(request, b"the GitHub change hook only accepts POST", 405)

    @defer.inlineCallbacks
    def test_content_type_must_be_exactly_json(self) -> Any:
        for value in (b"application/json; charset=utf-8", b"text/plain", b"", None):
            request = self.request(Content_Type=value, X_Hub_Signature_256=None)
            yield self.render(request)
            self.assertEqual(request.setResponseCode.call_args.args, (415,), value)

    @defer.inlineCallbacks
    def test_event_header_before_signature(self) -> Any:
        request = self.request(X_GitHub_Event=None, X_Hub_Signature_256=None)
        yield self.render(request)
        self.assertRejected(request, b"missing X-GitHub-Event header")

    @defer.inlineCallbacks
    def test_signature_must_have_the_exact_form(self) -> Any:
        good = sign(fixture("push-with-new-branch.payload.json"))
        for bad in (
            b" " + good,
            good + b" ",
            good.upper(),
            b"sha256 =" + good[7:],
            good[:-1],
            good + b"0",
            b"sha256=" + b"g" * 64,
            b"sha256=" + good,
        ):
            request = self.request(X_Hub_Signature_256=bad)
            yield self.render(request)
            self.assertRejected(request, MALFORMED)

    @defer.inlineCallbacks
    def test_declared_oversize_is_413_without_reading_the_body(self) -> Any:
        request = self.request(Content_Length=b"%d" % (hookguard.MAX_BODY + 1))
        request.content = _Unreadable()
        yield self.render(request)
        self.assertRejected(request, b"the payload is larger than 25 MB", 413)

    @defer.inlineCallbacks
    def test_undeclared_oversize_is_413_even_if_signed(self) -> Any:
        body = b" " * (hookguard.MAX_BODY + 1)
        request = make_request(b"push", body)
        yield self.render(request)
        self.assertRejected(request, b"the payload is larger than 25 MB", 413)

    @defer.inlineCallbacks
    def test_unsigned_oversize_is_refused_for_its_signature_first(self) -> Any:
        request = self.request(
            X_Hub_Signature_256=None, Content_Length=b"%d" % (hookguard.MAX_BODY * 8)
        )
        request.content = _Unreadable()
        yield self.render(request)
        self.assertRejected(request, MISSING)

    @defer.inlineCallbacks
    def test_malformed_delivery_id(self) -> Any:
        request = self.request(X_GitHub_Delivery=b"a b")
        yield self.render(request)
        self.assertRejected(request, b"malformed X-GitHub-Delivery header")

    @defer.inlineCallbacks
    def test_deep_nesting_is_400_not_a_recursion_error(self) -> Any:
        for depth in (65, 1000, 200_000):
            body = b'{"a": ' + b"[" * depth + b"]" * depth + b"}"
            request = yield self.post(b"push", body)
            self.assertRejected(
                request,
                b"the payload is nested deeper than 64 levels (or its brackets do not match)",
            )

    @defer.inlineCallbacks
    def test_json_that_is_not_an_object(self) -> Any:
        for body in (b"[]", b"null", b"42", b'"x"'):
            request = yield self.post(b"push", body)
            self.assertRejected(request, b"the payload is not a JSON object")


class DepthTest(unittest.TestCase):
    def test_depth_limit(self) -> None:
        hookguard.check_depth(b"[" * 64 + b"]" * 64)
        hookguard.check_depth(b'["' + b"[" * 1000 + b'"]')  # brackets in strings do not count
        hookguard.check_depth(b'["\\"' + b"{" * 1000 + b'"]')
        hookguard.check_depth(b"[" + b"[[]]," * 10_000 + b"[]]")
        for body in (b"[" * 65 + b"]" * 65, b"[" * 100, b"[" * 60 + b"{}" * 100 + b"]" * 59):
            with self.assertRaises(hookguard.Refused):
                hookguard.check_depth(body)


def push_with(path: str, value: Any, name: str = "push-with-new-branch.payload.json") -> bytes:
    """The fixture with the field at `path` ("a.b", "commits.0.id") set to value, or removed
    if value is the class Missing."""
    data = json.loads(fixture(name))
    *parents, last = path.split(".")
    target: Any = data
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    key: Any = int(last) if isinstance(target, list) else last
    if value is Missing:
        del target[key]
    else:
        target[key] = value
    return json.dumps(data).encode()


class Missing:
    pass


PUSH_SHAPES = [
    ("repository", None, "repository must be an object"),
    ("repository", Missing, "repository is missing"),
    ("repository.full_name", 7, "repository.full_name must be a string"),
    ("repository.html_url", ["x"], "repository.html_url must be a string"),
    ("ref", None, "ref must be a string"),
    ("deleted", "yes", "deleted must be true or false or null"),
    ("commits", "x", "commits must be a list"),
    ("commits", Missing, "commits is missing"),
    ("commits.0", 1, "commits[0] must be an object"),
    ("commits.0.id", 5, "commits[0].id must be a string"),
    (
        "commits.0.id",
        "not-a-sha",
        "commits[0].id must be a commit id (40 or 64 lower-case hex digits)",
    ),
    ("commits.0.message", None, "commits[0].message must be a string"),
    ("commits.0.author", None, "commits[0].author must be an object"),
    ("commits.0.author.email", {}, "commits[0].author.email must be a string"),
    ("commits.0.committer", Missing, "commits[0].committer is missing"),
    ("commits.0.timestamp", "yesterday-ish", "commits[0].timestamp is not a date"),
    ("commits.0.timestamp", "99999999999999999999", "commits[0].timestamp is not a date"),
    ("commits.0.timestamp", 5, "commits[0].timestamp must be a string"),
    ("commits.0.added", "README.md", "commits[0].added must be a list"),
    ("commits.0.added", [1], "commits[0].added[0] must be a string"),
    ("commits.0.distinct", "true", "commits[0].distinct must be true or false"),
    ("commits.0.url", "u" * 300, "commits[0].url is longer than 256 characters"),
    ("commits.0.message", "a\x00b", "commits[0].message contains a NUL character"),
    ("commits.0.message", "\ud800", "commits[0].message is not valid Unicode"),
    ("head_commit", None, "head_commit must be an object"),
    ("head_commit", [], "head_commit must be an object"),
    ("head_commit.id", True, "head_commit.id must be a string"),
]

PR_SHAPES = [
    ("number", "2", "number must be a number"),
    ("number", True, "number must be a number"),
    ("action", None, "action must be a string"),
    ("pull_request", None, "pull_request must be an object"),
    ("pull_request.head", "x", "pull_request.head must be an object"),
    ("pull_request.head.sha", 1, "pull_request.head.sha must be a string"),
    ("pull_request.base.ref", None, "pull_request.base.ref must be a string"),
    ("pull_request.created_at", "never", "pull_request.created_at is not a date"),
    ("pull_request._links", Missing, "pull_request._links is missing"),
    ("sender", None, "sender must be an object"),
]


class ShapeTest(GitHubHookTest):
    """Validly signed payloads of the wrong shape: 400 naming the field, nothing recorded."""

    @defer.inlineCallbacks
    def test_push_fields(self) -> Any:
        for path, value, message in PUSH_SHAPES:
            request = yield self.post(b"push", push_with(path, value))
            self.assertEqual(
                (request.setResponseCode.call_args.args, request.written),
                ((400,), message.encode()),
                path,
            )
        self.assertEqual(self.changes, [])
        self.assertEqual(self.flushLoggedErrors(), [])

    @defer.inlineCallbacks
    def test_pull_request_fields(self) -> Any:
        for path, value, message in PR_SHAPES:
            request = yield self.post(
                b"pull_request", push_with(path, value, "pull_request-opened.payload.json")
            )
            self.assertEqual(
                (request.setResponseCode.call_args.args, request.written),
                ((400,), message.encode()),
                path,
            )
        self.assertEqual(self.changes, [])

    @defer.inlineCallbacks
    def test_more_commits_than_github_sends(self) -> Any:
        data = json.loads(fixture("push-with-new-branch.payload.json"))
        data["commits"] = data["commits"] * (hookguard.MAX_COMMITS + 1)
        request = yield self.post(b"push", json.dumps(data).encode())
        self.assertRejected(request, b"commits has 2049 entries: GitHub lists at most 2048")

    @defer.inlineCallbacks
    def test_a_deleted_branch_may_have_no_head_commit(self) -> Any:
        request = yield self.post(b"push", fixture("push-payload.json"))
        self.assertNothingRecorded(request, "was deleted")
