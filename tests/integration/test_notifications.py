"""Telling people, end to end: a real master, worker and repository on free loopback ports, the
mail sink (ops/mailsink.py, a real aiosmtpd SMTP server) on a free port, and a stand-in for the
GitHub API (a threaded http.server in this process) that records every request — the GitHub
Enterprise case, `[github] api_url = "http://127.0.0.1:PORT"`.

The tests share one installation and run in order: red build, fix, three quick pushes, a pull
request, a push of a thousand commits, the logs searched for the token, then a publish that
cannot sign (the admins are mailed, the board says so) and the push after it.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from conveyor.results import result_name
from conveyor.settings import Settings
from ops import api
from ops import board as ops_board
from ops import demo
from ops import github
from ops import mailsink
from ops import services
from ops import setup
from ops.mailsink import read
from ops.mailsink import text_of
from tests.integration.helpers import free_port
from tests.integration.helpers import running_installation
from tests.integration.helpers import staging_index

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds Debian packages: needs root"),
]

TOKEN = "ghp_ConveyorTest" + secrets.token_hex(16)
AUTHOR = github.AUTHOR["email"]
TEAM = "snowbird-team@example.com"
ADMIN = "ops@example.com"
FAILING_TEST = "tests.test_demo_red::test_version_has_three_parts"
FINAL = ("success", "failure", "error")


class GitHubStandIn:
    """Answers the commit status API like GitHub (201) and records every request."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                entry = {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers.items()),
                    "json": json.loads(raw) if raw else None,
                    "time": time.monotonic(),
                }
                with stand_in.lock:
                    stand_in.requests.append(entry)
                return entry

            def _answer(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802
                entry = self._record()
                if "/statuses/" in self.path:
                    self._answer(201, {"id": len(stand_in.requests), **(entry["json"] or {})})
                else:
                    self._answer(404, {"message": "Not Found"})

            def do_GET(self) -> None:  # noqa: N802
                self._record()
                self._answer(404, {"message": "Not Found"})

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def statuses(self, sha: str) -> list[dict]:
        """The statuses posted for a commit, in the order they arrived."""
        with self.lock:
            return [
                r["json"]
                for r in self.requests
                if r["method"] == "POST" and r["path"].endswith(f"/statuses/{sha}")
            ]

    def wait_final(self, sha: str, timeout: float = 30) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.statuses(sha)
            if got and got[-1]["state"] in FINAL or time.monotonic() > deadline:
                return got
            time.sleep(0.3)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Installation:
    settings: Settings
    github: GitHubStandIn
    checkout: Path

    @property
    def project(self):
        return self.settings.projects[0]

    @property
    def mail_dir(self) -> Path:
        return services.mail_dir(self.settings)

    def mails(self) -> set[Path]:
        return set(self.mail_dir.glob("*.eml"))


@pytest.fixture(scope="module")
def inst():
    github = GitHubStandIn()
    try:
        with running_installation(
            "notifications",
            extra=(
                f'[mail]\nsmtp_port = {free_port()}\nfrom = "conveyor@example.com"\n'
                f'[github]\napi_url = "{github.url}"\n'
            ),
            conveyor=f'admins = ["{ADMIN}"]\n',
            before_start=lambda s: setup.write_secret(s, "github-token", TOKEN),
        ) as settings:
            checkout = demo.ensure_demo_repo(settings, settings.projects[0])
            yield Installation(settings, github, checkout)
    finally:
        github.close()


def commit_and_push(inst: Installation, parts: int, message: str) -> tuple[str, str]:
    before = github.git(inst.checkout, "rev-parse", "HEAD")
    after = github.commit_file(
        inst.checkout, demo.RED_TEST, demo.RED_SOURCE.format(parts=parts), message
    )
    github.push_branch(inst.checkout, inst.project)
    return before, after


def new_mails(inst: Installation, known: set[Path], settle: float = 3) -> list[Path]:
    """Mails that arrived after `known`: waits for the first, then `settle` s for any more."""
    first = mailsink.wait_for_mail(inst.mail_dir, known, timeout=30)
    if first:
        time.sleep(settle)
    return sorted(inst.mails() - known)


def assert_reported(inst: Installation, sha: str, build: dict, state: str) -> None:
    statuses = inst.github.wait_final(sha)
    assert statuses, f"no commit status for {sha}"
    assert {s["context"] for s in statuses} == {"conveyor/snowbird"}
    assert statuses[-1]["state"] == state, statuses
    assert statuses[-1]["target_url"] == build["url"]
    # pending first (queued: the build request's page; started: the build's page)
    assert statuses[0]["state"] == "pending"
    assert any(s["state"] == "pending" and s["target_url"] == build["url"] for s in statuses)
    assert [s["state"] for s in statuses].index(state) == len(statuses) - 1


def test_red_build_mails_the_team_and_the_author_once_naming_the_failing_test(inst):
    known = inst.mails()
    before, sha = commit_and_push(inst, 4, "Check that the version has three parts")
    started = time.monotonic()
    build = github.push_and_wait(inst.settings, inst.project, inst.checkout, before=before)
    assert result_name(build["results"]) == "FAILURE", api.describe(build)

    first = mailsink.wait_for_mail(inst.mail_dir, known, timeout=30)
    print(f"\npush to mail: {time.monotonic() - started:.1f} s (build {build['seconds']:.1f} s)")
    time.sleep(3)
    mails = sorted(inst.mails() - known)
    assert first and len(mails) == 1, mails
    mail = read(mails[0])

    assert mail["Subject"] == f"[snowbird] main FAILURE {sha[:7]}: tests failed"
    assert set(mail["X-Envelope-To"].split(", ")) == {AUTHOR, TEAM}
    assert AUTHOR in mail["To"] and TEAM in mail["Cc"]
    assert mail["From"] == "conveyor@example.com"
    assert mail.get_content_type() == "multipart/alternative"
    text, html_body = text_of(mail, "plain"), text_of(mail, "html")
    for body in (text, html_body):
        assert FAILING_TEST in body
        assert build["url"] in body
        assert sha[:7] in body
    assert "Check that the version has three parts" in text
    assert "1 failed" in text
    # the tail of the failing step's log: pytest's own summary of the failure
    assert "FAILED tests/test_demo_red.py::test_version_has_three_parts" in text
    assert "<pre" in html_body
    # the failure text of the JUnit XML, test by test
    assert f"{FAILING_TEST} failed:" in text
    assert "    E       AssertionError: assert 3 == 4" in text
    assert "AssertionError: assert 3 == 4" in html_body

    assert_reported(inst, sha, build, "failure")


def test_next_green_build_sends_one_fixed_mail(inst):
    known = inst.mails()
    before, sha = commit_and_push(inst, 3, "Fix the version check: three parts")
    build = github.push_and_wait(inst.settings, inst.project, inst.checkout, before=before)
    assert result_name(build["results"]) == "SUCCESS", api.describe(build)

    mails = new_mails(inst, known)
    assert len(mails) == 1, mails
    mail = read(mails[0])
    assert mail["Subject"] == f"[snowbird] main SUCCESS {sha[:7]}: fixed"
    assert set(mail["X-Envelope-To"].split(", ")) == {AUTHOR, TEAM}
    text = text_of(mail)
    assert "is fixed" in text and build["url"] in text
    assert "Coverage" in text and FAILING_TEST not in text

    assert_reported(inst, sha, build, "success")


def test_three_quick_pushes_are_three_builds_leave_nothing_pending_and_mail_nobody(inst):
    known = inst.mails()
    project = inst.project
    last = api.last_build_number(inst.settings, project.ci_builder)
    shas = []
    for i in range(3):
        shas.append(
            github.commit_file(inst.checkout, f"notes/{i}.txt", f"note {i}\n", f"Add note {i}")
        )
    github.push_branch(inst.checkout, project)
    before = github.git(inst.checkout, "rev-parse", "HEAD~3")
    for sha in shas:  # three deliveries, back to back, as GitHub sends three pushes
        status, body = github.deliver(
            inst.settings, "push", github.push_payload(inst.checkout, project, before, sha)
        )
        assert status in (200, 202), body
        before = sha

    builds = []
    for _ in shas:
        build = api.wait_for_build(inst.settings, project.ci_builder, last, timeout=300)
        builds.append(build)
        last = build["number"]
    assert [b["properties"]["got_revision"][0] for b in builds] == shas
    assert all(result_name(b["results"]) == "SUCCESS" for b in builds), [b["url"] for b in builds]

    for sha, build in zip(shas, builds, strict=True):
        assert_reported(inst, sha, build, "success")
    # green after green: silence
    time.sleep(3)
    assert inst.mails() - known == set()


def test_pull_request_is_tested_and_reported_on_its_head_never_published(inst):
    settings, project, checkout = inst.settings, inst.project, inst.checkout
    index_before = staging_index(settings)
    publish_before = api.last_build_number(settings, "publish")
    ci_before = api.last_build_number(settings, project.ci_builder)
    pr_before = api.last_build_number(settings, project.pr_builder)

    head, status, body = github.pull_request_with_file(
        settings,
        project,
        checkout,
        1,
        "feature",
        "notes/pr.txt",
        "from a pull request\n",
        "Add a note from a pull request",
    )
    assert status in (200, 202) and "1 change" in body, body

    build = api.wait_for_build(settings, project.pr_builder, pr_before, timeout=300)
    assert result_name(build["results"]) == "SUCCESS", api.describe(build)
    props = {name: value for name, (value, _source) in build["properties"].items()}
    assert props["got_revision"] == head
    assert props["branch"] == "refs/pull/1/head"
    assert props["tests_passed"] > 0 and props["tests_failed"] == 0
    assert "package_version" not in props
    steps = api.api(settings, f"builds/{build['buildid']}/steps")["steps"]
    names = [s["name"] for s in steps]
    assert "tests" in names and "coverage" in names
    assert not any(n.startswith(("publish", "deb", "version", "upload")) for n in names), names

    assert_reported(inst, head, build, "success")

    # a closed pull request records nothing
    status, body = github.deliver(
        settings,
        "pull_request",
        github.pull_request_payload(checkout, project, 1, head, action="closed"),
    )
    assert status in (200, 202) and "no change" in body, body

    time.sleep(2)
    assert api.last_build_number(settings, project.pr_builder) == build["number"]
    assert api.last_build_number(settings, "publish") == publish_before
    assert api.last_build_number(settings, project.ci_builder) == ci_before
    assert staging_index(settings) == index_before


def test_a_thousand_commit_push_still_delivers_its_failure_mail(inst):
    # a long-lived branch merged at last: 1,000 commits by 150 people, the last one red. The
    # mail sink is aiosmtpd, which refuses lines over RFC 5321's 1,000 (as real servers do)
    known = inst.mails()
    before = github.git(inst.checkout, "rev-parse", "HEAD")
    for i in range(999):
        github.run(
            [
                "git",
                "-C",
                str(inst.checkout),
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                f"Merged work, part {i}",
                "--author",
                f"Developer {i % 150} <dev{i % 150}@sprintly.example>",
            ]
        )
    sha = github.commit_file(
        inst.checkout,
        demo.RED_TEST,
        demo.RED_SOURCE.format(parts=4),
        "Check that the version has four parts",
    )
    github.push_branch(inst.checkout, inst.project)
    build = github.push_and_wait(inst.settings, inst.project, inst.checkout, before=before)
    assert result_name(build["results"]) == "FAILURE", api.describe(build)

    mails = new_mails(inst, known)
    assert len(mails) == 1, mails
    assert mails[0].stat().st_size <= 100_000
    mail = read(mails[0])
    assert mail["Subject"] == f"[snowbird] main FAILURE {sha[:7]}: tests failed"
    # every author is told (the envelope), the header says how many
    assert len(mail["X-Envelope-To"].split(", ")) == 152  # 150, Ada (the last commit), the team
    assert mail["To"] == "151 authors of the changes:;"
    text = text_of(mail)
    assert "Merged work, part 998" in text and "… and 974 more" in text
    assert "FAILED tests/test_demo_red.py::test_version_has_three_parts" in text


def raw(settings: Settings, path: str) -> str:
    master = api.reader(settings)
    master.get("masters")  # logs in: the installation is private
    with master.opener.open(f"{settings.web_url}api/v2/{path}", timeout=30) as response:
        return response.read().decode(errors="replace")


def test_the_token_is_used_but_appears_in_no_log(inst):
    settings = inst.settings
    posts = [r for r in inst.github.requests if r["method"] == "POST"]
    assert posts and all(r["headers"].get("Authorization") == f"token {TOKEN}" for r in posts)

    places = {
        str(settings.master_dir / "twistd.log"): (settings.master_dir / "twistd.log").read_text(
            errors="replace"
        )
    }
    for path in (settings.state_dir / "workers").glob("*/twistd.log"):
        places[str(path)] = path.read_text(errors="replace")
    for path in list((settings.state_dir / "run").glob("*.log")) + sorted(inst.mails()):
        places[str(path)] = path.read_text(errors="replace")
    builds = api.api(settings, "builds")["builds"]
    assert len(builds) >= 6
    for build in builds:
        for step in api.api(settings, f"builds/{build['buildid']}/steps")["steps"]:
            for log in api.api(settings, f"steps/{step['stepid']}/logs")["logs"]:
                places[f"log {log['logid']}"] = raw(settings, f"logs/{log['logid']}/raw")
    assert len(places) > 20
    leaked = [where for where, text in places.items() if TOKEN in text]
    assert leaked == []


def test_a_publish_that_cannot_sign_is_mailed_to_the_admins_and_the_next_push_publishes(inst):
    # the repository's GnuPG home is away (a remount gone wrong) for longer than the publish
    # tries again (about a minute): the publish fails for good, staging keeps what it served,
    # the admins get one mail and the board lists it; once the home is back, the next push
    # publishes and the board has nothing left to say
    settings = inst.settings
    home = settings.repository.gnupg_home
    away = home.with_name(home.name + ".away")
    before = github.git(inst.checkout, "rev-parse", "HEAD")
    sha = github.commit_file(
        inst.checkout, demo.RED_TEST, demo.RED_SOURCE.format(parts=3), "Sign me, if you can"
    )
    github.push_branch(inst.checkout, inst.project)
    known = inst.mails()
    home.rename(away)
    try:
        build = github.push_and_wait(settings, inst.project, inst.checkout, before=before)
    finally:
        away.rename(home)
    assert result_name(build["results"]) == "FAILURE", api.describe(build)
    to_admins = [read(path) for path in new_mails(inst, known, settle=10)]
    to_admins = [mail for mail in to_admins if mail["X-Envelope-To"] == ADMIN]
    assert len(to_admins) == 1, [m["Subject"] for m in to_admins]
    assert to_admins[0]["Subject"] == (
        f"[conveyor] publish of {inst.project.github} {build['properties']['package_version'][0]}"
        " into snowbird-staging failed: GnuPG could not sign"
    )
    assert sha in text_of(to_admins[0])
    attention = ops_board.collect(settings, with_builds=False).attention
    assert [a["kind"] for a in attention] == ["publish failed"], attention
    assert "GnuPG could not sign" in attention[0]["text"]

    github.commit_file(inst.checkout, "notes/signed.txt", "signed again\n", "Sign again")
    github.push_branch(inst.checkout, inst.project)
    build = github.push_and_wait(settings, inst.project, inst.checkout, before=sha)
    assert result_name(build["results"]) == "SUCCESS", api.describe(build)
    assert ops_board.collect(settings, with_builds=False).attention == []
