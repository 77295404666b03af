"""Pull requests: the hook's pull_request events (real GitHub payloads, the GitHub API faked),
and the scheduler and builder that test them without packaging or publishing."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import defer
from twisted.trial import unittest

from buildbot.plugins import util

from master import pullrequests
from master.changes import github_hook_dialect
from tests.integration.helpers import write_pipeline
from tests.unit.test_hook import REPO
from tests.unit.test_hook import SECRET_NAME
from tests.unit.test_hook import HookTestCase
from tests.unit.test_hook import fixture
from tests.unit.test_hook import make_request

HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
API = "http://127.0.0.1:9999/api/v3"
TOKEN_NAME = "github-token"
TOKEN = "t0ken-for-tests"


def payload(name: str = "pull_request-opened.payload.json", **changes: Any) -> dict:
    data = json.loads(fixture(name))
    data.update(changes)
    return data


class PullRequestHookTest(HookTestCase):
    """The hook with the GitHub API configured (settings.github.api_url and its token)."""

    api_url: str | None = API
    token = (TOKEN_NAME, TOKEN)

    @defer.inlineCallbacks
    def post(self, body: dict | bytes) -> Any:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = make_request(b"pull_request", raw)
        yield request.test_render(self.hook)
        return request

    def assertIgnored(self, request: Any, reason: str) -> None:
        self.assertEqual(request.written, b"no change found")
        self.assertEqual(self.changes, [])
        self.assertTrue(
            any(reason in line for line in self.logged),
            f"no log line with {reason!r} in {self.logged!r}",
        )

    def expect_commit(self, message: str = "Update README.md", code: int = 200) -> None:
        self.http.expect(
            "get",
            f"/repos/{REPO}/commits/{HEAD}",
            code=code,
            content_json={
                "sha": HEAD,
                "commit": {
                    "message": message,
                    "author": {"name": "Coder Tocat", "email": "coder@tocat.example"},
                },
            },
        )

    @defer.inlineCallbacks
    def test_opened_is_a_change_on_the_head_by_the_commit_author(self) -> Any:
        self.expect_commit()
        self.http.expect(
            "get", f"/repos/{REPO}/pulls/2/files", content_json=[{"filename": "README.md"}]
        )
        request = yield self.post(fixture("pull_request-opened.payload.json"))
        self.assertEqual(request.written, b"1 change found")
        [change] = self.changes
        self.assertEqual(
            (
                change["branch"],
                change["category"],
                change["revision"],
                change["project"],
                change["author"],
                change["files"],
            ),
            (
                "refs/pull/2/head",
                "pull",
                HEAD,
                "codertocat/hello-world",
                "Coder Tocat <coder@tocat.example>",
                ["README.md"],
            ),
        )
        self.assertEqual(change["repository"], "https://github.com/Codertocat/Hello-World")
        self.assertEqual(
            change["properties"]["pullrequesturl"],
            "https://github.com/Codertocat/Hello-World/pull/2",
        )

    @defer.inlineCallbacks
    def test_synchronize_and_reopened_are_changes_too(self) -> Any:
        for action in ("synchronize", "reopened"):
            self.expect_commit()
            self.http.expect("get", f"/repos/{REPO}/pulls/2/files", content_json=[])
            request = yield self.post(payload(action=action))
            self.assertEqual(request.written, b"1 change found")
        self.assertEqual(len(self.changes), 2)

    @defer.inlineCallbacks
    def test_skip_ci_in_the_head_commit_records_nothing(self) -> Any:
        self.expect_commit("Typo [skip ci]")
        request = yield self.post(fixture("pull_request-opened.payload.json"))
        self.assertIgnored(request, "skip pattern")

    @defer.inlineCallbacks
    def test_api_errors_do_not_stop_the_build(self) -> Any:
        self.expect_commit(code=500)
        self.http.expect("get", f"/repos/{REPO}/pulls/2/files", code=404, content_json={})
        request = yield self.post(fixture("pull_request-opened.payload.json"))
        self.assertEqual(request.written, b"1 change found")
        self.assertEqual(self.changes[0]["author"], "Codertocat")  # the sender's login

    @defer.inlineCallbacks
    def test_closed_records_nothing_and_asks_nothing(self) -> Any:
        request = yield self.post(fixture("pull_request-closed.payload.json"))
        self.assertIgnored(request, "action 'closed' is not one of opened, synchronize, reopened")

    @defer.inlineCallbacks
    def test_other_actions_record_nothing(self) -> Any:
        for action in ("edited", "labeled", "review_requested"):
            request = yield self.post(payload(action=action))
            self.assertEqual(request.written, b"no change found")
        self.assertEqual(self.changes, [])

    @defer.inlineCallbacks
    def test_pull_request_into_another_branch_records_nothing(self) -> Any:
        data = payload()
        data["pull_request"]["base"]["ref"] = "release-1.x"
        request = yield self.post(data)
        self.assertIgnored(request, "it targets 'release-1.x', not the configured branch 'master'")

    @defer.inlineCallbacks
    def test_pull_request_from_a_fork_records_nothing(self) -> Any:
        data = payload()
        data["pull_request"]["head"]["repo"]["full_name"] = "mallory/Hello-World"
        request = yield self.post(data)
        self.assertIgnored(request, "pull requests from forks are not built")

    @defer.inlineCallbacks
    def test_unsigned_pull_request_is_refused(self) -> Any:
        request = make_request(
            b"pull_request", fixture("pull_request-opened.payload.json"), signed=False
        )
        yield request.test_render(self.hook)
        self.assertEqual(
            request.written,
            b"missing X-Hub-Signature-256 header: the request is "
            b"not signed with the webhook secret",
        )
        self.assertEqual(self.changes, [])


class PullRequestWithoutApiTest(PullRequestHookTest):
    """No API configured: nothing is asked (an unexpected request would fail the test)."""

    api_url = None

    def expect_commit(self, message: str = "", code: int = 200) -> None:
        pass

    @defer.inlineCallbacks
    def test_opened_is_a_change_on_the_head_by_the_commit_author(self) -> Any:
        request = yield self.post(fixture("pull_request-opened.payload.json"))
        self.assertEqual(request.written, b"1 change found")
        [change] = self.changes
        self.assertEqual(
            (change["branch"], change["revision"], change["author"], change["files"]),
            ("refs/pull/2/head", HEAD, "Codertocat", []),
        )

    def test_synchronize_and_reopened_are_changes_too(self) -> None:
        raise unittest.SkipTest("covered with the API")

    def test_skip_ci_in_the_head_commit_records_nothing(self) -> None:
        raise unittest.SkipTest("the head commit's message comes from the API")

    def test_api_errors_do_not_stop_the_build(self) -> None:
        raise unittest.SkipTest("no API")


class DialectTest(unittest.TestCase):
    def test_api_options(self) -> None:
        token = util.Secret(TOKEN_NAME)
        options = github_hook_dialect(
            util.Secret(SECRET_NAME), {REPO: "master"}, api_url=API + "/", token=token
        )["github"]
        self.assertEqual(options["github_api_endpoint"], API)
        self.assertIs(options["token"], token)
        self.assertEqual(options["pullrequest_ref"], "head")
        self.assertEqual(options["class"].keywords["use_api"], True)


# ---- scheduler and builder ------------------------------------------------------------------


def test_a_scheduler_and_a_builder_per_project_that_builds_pull_requests(tmp_path):
    settings = write_pipeline(tmp_path)
    (scheduler,) = pullrequests.schedulers(settings)
    assert scheduler.name == "snowbird-pull-requests"
    assert scheduler.builderNames == ["snowbird-pr"]
    (builder,) = pullrequests.builders(settings)
    assert builder.name == "snowbird-pr"
    assert builder.collapseRequests is False
    assert builder.workernames == ["build"]


def test_the_scheduler_takes_pull_request_changes_of_its_project_only(tmp_path):
    from buildbot.changes.changes import Change

    settings = write_pipeline(tmp_path)
    (scheduler,) = pullrequests.schedulers(settings)
    change_filter = scheduler._config_kwargs["change_filter"]

    def change(**kw: Any) -> Change:
        values = {
            "project": "sprintly/snowbird",
            "category": "pull",
            "branch": "refs/pull/3/head",
            "codebase": "",
            "repository": "",
            "revision": HEAD,
        }
        values.update(kw)
        c = Change(who="a", files=[], comments="", **{k: v for k, v in values.items()})
        return c

    assert change_filter.filter_change(change())
    assert not change_filter.filter_change(change(category=None, branch="main"))  # a push
    assert not change_filter.filter_change(change(project="sprintly/falcon"))
    assert not change_filter.filter_change(change(branch="refs/pull/3/merge"))


def test_the_factory_tests_but_never_packages_or_publishes(tmp_path):
    settings = write_pipeline(tmp_path)
    factory = pullrequests.pr_factory(settings, settings.projects[0])
    steps = [s.step_class.__name__ for s in factory.steps]
    assert steps[:5] == ["Git", "CreateVirtualenv", "InstallRequirements", "RunTests", "Coverage"]
    assert not {"StampVersion", "BuildDebianPackage", "UploadPackages", "Trigger"} & set(steps)
    git = factory.steps[0]
    assert git.kwargs["repourl"] == settings.projects[0].clone_url
    assert git.kwargs["mode"] == "full" and git.kwargs["method"] == "fresh"


def test_projects_can_opt_out(tmp_path):
    settings = write_pipeline(tmp_path, pull_requests="false")
    assert pullrequests.schedulers(settings) == []
    assert pullrequests.builders(settings) == []
