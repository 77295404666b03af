"""Log-in and roles (master/www.py): the users file, or GitHub OAuth with roles from teams."""

import pytest

from conveyor import settings as settings_module
from master import www
from tests.unit.test_settings import MINIMAL
from tests.unit.test_settings import write

GITHUB = """
[auth]
releasers = ["releasers"]
production = ["release-managers"]
github_client_id = "Iv1.0123456789abcdef"
[auth.github_roles]
releasers = ["sprintly/release-team", "sprintly/maintainers"]
release-managers = ["sprintly/release-managers"]
developers = ["sprintly"]
"""


def load(tmp_path, extra=""):
    return settings_module.load(write(tmp_path, MINIMAL + extra))


def test_users_file_gives_user_password_log_in_and_roles(tmp_path):
    s = load(tmp_path)
    s.secrets_dir.mkdir(parents=True)
    (s.secrets_dir / "web-users").write_text("ann:ann-password:releasers\nbo:bo-password:dev\n")
    config = www.www(s)
    assert type(config["auth"]).__name__ == "UserPasswordAuth"
    matchers = config["authz"].roleMatchers
    ann = sorted(r for m in matchers for r in m.getRolesFromUser({"username": "ann"}))
    assert ann == ["releasers"]


def test_no_users_no_log_in(tmp_path):
    assert "auth" not in www.www(load(tmp_path))


def test_github_oauth_with_roles_from_teams(tmp_path):
    s = load(tmp_path, GITHUB)
    auth = www.www(s)["auth"]
    assert type(auth).__name__ == "GitHubAuth"
    assert auth.clientId == "Iv1.0123456789abcdef"
    assert auth.getTeamsMembership and auth.apiVersion == 4  # teams need the GraphQL API
    roles = www.RolesFromGitHub(s.auth.github_roles)
    assert roles.getRolesFromUser({"groups": ["sprintly", "sprintly/release-team"]}) == [
        "developers",
        "releasers",
    ]
    assert roles.getRolesFromUser({"groups": ["Sprintly", "sprintly/release-managers"]}) == [
        "developers",
        "release-managers",
    ]
    assert roles.getRolesFromUser({"groups": ["elsewhere"]}) == []


def test_github_enterprise_log_in_follows_the_api_url(tmp_path):
    s = load(tmp_path, '[github]\napi_url = "https://github.example.com/api/v3"\n' + GITHUB)
    auth = www.www(s)["auth"]
    assert auth.authUri == "https://github.example.com/login/oauth/authorize"


def test_bad_github_roles_are_refused_with_the_key(tmp_path):
    with pytest.raises(
        settings_module.SettingsError,
        match=r"\[auth.github_roles.releasers\] 'sprintly/a/b' is not valid",
    ):
        load(tmp_path, GITHUB.replace('"sprintly/maintainers"', '"sprintly/a/b"'))


def test_the_authz_is_the_matrix_ending_in_default_deny(tmp_path):
    rules = www.www(load(tmp_path))["authz"].allowRules
    last = rules[-1]
    assert type(last).__name__ == "AnyControlEndpointMatcher"
    assert (last.role, last.defaultDeny) == (
        "none (no such action, or no such force scheduler)",
        True,
    )
    # nothing allows every logged-in user any more
    assert not any(r.role == "*" for r in rules)
