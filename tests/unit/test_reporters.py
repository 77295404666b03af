"""Mail and commit status text (plain functions), which builds are worth a mail (the generator on
a fake master's database), the mail notifier's message, and the reporters the settings make."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer
from twisted.trial import unittest

from buildbot.process.properties import Secret
from buildbot.process.results import CANCELLED
from buildbot.process.results import EXCEPTION
from buildbot.process.results import FAILURE
from buildbot.process.results import SKIPPED
from buildbot.process.results import SUCCESS
from buildbot.process.results import WARNINGS
from buildbot.reporters.github import GitHubStatusPush
from buildbot.test import fakedb
from buildbot.test.fake import fakemaster
from buildbot.test.reactor import TestReactorMixin

from conveyor import mail as mail_text
from conveyor.mail import FAILED
from conveyor.mail import FIXED
from conveyor.mail import STILL_FAILING
from conveyor.mail import ChangeFacts
from conveyor.mail import MailFacts
from conveyor.mail import ReleaseFacts
from master import reporters
from master.reporters import admins as admins_reporters
from master.reporters import mail as mail_reporters
from master.reporters.facts import failing_step
from steps import repository
from tests.integration.helpers import write_pipeline

URL = "http://ci.example/#/builders/1/builds/7"
SHA = "3f2a9c1e5d6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f"
OLDER = "0123456789abcdef0123456789abcdef01234567"


def facts(**overrides: Any) -> MailFacts:
    values: dict[str, Any] = dict(
        project="snowbird",
        branch="main",
        kind=FAILED,
        results=FAILURE,
        previous_results=SUCCESS,
        builder="snowbird-ci",
        number=7,
        url=URL,
        revision=SHA,
        changes=[ChangeFacts(SHA, "Break the board", "Ada Sprintly <ada@sprintly.example>")],
        failing_step="tests",
        failing_step_summary="41 passed, 2 failed",
        tests_passed=41,
        tests_failed=2,
        tests_failed_names=["tests.test_app::test_health", "tests.test_app::test_index"],
        coverage_percent=None,
        coverage_threshold=None,
        log_name="stdio",
        log_tail=["FAILED tests/test_app.py::test_health", "1 failed"],
    )
    values.update(overrides)
    return MailFacts(**values)


# ---- when -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "results, previous, every_failure, expected",
    [
        (FAILURE, SUCCESS, False, FAILED),  # a push breaks the build
        (FAILURE, None, False, FAILED),  # the very first build fails
        (EXCEPTION, SUCCESS, False, FAILED),
        (FAILURE, WARNINGS, False, FAILED),
        (FAILURE, FAILURE, False, None),  # still broken: one mail was enough
        (FAILURE, EXCEPTION, False, None),
        (FAILURE, FAILURE, True, STILL_FAILING),  # [mail] every_failure
        (SUCCESS, FAILURE, False, FIXED),
        (WARNINGS, EXCEPTION, False, FIXED),
        (SUCCESS, SUCCESS, False, None),  # silence means green
        (SUCCESS, None, False, None),
        (WARNINGS, SUCCESS, True, None),
        (CANCELLED, FAILURE, True, None),
        (SKIPPED, FAILURE, False, None),
    ],
)
def test_mail_kind(results, previous, every_failure, expected):
    assert mail_text.mail_kind(results, previous, every_failure) == expected


# ---- what -----------------------------------------------------------------------------------


def test_subject_of_a_failure_names_project_branch_result_commit_and_step():
    assert mail_text.mail_subject(facts()) == "[snowbird] main FAILURE 3f2a9c1: tests failed"


def test_subjects_of_still_failing_fixed_pull_request_and_exception():
    assert (
        mail_text.mail_subject(facts(kind=STILL_FAILING, previous_results=FAILURE))
        == "[snowbird] main FAILURE 3f2a9c1: tests still failing"
    )
    assert (
        mail_text.mail_subject(facts(kind=FIXED, results=SUCCESS))
        == "[snowbird] main SUCCESS 3f2a9c1: fixed"
    )
    assert (
        mail_text.mail_subject(facts(branch="refs/pull/12/head"))
        == "[snowbird] PR #12 FAILURE 3f2a9c1: tests failed"
    )
    assert (
        mail_text.mail_subject(facts(results=EXCEPTION, failing_step=None))
        == "[snowbird] main EXCEPTION 3f2a9c1: build failed"
    )


def test_subject_is_one_line_whatever_the_names_hold():
    subject = mail_text.mail_subject(facts(failing_step="two\nlines", branch="a\r\nb"))
    assert "\n" not in subject and "\r" not in subject


def test_failure_text_has_step_tests_log_tail_and_link():
    text = mail_text.render_text(facts())
    assert text.startswith(
        "snowbird main is broken: build snowbird-ci #7 is FAILURE at 3f2a9c1 "
        "(the previous build: SUCCESS).\n"
    )
    assert f"Build          {URL}\n" in text
    assert "Commit         3f2a9c1 Break the board (Ada Sprintly <ada@sprintly.example>)\n" in text
    assert "Failed step    tests: 41 passed, 2 failed\n" in text
    assert (
        "Failing tests  tests.test_app::test_health\n               tests.test_app::test_index\n"
    ) in text
    assert (
        "The last 2 lines of tests (stdio):\n\n    FAILED tests/test_app.py::test_health\n"
        "    1 failed\n" in text
    )
    assert "Coverage" not in text  # the coverage step did not run


def test_a_mail_gives_each_target_releases_tests_and_coverage():
    by_target = {
        "bookworm": {"passed": 41, "failed": 0, "coverage": 93.0},
        "trixie": {"passed": 40, "failed": 1},  # its coverage step did not run
    }
    text = mail_text.render_text(
        facts(by_target=by_target, coverage_percent=93.0, coverage_threshold=80.0)
    )
    assert "Tests          bookworm: 41 passed, 0 failed\n" in text
    assert "               trixie: 40 passed, 1 failed\n" in text
    assert "Coverage       bookworm: 93%\n               trixie: not run\n" in text
    assert "               threshold 80%\n" in text
    assert (
        mail_text.status_description(SUCCESS, None, None, 81, 0, 93.0, by_target)
        == "success: bookworm 41 passed, trixie 40 passed, coverage 93%"
    )


def test_failure_text_says_how_many_more_tests_failed_than_named():
    text = mail_text.render_text(facts(tests_failed=25, tests_failed_names=["t1", "t2"]))
    assert "… and 23 more" in text


def test_failure_mail_carries_each_failing_tests_text_from_the_junit_xml():
    failures = [
        {
            "name": "tests.test_app::test_health",
            "text": "assert 500 == 200\nE  where 500 = get('/health').status <x>",
        },
        {"name": "tests.test_app::test_long", "text": "\n".join(map(str, range(40)))},
    ]
    text = mail_text.render_text(facts(tests_failures=failures))
    assert (
        "tests.test_app::test_health failed:\n\n    assert 500 == 200\n"
        "    E  where 500 = get('/health').status <x>\n"
    ) in text
    assert '    29\n    … (10 more lines in the build\'s log "failures")\n' in text
    body = mail_text.render_html(facts(tests_failures=failures))
    assert "E  where 500 = get(&#39;/health&#39;).status &lt;x&gt;" in body
    fixed = mail_text.render_text(facts(kind=FIXED, results=SUCCESS, tests_failures=failures))
    assert "assert 500" not in fixed


def test_coverage_failure_shows_percent_and_threshold():
    text = mail_text.render_text(
        facts(
            failing_step="coverage",
            failing_step_summary="coverage 71% < 80%",
            tests_failed=0,
            tests_failed_names=[],
            coverage_percent=71.0,
            coverage_threshold=80.0,
        )
    )
    assert "Failed step  coverage: coverage 71% < 80%\n" in text
    assert "Coverage     71% (threshold 80%)\n" in text
    assert "Failing tests" not in text


def test_lint_failure_shows_the_count_and_the_first_problems_with_file_and_line():
    first = ["snowbird/app.py:3:1: F401 `os` imported but unused"]
    text = mail_text.render_text(
        facts(
            failing_step="lint",
            tests_failed=0,
            failing_step_summary=f"1 lint problem, first: {first[0]}",
            tests_failed_names=[],
            lint_problems=1,
            lint_first=first,
            log_name="problems",
            log_tail=first,
        )
    )
    assert "Failed step  lint: 1 lint problem, first: snowbird/app.py:3:1: F401" in text
    assert (
        "Lint         1 problem(s), the first:\n"
        "             snowbird/app.py:3:1: F401 `os` imported but unused\n" in text
    )
    html = mail_text.render_html(facts(failing_step="lint", lint_problems=1, lint_first=first))
    assert "snowbird/app.py:3:1: F401 `os` imported but unused" in html


def test_fixed_text_has_no_failure_details_and_lists_the_commits_since_green():
    text = mail_text.render_text(
        facts(
            kind=FIXED,
            results=SUCCESS,
            previous_results=FAILURE,
            tests_passed=43,
            tests_failed=0,
            tests_failed_names=[],
            coverage_percent=93.0,
            coverage_threshold=80.0,
            changes=[
                ChangeFacts(SHA, "Repair the board", "Ada <ada@x.example>"),
                ChangeFacts(OLDER, "Break the board", "Bob <bob@x.example>"),
            ],
        )
    )
    assert text.startswith(
        "snowbird main is fixed: build snowbird-ci #7 is SUCCESS at 3f2a9c1 "
        "(the previous build: FAILURE).\n"
    )
    assert "Commit            3f2a9c1 Repair the board (Ada <ada@x.example>)\n" in text
    assert "Since last green  0123456 Break the board (Bob <bob@x.example>)\n" in text
    assert "Coverage          93% (threshold 80%)\n" in text
    assert "Failed step" not in text and "The last" not in text


def test_html_is_escaped_and_has_link_tests_and_log():
    body = mail_text.render_html(
        facts(tests_failed_names=["tests::test_<script>"], log_tail=["assert a < b & c"])
    )
    assert f'<a href="{URL}">{URL}</a>' in body
    assert "<code>tests::test_&lt;script&gt;</code>" in body
    assert "<pre" in body and "assert a &lt; b &amp; c" in body
    assert "<script>" not in body


def test_pull_request_mail_links_the_pull_request():
    f = facts(branch="refs/pull/3/head", pull_request_url="https://github.com/s/n/pull/3")
    subject, text, body = mail_text.render_mail(f)
    assert "Pull request   https://github.com/s/n/pull/3\n" in text
    assert text.startswith("snowbird PR #3 is broken")
    assert 'href="https://github.com/s/n/pull/3"' in body


def test_status_descriptions():
    assert (
        mail_text.status_description(SUCCESS, None, None, 42, 0, 93.0)
        == "success: 42 passed, coverage 93%"
    )
    assert (
        mail_text.status_description(FAILURE, "tests", "41 passed, 1 failed", 41, 1, None)
        == "tests failed: 41 passed, 1 failed"
    )
    assert mail_text.status_description(EXCEPTION, None, None, None, None, None) == "exception"
    long = mail_text.status_description(FAILURE, "tests", "x" * 300, None, None, None)
    assert len(long) == 140 and long.endswith("…")


def test_failing_step_is_the_first_failed_visible_step():
    build = {
        "steps": [
            {"name": "git", "results": SUCCESS},
            {"name": "clean", "results": FAILURE, "hidden": True},
            {"name": "tests", "results": FAILURE, "hidden": False},
            {"name": "coverage", "results": EXCEPTION, "hidden": False},
        ]
    }
    assert failing_step(build)["name"] == "tests"
    assert failing_step({"steps": [{"name": "a", "results": SUCCESS}]}) is None


# ---- which reporters the settings make ------------------------------------------------------


def kwargs_of(service) -> dict:
    return service._config_kwargs


def test_one_mail_notifier_per_project_and_one_for_the_admins(tmp_path):
    settings = write_pipeline(tmp_path)
    services = reporters.reporters(settings)
    mail = [s for s in services if isinstance(s, mail_reporters.ConveyorMailNotifier)]
    # write_pipeline has no admins; the team's list also hears of releases into production
    assert [s.name for s in mail] == ["mail-snowbird", "release-mail-snowbird"]
    kw = kwargs_of(mail[0])
    assert kw["extraRecipients"] == ["snowbird-team@example.com"]
    assert kw["sendToInterestedUsers"] is True
    assert (kw["relayhost"], kw["smtpPort"], kw["useTls"], kw["useSmtps"]) == (
        "127.0.0.1",
        25,
        False,
        False,
    )
    assert "smtpUser" not in kw and "smtpPassword" not in kw
    (generator,) = kw["generators"]
    assert isinstance(generator, mail_reporters.FailureAndFixGenerator)
    assert generator.builders == ["snowbird-ci", "snowbird-pr"]
    assert generator.mode == ("problem", "change") and generator.every_failure is False
    # no token secret: no GitHub statuses
    assert not any(isinstance(s, GitHubStatusPush) for s in services)


def test_smtp_settings_and_password_secret(tmp_path):
    settings = write_pipeline(
        tmp_path,
        extra=(
            '[mail]\nsmtp_host = "smtp.example"\nsmtp_port = 587\nstarttls = true\n'
            'username = "conveyor"\nevery_failure = true\n'
        ),
    )
    (notifier, _release) = mail_reporters.mail_notifiers(settings)
    kw = kwargs_of(notifier)
    assert (kw["relayhost"], kw["smtpPort"], kw["useTls"], kw["useSmtps"]) == (
        "smtp.example",
        587,
        True,
        False,
    )
    assert kw["smtpUser"] == "conveyor"
    assert isinstance(kw["smtpPassword"], Secret)
    assert kw["smtpPassword"].secret_name == "smtp-password"
    assert kw["generators"][0].mode == ("failing", "change")


def test_admins_hear_about_a_lost_worker(tmp_path):
    settings = write_pipeline(tmp_path)
    settings = type(settings)(**{**settings.__dict__, "admins": ("ops@example.com",)})
    admins = [s for s in mail_reporters.mail_notifiers(settings) if s.name == "mail-admins"]
    (generator, publish) = kwargs_of(admins[0])["generators"]
    assert isinstance(generator, admins_reporters.AdminsWorkerMissingGenerator)
    assert generator.admins == ["ops@example.com"]
    # and about a publish that failed for good
    assert isinstance(publish, admins_reporters.PublishFailureGenerator)
    assert publish.builders == ["publish"]
    assert kwargs_of(admins[0])["extraRecipients"] == ["ops@example.com"]


def test_github_statuses_with_a_token(tmp_path):
    settings = write_pipeline(tmp_path, extra='[github]\napi_url = "http://127.0.0.1:9/api/v3"\n')
    settings.secrets_dir.mkdir(parents=True)
    (settings.secrets_dir / "github-token").write_text("t0ken\n")
    (push,) = [s for s in reporters.reporters(settings) if isinstance(s, GitHubStatusPush)]
    kw = kwargs_of(push)
    assert push.name == "github-snowbird"
    assert isinstance(kw["token"], Secret) and kw["token"].secret_name == "github-token"
    assert kw["baseURL"] == "http://127.0.0.1:9/api/v3"
    assert kw["context"] == "conveyor/snowbird"
    assert all(g.builders == ["snowbird-ci", "snowbird-pr"] for g in kw["generators"])


def test_no_github_statuses_when_switched_off(tmp_path):
    settings = write_pipeline(tmp_path, extra="[github]\nstatuses = false\n")
    settings.secrets_dir.mkdir(parents=True)
    (settings.secrets_dir / "github-token").write_text("t0ken\n")
    assert not any(isinstance(s, GitHubStatusPush) for s in reporters.reporters(settings))


def test_projects_without_pull_requests_report_their_ci_builder_only(tmp_path):
    settings = write_pipeline(tmp_path, pull_requests="false")
    (notifier, _release) = mail_reporters.mail_notifiers(settings)
    assert kwargs_of(notifier)["generators"][0].builders == ["snowbird-ci"]


# ---- the generator and the formatter on a master's data -------------------------------------


class FakeReporter:
    def __init__(self, master: Any):
        self.master = master

    def getResponsibleUsersForBuild(self, master: Any, buildid: int) -> Any:
        from buildbot.reporters import utils

        return utils.getResponsibleUsersForBuild(master, buildid)


class GeneratorTest(TestReactorMixin, unittest.TestCase):
    """Builds of snowbird-ci (and of a PR builder) in a fake database; the last one is reported."""

    @defer.inlineCallbacks
    def setUp(self) -> Any:
        self.setup_test_reactor()
        self.master = yield fakemaster.make_master(self, wantData=True, wantDb=True, wantMq=True)
        self.rows: list = [
            fakedb.Master(id=92),
            fakedb.Worker(id=13, name="local"),
            fakedb.Builder(id=79, name="snowbird-ci"),
        ]
        self.inserted = 0

    def add_build(
        self, number: int, results: int | None, branch: str = "main", failing_test: bool = False
    ) -> int:
        buildid = 100 + number
        ssid, bsid, brid = 200 + number, 300 + number, 400 + number
        sha = (f"{number:x}" * 40)[:40]
        self.rows += [
            fakedb.SourceStamp(
                id=ssid,
                branch=branch,
                revision=sha,
                project="sprintly/snowbird",
                repository="https://github.com/sprintly/snowbird",
            ),
            fakedb.Buildset(id=bsid, results=results),
            fakedb.BuildsetSourceStamp(buildsetid=bsid, sourcestampid=ssid),
            fakedb.BuildRequest(id=brid, buildsetid=bsid, builderid=79),
            fakedb.Build(
                id=buildid,
                number=number,
                builderid=79,
                buildrequestid=brid,
                workerid=13,
                masterid=92,
                results=results,
                state_string="built",
                started_at=1000 + number,
                complete_at=None if results is None else 1010 + number,
            ),
            fakedb.Change(
                changeid=500 + number,
                branch=branch,
                revision=sha,
                author=f"Dev {number} <dev{number}@example.com>",
                comments=f"Commit {number}\n\nbody",
                project="sprintly/snowbird",
                sourcestampid=ssid,
            ),
            fakedb.BuildProperty(buildid=buildid, name="branch", value=branch),
            fakedb.BuildProperty(buildid=buildid, name="got_revision", value=sha),
            fakedb.BuildProperty(buildid=buildid, name="buildername", value="snowbird-ci"),
            fakedb.Step(id=600 + number, buildid=buildid, number=0, name="git", results=SUCCESS),
            fakedb.Step(
                id=700 + number,
                buildid=buildid,
                number=1,
                name="tests",
                results=FAILURE if failing_test else SUCCESS,
                state_string="3 passed, 1 failed (failure)" if failing_test else "4 passed",
            ),
        ]
        if failing_test:
            lines = (
                ["hcommand: python -m coverage run -m pytest\n"]
                + [f"oline {i}\n" for i in range(40)]
                + ["eFAILED tests/test_x.py::test_y\n", "hprogram finished with exit code 1\n"]
            )
            self.rows += [
                fakedb.Log(
                    id=800 + number,
                    stepid=700 + number,
                    name="stdio",
                    slug="stdio",
                    type="s",
                    num_lines=len(lines),
                ),
                fakedb.LogChunk(
                    logid=800 + number,
                    first_line=0,
                    last_line=len(lines) - 1,
                    compressed=0,
                    content="".join(lines),
                ),
                fakedb.BuildProperty(
                    buildid=buildid, name="tests_failed_names", value=["tests.test_x::test_y"]
                ),
                fakedb.BuildProperty(buildid=buildid, name="tests_passed", value=3),
                fakedb.BuildProperty(buildid=buildid, name="tests_failed", value=1),
            ]
        return buildid

    @defer.inlineCallbacks
    def report(self, buildid: int, every_failure: bool = False) -> Any:
        yield self.master.db.insert_test_data(self.rows[self.inserted :])
        self.inserted = len(self.rows)
        generator = mail_reporters.FailureAndFixGenerator(
            builders=["snowbird-ci"],
            every_failure=every_failure,
            message_formatter=mail_reporters.ConveyorMailFormatter("snowbird"),
        )
        build = yield self.master.data.get(("builds", buildid))
        report = yield generator.generate(
            self.master, FakeReporter(self.master), ("builds", buildid, "finished"), build
        )
        return report

    @defer.inlineCallbacks
    def test_first_failure_of_the_first_build(self) -> Any:
        report = yield self.report(self.add_build(1, FAILURE, failing_test=True))
        self.assertEqual(report["subject"], "[snowbird] main FAILURE 1111111: tests failed")
        self.assertEqual(report["users"], ["Dev 1 <dev1@example.com>"])
        body = report["body"]
        self.assertIn("Failed step    tests: 3 passed, 1 failed\n", body)
        self.assertIn("Failing tests  tests.test_x::test_y\n", body)
        # the last 30 output lines, without the stream markers and the header lines
        self.assertIn("The last 30 lines of tests (stdio):", body)
        self.assertIn("    line 11\n", body)
        self.assertNotIn("    line 10\n", body)
        self.assertIn("    FAILED tests/test_x.py::test_y\n", body)
        self.assertNotIn("exit code", body)
        self.assertIn("tests.test_x::test_y", report["extra_info"]["conveyor"]["html"])

    @defer.inlineCallbacks
    def test_failure_after_success(self) -> Any:
        self.add_build(1, SUCCESS)
        report = yield self.report(self.add_build(2, FAILURE, failing_test=True))
        self.assertTrue(report["subject"].endswith(": tests failed"))
        self.assertIn("(the previous build: SUCCESS)", report["body"])

    @defer.inlineCallbacks
    def test_fix(self) -> Any:
        self.add_build(1, FAILURE, failing_test=True)
        report = yield self.report(self.add_build(2, SUCCESS))
        self.assertEqual(report["subject"], "[snowbird] main SUCCESS 2222222: fixed")

    @defer.inlineCallbacks
    def test_green_after_green_is_silent(self) -> Any:
        self.add_build(1, SUCCESS)
        report = yield self.report(self.add_build(2, SUCCESS))
        self.assertIsNone(report)

    @defer.inlineCallbacks
    def test_still_failing_is_silent_unless_every_failure(self) -> Any:
        self.add_build(1, FAILURE, failing_test=True)
        buildid = self.add_build(2, FAILURE, failing_test=True)
        self.assertIsNone((yield self.report(buildid)))
        report = yield self.report(buildid, every_failure=True)
        self.assertTrue(report["subject"].endswith(": tests still failing"))

    @defer.inlineCallbacks
    def test_cancelled_and_unfinished_builds_are_not_the_previous_build(self) -> Any:
        self.add_build(1, FAILURE, failing_test=True)
        self.add_build(2, CANCELLED)
        self.add_build(3, None)  # still running (another worker)
        report = yield self.report(self.add_build(4, SUCCESS))
        self.assertTrue(report["subject"].endswith(": fixed"))

    @defer.inlineCallbacks
    def test_previous_build_is_of_the_same_branch(self) -> Any:
        # pull requests share a builder: each has its own history
        self.add_build(1, FAILURE, branch="refs/pull/1/head", failing_test=True)
        self.add_build(2, SUCCESS, branch="refs/pull/2/head")
        report = yield self.report(
            self.add_build(3, FAILURE, branch="refs/pull/2/head", failing_test=True)
        )
        self.assertTrue(report["subject"].startswith("[snowbird] PR #2 FAILURE"))
        self.assertIsNone(
            (yield self.report(self.add_build(4, SUCCESS, branch="refs/pull/5/head")))
        )


class MailNotifierTest(unittest.TestCase):
    def notifier(self) -> mail_reporters.ConveyorMailNotifier:
        n = mail_reporters.ConveyorMailNotifier(
            name="mail-test",
            fromaddr="conveyor@example.com",
            extraRecipients=["team@example.com"],
            generators=[],
        )
        # what reconfigService sets
        n.fromaddr, n.extraRecipients, n.sendToInterestedUsers, n.lookup = (
            "conveyor@example.com",
            ["team@example.com"],
            True,
            None,
        )
        self.sent: list = []
        n.sendMail = lambda m, recipients: self.sent.append((m, recipients))
        return n

    def report(self, users: list[str]) -> dict:
        return {
            "body": "plain text\n",
            "type": "plain",
            "subject": "[snowbird] main FAILURE x",
            "extra_info": {"conveyor": {"html": "<p>html</p>"}},
            "users": users,
            "builds": [{"builder": {"name": "snowbird-ci"}, "results": FAILURE, "url": URL}],
        }

    def test_multipart_alternative_to_the_authors_cc_the_team(self) -> None:
        self.notifier().sendMessage([self.report(["Ada <ada@sprintly.example>", "nobody"])])
        ((m, recipients),) = self.sent
        self.assertEqual(sorted(recipients), ["Ada <ada@sprintly.example>", "team@example.com"])
        self.assertEqual(m.get_content_type(), "multipart/alternative")
        self.assertEqual(
            [p.get_content_type() for p in m.get_payload()], ["text/plain", "text/html"]
        )
        self.assertIn("ada@sprintly.example", m["To"])
        self.assertEqual(m["Cc"], "team@example.com")
        self.assertEqual(m["X-Conveyor-Result"], "FAILURE")
        self.assertEqual(m["X-Conveyor-Build-URL"], URL)

    def test_without_authors_the_team_is_the_recipient(self) -> None:
        self.notifier().sendMessage([self.report([])])
        ((m, recipients),) = self.sent
        self.assertEqual(recipients, ["team@example.com"])
        self.assertEqual(m["To"], "team@example.com")

    def test_lost_worker_mail_goes_to_the_admins(self) -> None:
        report = {
            "body": b"worker local is missing",
            "type": "plain",
            "subject": "[Conveyor] worker local is missing",
            "users": ["ops@example.com"],
            "worker": "local",
            "builds": None,
        }
        self.notifier().sendMessage([report])
        ((m, recipients),) = self.sent
        self.assertEqual(recipients, ["ops@example.com"])
        self.assertEqual(m["To"], "ops@example.com")
        self.assertEqual(m.get_content_type(), "text/plain")

    def test_a_thousand_commit_push_gives_a_mail_an_smtp_server_takes(self) -> None:
        # the probe's lost mails: one line of 1,000 authors ("500 Line too long"), and 360 kB
        changes = [
            ChangeFacts(
                revision=f"{i:040x}",
                title=f"Change {i} of a long series",
                author=f"Author {i} <a{i}@sprintly.example>",
            )
            for i in range(1000)
        ]
        subject, text, html_body = mail_text.render_mail(
            MailFacts(
                project="snowbird",
                branch="main",
                kind=FAILED,
                results=FAILURE,
                previous_results=SUCCESS,
                builder="snowbird-ci",
                number=7,
                url=URL,
                revision=changes[0].revision,
                changes=changes,
                failing_step="tests",
                log_name="stdio",
                log_tail=["x" * 5000] * 3,
            )
        )
        report = {
            **self.report([c.author for c in changes]),
            "body": text,
            "subject": subject,
            "extra_info": {"conveyor": {"html": html_body}},
        }
        self.notifier().sendMessage([report])
        ((m, recipients),) = self.sent
        self.assertEqual(len(recipients), 1001)  # every author, and the team
        sent = m.as_string()
        self.assertLessEqual(len(sent.encode()), 100_000)
        self.assertLessEqual(max(len(line) for line in sent.splitlines()), 998)
        plain = m.get_payload()[0].get_payload(decode=True).decode()
        self.assertIn("… and 974 more", plain)  # the commits since the last green, cut
        self.assertIn("Change 1 of a long series", plain)
        self.assertEqual(m["To"], "1000 authors of the changes:;")

    def test_the_address_headers_are_folded(self) -> None:
        authors = [f"Author {i} <a{i}@sprintly.example>" for i in range(40)]
        self.notifier().sendMessage([self.report(authors)])
        ((m, recipients),) = self.sent
        sent = m.as_string()
        to_lines = sent.split("\nTo: ", 1)[1].split("\nCC: ", 1)[0].splitlines()
        self.assertEqual(len(to_lines), 40)  # one address a line
        self.assertLessEqual(max(len(line) for line in to_lines), 80)
        from email import message_from_string
        from email.utils import getaddresses

        self.assertEqual(len(getaddresses([message_from_string(sent)["To"]])), 40)

    def test_a_body_too_large_for_a_mail_is_cut_and_says_so(self) -> None:
        report = {**self.report(["ada@sprintly.example"]), "body": "a line\n" * 40_000}
        self.notifier().sendMessage([report])
        ((m, _),) = self.sent
        self.assertEqual(m.get_content_type(), "text/plain")  # the HTML alternative dropped
        self.assertLessEqual(len(m.as_string().encode()), 100_000)
        self.assertIn("cut here: the mail would exceed 100 kB", m.get_payload(decode=True).decode())


class MailRetryTest(unittest.TestCase):
    """A temporary SMTP failure is retried; a mail that could not be sent is recorded on its
    build."""

    def notifier(self, failures: list[Exception]):
        from twisted.internet import task

        n = MailNotifierTest.notifier(self)
        n.clock = task.Clock()
        self.tries = 0

        def send(m, recipients):
            self.tries += 1
            if failures:
                return defer.fail(failures.pop(0))
            self.sent.append((m, recipients))
            return defer.succeed(None)

        n.sendMail = send
        self.recorded: list = []
        from types import SimpleNamespace

        n.parent = SimpleNamespace(
            master=SimpleNamespace(
                data=SimpleNamespace(
                    updates=SimpleNamespace(setBuildProperty=lambda *a: self.recorded.append(a))
                )
            )
        )
        return n

    def report(self) -> dict:
        report = MailNotifierTest.report(self, ["ada@sprintly.example"])
        report["builds"][0]["buildid"] = 42
        return report

    def test_a_temporary_failure_is_retried(self) -> None:
        from twisted.mail import smtp

        n = self.notifier(
            [
                smtp.SMTPConnectError(-1, "Unable to connect to server."),
                smtp.SMTPDeliveryError(451, b"4.3.0 try again later"),
            ]
        )
        done = n.sendMessage([self.report()])
        self.assertEqual((self.tries, self.sent), (1, []))
        n.clock.advance(10)
        self.assertEqual(self.tries, 2)
        n.clock.advance(60)
        self.assertEqual(self.tries, 3)
        self.assertEqual(len(self.sent), 1)
        self.assertEqual(self.recorded, [])
        self.successResultOf(done)

    def test_a_permanent_failure_is_not_retried_and_is_recorded_on_the_build(self) -> None:
        from twisted.mail import smtp

        n = self.notifier([smtp.SMTPDeliveryError(550, b"5.1.1 no such user")])
        self.successResultOf(n.sendMessage([self.report()]))
        self.assertEqual((self.tries, self.sent), (1, []))
        ((buildid, name, value, source),) = self.recorded
        self.assertEqual((buildid, name, source), (42, "mail_failed", "mail"))
        self.assertIn("550", value)
        self.assertIn("no such user", value)


# ---- the release mail ------------------------------------------------------------------------


def test_release_mail_names_versions_who_and_commits():
    subject, body = mail_text.render_release(
        ReleaseFacts(
            package="snowbird",
            version="1.0+ci2.g2",
            previous="1.0+ci1.g1",
            source="snowbird-staging",
            target="snowbird",
            who="releaser",
            url="http://ci/#/builders/3/builds/9",
            commits=["abc1234 Ada: Fix the board", "def5678 Bo: Faster"],
        )
    )
    assert subject == "[conveyor] snowbird 1.0+ci2.g2 released to snowbird"
    assert "snowbird 1.0+ci1.g1 → 1.0+ci2.g2 in snowbird\n" in body
    assert "promoted by releaser from snowbird-staging\n" in body
    assert "build: http://ci/#/builders/3/builds/9\n" in body
    assert "commits (2):\n  abc1234 Ada: Fix the board\n  def5678 Bo: Faster\n" in body


def test_release_mail_without_commits_or_previous_version():
    _, body = mail_text.render_release(
        ReleaseFacts(
            package="snowbird",
            version="1.0+ci2.g2",
            previous=None,
            source="snowbird-staging",
            target="snowbird",
            who="",
            url="http://ci/",
        )
    )
    assert body.startswith("snowbird (none) → 1.0+ci2.g2 in snowbird\npromoted by ? from")
    assert body.endswith("commits: none recorded\n")


class OneBuilderTest(TestReactorMixin, unittest.TestCase):
    """Base: a fake master and database with one builder (BUILDER: id, name) and a worker."""

    BUILDER: tuple[int, str] = (80, "promote")

    @defer.inlineCallbacks
    def setUp(self) -> Any:
        self.setup_test_reactor()
        self.master = yield fakemaster.make_master(self, wantData=True, wantDb=True, wantMq=True)
        builderid, name = self.BUILDER
        yield self.master.db.insert_test_data(
            [
                fakedb.Master(id=92),
                fakedb.Worker(id=13, name="local"),
                fakedb.Builder(id=builderid, name=name),
            ]
        )
        self.number = 0


class ReleaseGeneratorTest(OneBuilderTest):
    """Promote builds in a fake database: only a successful change into the end of the path
    is mailed, to the team's list only."""

    board_url = None  # the release mail's generator; with a URL, the one that asks for approvals

    @defer.inlineCallbacks
    def report(self, results: int, **props: Any) -> Any:
        self.number += 1
        n = self.number
        rows = [
            fakedb.Buildset(id=300 + n, results=results),
            fakedb.BuildRequest(id=400 + n, buildsetid=300 + n, builderid=80),
            fakedb.Build(
                id=100 + n,
                number=n,
                builderid=80,
                buildrequestid=400 + n,
                workerid=13,
                masterid=92,
                results=results,
                state_string="done",
                started_at=1000,
                complete_at=1010,
            ),
        ]
        values = {
            "package": "snowbird",
            "package_version": "1.0+ci2.g2",
            "previous_version": "1.0+ci1.g1",
            "from_dist": "snowbird-staging",
            "to_dist": "snowbird",
            "owner": "releaser",
            "promotion_noop": False,
            "release_commits": ["abc1234 Ada: Fix the board"],
            **props,
        }
        rows += [fakedb.BuildProperty(buildid=100 + n, name=k, value=v) for k, v in values.items()]
        yield self.master.db.insert_test_data(rows)
        generator = mail_reporters.ReleaseMailGenerator(
            ["promote"], ["snowbird"], ["snowbird"], board_url=self.board_url
        )
        build = yield self.master.data.get(("builds", 100 + n))
        report = yield generator.generate(
            self.master, FakeReporter(self.master), ("builds", 100 + n, "finished"), build
        )
        return report

    @defer.inlineCallbacks
    def test_a_promotion_into_production_is_mailed_to_the_list_only(self) -> Any:
        report = yield self.report(SUCCESS)
        self.assertEqual(report["subject"], "[conveyor] snowbird 1.0+ci2.g2 released to snowbird")
        self.assertIn("abc1234 Ada: Fix the board", report["body"])
        self.assertEqual(report["users"], [])

    @defer.inlineCallbacks
    def test_staging_nothing_changed_or_failed_is_not_mailed(self) -> Any:
        self.assertIsNone((yield self.report(SUCCESS, to_dist="snowbird-staging")))
        self.assertIsNone((yield self.report(SUCCESS, promotion_noop=True)))
        self.assertIsNone((yield self.report(FAILURE)))
        self.assertIsNone((yield self.report(SUCCESS, package="other")))

    @defer.inlineCallbacks
    def test_a_request_is_no_release_but_asks_the_team_for_approvals(self) -> Any:
        pending = {
            "request": 12,
            "package": "snowbird",
            "version": "1.0+ci2.g2",
            "from": "snowbird-staging",
            "to": "snowbird",
            "requested_by": "alice",
            "approved_by": ["carol"],
            "needed": 2,
            "missing": 1,
            "expires": "2026-12-08T12:00:00+00:00",
        }
        waiting = {"awaiting_approval": True, "pending_request": pending}
        self.assertIsNone((yield self.report(SUCCESS, **waiting)))  # no release mail
        self.board_url = "http://ci/#/releases"
        report = yield self.report(SUCCESS, **waiting)
        self.assertEqual(
            report["subject"],
            "[conveyor] snowbird 1.0+ci2.g2 waits for approval into snowbird: 1 of 2 (request 12)",
        )
        for line in (
            "request 12 asked by alice\n",
            "approved by carol (1 of 2)\n",
            "still needed: 1 more, with a production role, not alice, carol\n",
            "expires: 2026-12-08T12:00:00+00:00\n",
            "bin/conveyor approve snowbird 12\n",
            "http://ci/#/releases\n",
        ):
            self.assertIn(line, report["body"])
        self.assertEqual(report["users"], [])
        # the asking generator mails no release
        self.assertIsNone((yield self.report(SUCCESS)))


class PublishFailureGeneratorTest(OneBuilderTest):
    """Publish builds in a fake database: one that failed is mailed to the admins only, with
    the failing step's summary; one that passed is not."""

    BUILDER = (81, "publish")

    @defer.inlineCallbacks
    def report(self, results: int) -> Any:
        rows = [
            fakedb.Buildset(id=301, results=results),
            fakedb.BuildRequest(id=401, buildsetid=301, builderid=81),
            fakedb.Build(
                id=101,
                number=7,
                builderid=81,
                buildrequestid=401,
                workerid=13,
                masterid=92,
                results=results,
                state_string="failed switch",
                started_at=1000,
                complete_at=1010,
            ),
            fakedb.Step(
                id=51,
                number=0,
                name="fetch",
                buildid=101,
                results=SUCCESS,
                state_string="fetched 1 package(s)",
            ),
            fakedb.Step(
                id=52,
                number=1,
                name="switch",
                buildid=101,
                results=results,
                state_string=repository.SIGNING_MESSAGE,
            ),
        ]
        rows += [
            fakedb.BuildProperty(buildid=101, name=k, value=v)
            for k, v in {
                "project": "snowbird",
                "package_version": "1.0+ci2.g2",
                "distribution": "snowbird-staging",
                "commit": "a" * 40,
            }.items()
        ]
        yield self.master.db.insert_test_data(rows)
        build = yield self.master.data.get(("builds", 101))
        report = yield admins_reporters.PublishFailureGenerator().generate(
            self.master, FakeReporter(self.master), ("builds", 101, "finished"), build
        )
        return report

    @defer.inlineCallbacks
    def test_a_failed_publish_is_mailed_to_the_admins_with_its_reason(self) -> Any:
        report = yield self.report(FAILURE)
        self.assertEqual(
            report["subject"],
            "[conveyor] publish of snowbird 1.0+ci2.g2 into "
            "snowbird-staging failed: GnuPG could not sign",
        )
        self.assertIn("snowbird 1.0+ci2.g2 was not published into snowbird-staging", report["body"])
        self.assertIn(repository.SIGNING_MESSAGE, report["body"])
        self.assertIn("a" * 40, report["body"])
        self.assertEqual(report["users"], [])

    @defer.inlineCallbacks
    def test_a_publish_that_passed_is_not_mailed(self) -> Any:
        self.assertIsNone((yield self.report(SUCCESS)))


class _FakeData:
    """master.data.get for log_tail: a step's logs and their contents."""

    def __init__(self, logs: list[dict], contents: dict[int, str]):
        self.logs, self.contents = logs, contents

    def get(self, path, **kwargs):
        if path[0] == "steps":
            return defer.succeed(self.logs)
        return defer.succeed({"content": self.contents[path[1]]})


@pytest.mark.parametrize(
    "logs, name, tail",
    [
        # the lint step: its digest `problems`, not the linter's raw JSON on stdio
        (
            [
                {"slug": "stdio", "name": "stdio", "logid": 1, "num_lines": 1, "type": "s"},
                {"slug": "problems", "name": "problems", "logid": 2, "num_lines": 1, "type": "t"},
            ],
            "problems",
            ["a.py:1:8: F401 `os` imported but unused"],
        ),
        # any other step: stdio, without the header lines (argv, exit code)
        (
            [{"slug": "stdio", "name": "stdio", "logid": 1, "num_lines": 3, "type": "s"}],
            "stdio",
            ['[{"filename": "a.py"}]'],
        ),
    ],
)
def test_a_mail_quotes_a_steps_digest_log_before_its_stdio(logs, name, tail):
    from master.reporters.facts import log_tail

    contents = {
        1: 'hruff check .\no[{"filename": "a.py"}]\nhexit 1\n',
        2: "a.py:1:8: F401 `os` imported but unused\n",
    }
    master = type("Master", (), {"data": _FakeData(logs, contents)})()
    result = []
    log_tail(master, {"stepid": 7}).addCallback(result.append)
    assert result == [(name, tail)]
