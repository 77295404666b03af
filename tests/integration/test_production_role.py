"""[auth] production: promotion into the last distribution of a path needs a narrower role than
the other steps. No package is needed: who may ask is decided before any build."""

from __future__ import annotations

import os

import pytest

from ops import api
from ops import cli
from tests.integration.helpers import running_installation
from tests.integration.helpers import users_file

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="starts the services as root like make run"),
]

USERS = {
    "releaser": ("releaser-password", "releasers"),
    "manager": ("manager-password", "releasers,release-managers"),
}


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    with running_installation(
        "roles", extra='[auth]\nproduction = ["release-managers"]\n', before_start=users_file(USERS)
    ) as settings:
        yield settings


def promote(settings, user: str, source: str, target: str) -> dict:
    master = api.Master(settings.web_url)
    master.login(user, USERS[user][0])
    return master.follow(
        master.force(
            "promote",
            "promote",
            package="snowbird",
            version="",
            from_dist=source,
            to_dist=target,
            reason="test",
        )
    )


def test_production_needs_the_production_role(installation):
    with pytest.raises(api.ApiError) as err:
        promote(installation, "releaser", "snowbird-staging", "snowbird")
    assert err.value.code == cli.FORBIDDEN
    assert "you need to have role 'release-managers'" in str(err.value)
    assert api.last_build_number(installation, "promote") == 0


def test_other_steps_and_the_production_role_pass_to_the_rules(installation):
    # allowed to ask (no 403); the rules refuse when asked (master/basis.py), as there is
    # nothing to promote yet: a clear 400, and no build
    for user, source, target in (
        ("releaser", "snowbird-development", "snowbird-staging"),
        ("manager", "snowbird-staging", ""),
    ):
        with pytest.raises(api.ApiError) as err:
            promote(installation, user, source, target)
        assert err.value.code == cli.REFUSED
        assert f"refused: {source} serves no snowbird: nothing to promote" in str(err.value)
    assert api.last_build_number(installation, "promote") == 0
