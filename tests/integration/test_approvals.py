"""Two-person rule for production, end to end ([approvals] snowbird = 2): a request waits and
holds nothing; the requester cannot approve it; a newer request supersedes it; two distinct
production-role approvals promote exactly what was asked, and the history, the board and the
release mail name them; a rollback needs none and is recorded."""

from __future__ import annotations

import os

import pytest

from conveyor import approvals
from conveyor.results import NAMES
from ops import api
from ops import cli
from ops import mailsink
from ops import services
from tests.integration.helpers import free_port
from tests.integration.helpers import running_installation
from tests.integration.helpers import staging_index
from tests.integration.helpers import two_versions
from tests.integration.helpers import users_file

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="starts the services as root like make run"),
]

STAGING, PRODUCTION = "snowbird-staging", "snowbird"
USERS = {
    "alice": ("alice-password", "releasers"),  # asks
    "carol": ("carol-password", "release-managers"),  # production roles
    "dave": ("dave-password", "release-managers"),
    "erin": ("erin-password", "release-managers"),
}
BOARD = "plugins/wsgi_dashboards/releases/index.html"


@pytest.fixture(scope="module")
def installation():
    with running_installation(
        "approvals",
        extra=(
            f'[mail]\nsmtp_port = {free_port()}\n[auth]\nproduction = ["release-managers"]\n'
            "[approvals]\nsnowbird = 2\nexpire_after_hours = 48\n"
        ),
        before_start=users_file(USERS),
    ) as settings:
        yield settings


@pytest.fixture(scope="module")
def versions(installation):
    """Two CI builds in staging: (older, newer)."""
    return two_versions(installation)


def login(settings, user: str) -> api.Master:
    master = api.Master(settings.web_url)
    master.login(user, USERS[user][0])
    return master


def run(settings, user: str, scheduler: str, **params) -> dict:
    master = login(settings, user)
    return master.follow(master.force(scheduler, scheduler, reason="test", **params))


def request(settings, user: str, version: str) -> dict:
    return run(
        settings,
        user,
        "promote",
        package="snowbird",
        version=version,
        from_dist=STAGING,
        to_dist=PRODUCTION,
    )


def approve(settings, user: str, number: int) -> dict:
    return run(settings, user, "approve", distribution=PRODUCTION, request=str(number))


def summaries(build: dict) -> str:
    return "\n".join(step["state_string"] for step in build["steps"])


def log(settings) -> list[dict]:
    return approvals.parse_log((settings.history_dir / f"{PRODUCTION}.requests.jsonl").read_text())


def production(settings) -> str:
    return staging_index(settings, PRODUCTION)


def test_two_person_rule(installation, versions, monkeypatch, capsys):
    older, newer = versions
    s = installation

    # carol (production role) asks: the build records the request and ends, promoting nothing
    first = request(s, "carol", older)
    assert NAMES[first["results"]] == "SUCCESS", api.describe(first)
    assert "waiting for approval: request" in summaries(first)
    assert f"Version: {older}\n" not in production(s)
    assert log(s)[-1]["event"] == "requested" and log(s)[-1]["who"] == "carol"
    number = first["number"]
    # the team is asked (the project's mail list), with what is asked and how to approve
    asking = wait_for_mail(
        s,
        f"[conveyor] snowbird {older} waits for approval into {PRODUCTION}: 0 of 2 "
        f"(request {number})",
    )
    assert f"bin/conveyor approve {PRODUCTION} {number}" in asking and "asked by carol" in asking

    # the requester cannot approve their own request (the build refuses, and says why)
    own = approve(s, "carol", number)
    assert NAMES[own["results"]] == "FAILURE"
    assert "the requester cannot approve their own request" in summaries(own)
    # a releaser may ask, but not approve (the authz: a production role)
    with pytest.raises(api.ApiError) as err:
        approve(s, "alice", number)
    assert err.value.code == cli.FORBIDDEN

    # one approval of two: nothing promoted yet; the board shows who approved and who is needed
    one = approve(s, "dave", number)
    assert NAMES[one["results"]] == "SUCCESS", api.describe(one)
    assert "approved by dave (1 of 2)" in summaries(one)
    assert f"Version: {older}\n" not in production(s)
    page = login(s, "erin").request(BOARD)
    assert f'data-request="{number}"' in page
    assert '<span class="conveyor-approved-by">dave</span> (1 of 2)' in page
    assert "1 more, with a production role, not carol, dave" in page
    assert f"Approve request {number}" in page  # erin may
    assert f"Approve request {number}" not in login(s, "carol").request(BOARD)  # carol asked
    assert cli.main(["--settings", str(s.file), "status"]) == cli.OK
    assert f"request {number} (pending): {older}, asked by carol; approved by dave (1 of 2)" in (
        capsys.readouterr().out
    )

    # a newer request (alice, a releaser) supersedes the pending one; its approval is void
    second = request(s, "alice", newer)
    assert NAMES[second["results"]] == "SUCCESS", api.describe(second)
    events = log(s)
    assert {"event": "superseded", "request": number, "by": second["number"]}.items() <= (
        events[-2].items()
    )
    late = approve(s, "erin", number)
    assert NAMES[late["results"]] == "FAILURE"
    assert f"superseded by request {second['number']}" in summaries(late)

    # two distinct production-role approvals promote what alice asked for; dave by the CLI
    monkeypatch.setenv("CONVEYOR_USER", "dave")
    monkeypatch.setenv("CONVEYOR_PASSWORD", USERS["dave"][0])
    assert cli.main(["--settings", str(s.file), "approve", PRODUCTION]) == cli.OK
    out = capsys.readouterr().out
    assert f"request {second['number']}: snowbird {newer}" in out and "asked by alice" in out
    assert f"Version: {newer}\n" not in production(s)
    done = approve(s, "erin", second["number"])
    assert NAMES[done["results"]] == "SUCCESS", api.describe(done)
    assert f"Version: {newer}\n" in production(s)
    entry = [e for e in history(s) if e["action"] == "promote"][-1]
    assert entry["version"] == newer and entry["who"] == "alice"
    assert entry["approved_by"] == ["dave", "erin"] and entry["request"] == second["number"]
    assert log(s)[-1]["event"] == "promoted"
    assert cli.main(["--settings", str(s.file), "history", PRODUCTION]) == cli.OK
    out = capsys.readouterr().out
    assert f"request {second['number']} approved by dave" in out
    assert f"request {number} superseded by {second['number']}" in out
    mail = wait_for_mail(s, f"[conveyor] snowbird {newer} released to {PRODUCTION}")
    assert "approved by dave, erin" in mail and "promoted by alice" in mail

    # a rollback needs no approval, and is recorded
    back = run(s, "carol", "rollback", distribution=PRODUCTION, state="1")  # its first state
    assert NAMES[back["results"]] == "SUCCESS", api.describe(back)
    assert history(s)[-1]["action"] == "rollback" and history(s)[-1]["who"] == "carol"
    assert f"Version: {newer}\n" not in production(s)


def history(settings) -> list[dict]:
    from conveyor import release

    return release.parse_history((settings.history_dir / f"{PRODUCTION}.jsonl").read_text())


def wait_for_mail(settings, subject: str, timeout: float = 30) -> str:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in map(mailsink.read, mailsink.messages(services.mail_dir(settings))):
            if message["Subject"] == subject:
                return mailsink.text_of(message)
        time.sleep(0.5)
    raise AssertionError(f"no mail {subject!r}")
