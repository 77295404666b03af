"""What a promote or rollback request records when it is asked (master/basis.py), from what the
repository serves then (a stand-in for the HTTP reads)."""

from __future__ import annotations

import json

import pytest
from twisted.internet import defer

from buildbot.process.properties import Properties
from buildbot.schedulers.forcesched import CollectedValidationError

from conveyor import served as urls
from conveyor.release import ReleaseError
from master import basis
from master import schedulers
from tests.unit.test_authz import load
from tests.unit.test_schedulers import outcome as result


def history(*entries) -> str:
    return "".join(
        json.dumps({"n": n, "snapshot": s, "action": a, "version": v}) + "\n"
        for n, (s, a, v) in enumerate(entries, 1)
    )


PRODUCTION = history(
    ("app@1", "create", None),
    ("app@2", "promote", "1.0+ci1.g1"),
    ("app@3", "promote", "1.0+ci2.g2"),
)
STAGING_INDEX = (
    "Package: app\nVersion: 1.0+ci2.g2\n\nPackage: app\nVersion: 1.0+ci3.g3\n\n"
    "Package: other\nVersion: 9.0\n"
)


@pytest.fixture
def served(tmp_path, monkeypatch):
    """The settings, and what the repository serves (url -> text; absent: "")."""
    settings = load(tmp_path)
    files = {
        urls.history_url(settings, "app"): PRODUCTION,
        urls.index_url(settings, "app-staging"): STAGING_INDEX,
    }
    monkeypatch.setattr(basis, "fetch", lambda url: defer.succeed(files.get(url, "")))
    return settings, files


def props(**values) -> Properties:
    p = Properties()
    for name, value in values.items():
        p.setProperty(name, value, "Force Build Form")
    return p


def test_promote_newest_records_the_newest_version_served_now(served):
    settings, _ = served
    got = result(
        basis.promotion_basis(
            settings, props(package="app", version="", from_dist="app-staging", to_dist="")
        )
    )
    assert got == {"basis_snapshot": "app@3", "basis_state": 3, "version": "1.0+ci3.g3"}


def test_a_named_version_is_kept(served):
    settings, _ = served
    got = result(
        basis.promotion_basis(
            settings,
            props(package="app", version="1.0+ci2.g2", from_dist="app-staging", to_dist="app"),
        )
    )
    assert got == {"basis_snapshot": "app@3", "basis_state": 3}


def test_a_source_without_the_package_is_refused_at_once(served):
    settings, files = served
    files[urls.index_url(settings, "app-staging")] = "Package: other\nVersion: 1\n"
    got = result(
        basis.promotion_basis(
            settings, props(package="app", version="", from_dist="app-staging", to_dist="app")
        )
    )
    assert isinstance(got, ReleaseError) and "app-staging serves no app" in str(got)


def test_a_rollback_records_the_state_it_returns_to(served):
    settings, _ = served
    got = result(basis.rollback_basis(settings, props(distribution="app", state="")))
    assert got == {"basis_snapshot": "app@3", "basis_state": 3, "state": "2"}


def test_a_rollback_to_the_empty_state_must_name_it(served):
    settings, files = served
    files[urls.history_url(settings, "app")] = history(
        ("app@1", "create", None), ("app@2", "promote", "1.0")
    )
    got = result(basis.rollback_basis(settings, props(distribution="app", state="")))
    assert isinstance(got, ReleaseError) and "name that state" in str(got)
    got = result(basis.rollback_basis(settings, props(distribution="app", state="1")))
    assert got["state"] == "1"


def test_the_button_adds_the_basis_or_refuses_with_a_400(served, monkeypatch):
    settings, files = served
    button = next(s for s in schedulers.schedulers_for(settings) if s.name == "rollback")
    added = []
    monkeypatch.setattr(
        schedulers.StrictForceScheduler,
        "addBuildsetForSourceStampsWithDefaults",
        lambda self, reason, properties=None, **kw: (
            added.append(properties.asDict()) or defer.succeed((1, {4: 1}))
        ),
    )
    request = props(distribution="app", state="")
    assert result(button.addBuildsetForSourceStampsWithDefaults("r", properties=request)) == (
        1,
        {4: 1},
    )
    assert added[0]["state"] == ("2", basis.SOURCE)
    assert added[0]["basis_snapshot"] == ("app@3", basis.SOURCE)

    files.pop(urls.history_url(settings, "app"))  # a distribution that was never set up
    refusal = result(
        button.addBuildsetForSourceStampsWithDefaults(
            "r", properties=props(distribution="app", state="")
        )
    )
    assert isinstance(refusal, CollectedValidationError)
    assert refusal.errors == {"basis": "refused: app has no history: it is not set up"}


def test_a_promotion_into_a_frozen_distribution_is_refused_when_asked(served):
    settings, files = served
    files[urls.freeze_url(settings, "app")] = json.dumps(
        {"frozen": True, "reason": "release weekend", "who": "ada", "when": "today"}
    )
    got = result(
        basis.promotion_basis(
            settings, props(package="app", version="", from_dist="app-staging", to_dist="app")
        )
    )
    assert isinstance(got, ReleaseError)
    assert str(got).startswith("app is frozen (by ada at today: release weekend)")
    # unfrozen: asked as before
    files[urls.freeze_url(settings, "app")] = json.dumps({"frozen": False})
    assert result(
        basis.promotion_basis(
            settings, props(package="app", version="", from_dist="app-staging", to_dist="app")
        )
    )["version"]
