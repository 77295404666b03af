"""The two-person rule's pure core (conveyor/approvals.py) and its settings."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pytest

from conveyor import approvals
from conveyor import settings as settings_module
from conveyor.release import ReleaseError

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
PLAN = {
    "package": "snowbird",
    "version": "1.2+ci1",
    "from": "snowbird-staging",
    "to": "snowbird",
    "basis_snapshot": "snowbird-7",
    "basis_state": 7,
}


def request(number=42, who="alice", needed=2, when=NOW, hours=72, **plan):
    return approvals.new_request(
        number, who, {**PLAN, **plan}, needed, hours, when, f"http://ci/#/b/{number}"
    )


def approval(number, who, when=NOW):
    return {"event": "approved", "request": number, "who": who, "when": when.isoformat()}


def test_the_requester_cannot_approve_their_own_request():
    events = [request()]
    with pytest.raises(ReleaseError, match="requester cannot approve their own request"):
        approvals.check_approval(events, 42, "alice", NOW)


def test_two_distinct_approvers_complete_a_request_and_one_may_not_count_twice():
    events = [request()]
    first = approvals.check_approval(events, 42, "carol", NOW)
    assert first.missing() == 2
    events.append(approval(42, "carol"))
    with pytest.raises(ReleaseError, match="carol has approved request 42 already"):
        approvals.check_approval(events, 42, "carol", NOW)
    second = approvals.check_approval(events, 42, "dave", NOW)
    assert second.approvers == ["carol"] and second.missing() == 1
    events.append(approval(42, "dave"))
    done = approvals.requests(events)[42]
    assert done.approvers == ["carol", "dave"] and done.missing() == 0
    assert approvals.still_needed(done) == "none"


def test_a_newer_request_supersedes_the_pending_one_which_can_no_longer_be_approved():
    events = [request(42), approval(42, "carol")]
    added = approvals.closing_before(events, 43, NOW + timedelta(minutes=5))
    assert added == [
        {"event": "superseded", "request": 42, "by": 43, "when": "2026-12-05T12:05:00+00:00"}
    ]
    events += added + [request(43, who="bob", version="1.3+ci2")]
    assert approvals.open_request(events).number == 43
    assert approvals.open_request(events).approvers == []  # approvals do not carry over
    with pytest.raises(ReleaseError, match="superseded by request 43"):
        approvals.check_approval(events, 42, "dave", NOW)


def test_a_request_expires_after_the_configured_time_and_is_refused_then():
    events = [request(hours=2)]
    assert approvals.requests(events)[42].expires == "2026-12-05T14:00:00+00:00"
    approvals.check_approval(events, 42, "carol", NOW + timedelta(hours=1, minutes=59))
    late = NOW + timedelta(hours=2)
    with pytest.raises(ReleaseError, match="expired at 2026-12-05T14:00:00"):
        approvals.check_approval(events, 42, "carol", late)
    assert approvals.requests(events)[42].state(late) == "expired"
    # a new request records the expiry, not a supersession
    assert approvals.closing_before(events, 43, late)[0]["event"] == "expired"


def test_a_promoted_or_unknown_request_is_refused_with_what_happened():
    events = [request(), approval(42, "carol"), approval(42, "dave")]
    events.append({"event": "promoted", "request": 42, "when": NOW.isoformat()})
    with pytest.raises(ReleaseError, match="no longer pending: it was promoted"):
        approvals.check_approval(events, 42, "erin", NOW)
    with pytest.raises(ReleaseError, match="there is no request 7"):
        approvals.check_approval(events, 7, "erin", NOW)
    assert approvals.open_request(events) is None


def test_the_view_shows_who_approved_and_who_is_still_needed():
    events = [request(41), *approvals.closing_before([request(41)], 42, NOW), request(42)]
    events.append(approval(42, "carol"))
    view = approvals.view(approvals.parse_log("".join(map(approvals.log_line, events))), NOW)
    pending = view["pending"]
    assert pending["request"] == 42 and pending["state"] == "pending"
    assert pending["requested_by"] == "alice" and pending["approved_by"] == ["carol"]
    assert pending["missing"] == 1
    assert [r["request"] for r in view["recent"]] == [41]
    assert view["recent"][0]["state"] == "superseded"
    line = approvals.summary(approvals.open_request(events))
    assert "approved by carol (1 of 2)" in line
    assert "still needed: 1 more (a production role; not alice, carol)" in line


def test_identity_is_what_buildbot_records_as_a_builds_owner():
    assert approvals.identity({"email": "c@example.com", "username": "carol"}) == "c@example.com"
    assert approvals.identity({"username": "carol"}) == "carol"
    assert approvals.identity({"anonymous": True}) == ""


BASE = """
[conveyor]
[repository]
[workers.build]
[workers.repository]
[projects.snowbird]
github = "sprintly/snowbird"
clone_url = "x.git"
packages = ["snowbird"]
path = ["snowbird-staging", "snowbird"]
"""


def parse(extra: str):
    import tomllib

    return settings_module.parse(tomllib.loads(BASE + extra), Path("/srv/p/pipeline.toml"))


def test_settings_put_approvals_on_a_paths_last_distribution_only():
    s = parse("[approvals]\nsnowbird = 2\nexpire_after_hours = 24\n")
    assert s.approvals.of("snowbird") == 2 and s.approvals.of("snowbird-staging") == 0
    assert s.approvals.expire_after_hours == 24
    assert parse("").approvals.needed == {}
    assert parse("").approvals.expire_after_hours == 72
    with pytest.raises(settings_module.SettingsError, match=r"\[approvals.snowbird-staging\]"):
        parse("[approvals]\nsnowbird-staging = 2\n")
    with pytest.raises(settings_module.SettingsError, match="between 0 and 10"):
        parse("[approvals]\nsnowbird = 11\n")
    with pytest.raises(settings_module.SettingsError, match="expire_after_hours"):
        parse("[approvals]\nexpire_after_hours = 0\n")
