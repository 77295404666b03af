"""pipeline.toml -> Settings: the shipped file, a multi-project file, and wrong files."""

from pathlib import Path

import pytest

from conveyor import settings

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """
[conveyor]
[repository]
[workers.build]
[workers.repository]
[projects.app]
github = "acme/app"
clone_url = "git/app.git"
packages = ["app"]
path = ["app-dev", "app"]
"""


def write(tmp_path, text):
    file = tmp_path / "pipeline.toml"
    file.write_text(text)
    return file


def test_shipped_pipeline_has_the_documented_defaults():
    s = settings.load(ROOT / "pipeline.toml")
    assert s.web_url == "http://127.0.0.1:8010/"
    assert s.worker_port == 9989
    assert s.repository.url == "http://127.0.0.1:8011/"
    assert s.repository.public_key_url == "http://127.0.0.1:8011/conveyor.gpg"
    assert s.secrets_dir == ROOT / "var" / "secrets"
    (project,) = s.projects
    assert project.github == "sprintly/snowbird"
    assert project.branch == "main"
    assert project.path == ("snowbird-development", "snowbird-staging", "snowbird")
    assert project.upload_to == "snowbird-staging"
    assert project.clone_url == str(ROOT / "var" / "git" / "snowbird.git")
    assert project.ci_builder == "snowbird-ci"


def test_minimal_file_gets_defaults(tmp_path):
    s = settings.load(write(tmp_path, MINIMAL))
    (project,) = s.projects
    assert project.upload_to == "app-dev"  # the first step of the path
    assert project.workers == ("build",)  # every worker but the repository's
    assert project.coverage_threshold == 80.0
    assert project.clone_url == str(tmp_path / "git" / "app.git")
    assert s.state_dir == tmp_path / "var"


def test_lint_is_off_unless_declared_and_then_warns_by_default(tmp_path):
    (project,) = settings.load(write(tmp_path, MINIMAL)).projects
    assert project.lint == ()
    assert project.installer == "uv"  # pip: installer = "pip"
    text = MINIMAL + 'lint = ["ruff", "check", "--output-format=json", "."]\n'
    (project,) = settings.load(write(tmp_path, text)).projects
    assert project.lint == ("ruff", "check", "--output-format=json", ".")
    assert project.lint_below == "warnings"


def test_test_dependencies_from_pyproject(tmp_path):
    text = MINIMAL + 'requirements = []\nextras = ["test"]\ndependency_groups = ["dev"]\n'
    (project,) = settings.load(write(tmp_path, text)).projects
    assert (project.requirements, project.extras, project.dependency_groups) == (
        (),
        ("test",),
        ("dev",),
    )
    assert settings.load(write(tmp_path, MINIMAL)).projects[0].extras == ()


def test_several_projects_share_a_path(tmp_path):
    text = (
        MINIMAL.replace('path = ["app-dev", "app"]', 'path = ["sprintly-staging", "sprintly"]')
        + """
[projects.api]
github = "acme/api"
clone_url = "https://github.com/acme/api.git"
branch = "release"
packages = ["acme-api", "acme-api-worker"]
path = ["sprintly-development", "sprintly-staging", "sprintly"]
upload_to = "sprintly-staging"
"""
    )
    s = settings.load(write(tmp_path, text))
    assert [p.name for p in s.projects] == ["app", "api"]
    assert s.project("api").clone_url == "https://github.com/acme/api.git"
    assert s.project_for_github("ACME/API").name == "api"
    assert set(s.distributions) == {"sprintly-development", "sprintly-staging", "sprintly"}


@pytest.mark.parametrize(
    "change, key, reason",
    [
        (
            ('github = "acme/app"', 'github = "acme"'),
            "projects.app.github",
            "'acme' is not valid: write it as owner/name",
        ),
        (
            ('packages = ["app"]', 'packages = ["App_1"]'),
            "projects.app.packages",
            "'App_1' is not valid: a Debian package name",
        ),
        (
            ('packages = ["app"]', "packages = []"),
            "projects.app.packages",
            "must not be an empty list",
        ),
        (
            ('packages = ["app"]', 'packages = ["app"]\nextras = ["te st"]'),
            "projects.app.extras",
            "'te st' is not valid: an extra's name",
        ),
        (
            (
                'packages = ["app"]',
                'packages = ["app"]\ninstaller = "pip"\ndependency_groups = ["t"]',
            ),
            "projects.app.dependency_groups",
            "dependency groups (PEP 735) are installed by uv",
        ),
        (('packages = ["app"]\n', ""), "projects.app.packages", "is required"),
        (
            ('path = ["app-dev", "app"]', 'path = ["app-dev", "app"]\nupload_to = "prod"'),
            "projects.app.upload_to",
            "'prod' is not on this project's path ['app-dev', 'app']",
        ),
        (
            ('path = ["app-dev", "app"]', 'path = ["app", "app"]'),
            "projects.app.path",
            "names a distribution twice",
        ),
        (
            ("[conveyor]", "[conveyor]\nweb_port = 99999"),
            "conveyor.web_port",
            "must be between 1 and 65535, not 99999",
        ),
        (
            ("[conveyor]", '[conveyor]\nweb_port = "8010"'),
            "conveyor.web_port",
            "must be a whole number, not '8010'",
        ),
        (("[conveyor]", "[conveyor]\nwebport = 8010"), "conveyor.webport", "unknown key 'webport'"),
        (
            ("[repository]", '[repository]\nworker = "far"'),
            "repository.worker",
            "'far' is not one of the [workers]: build, repository",
        ),
        (
            ('packages = ["app"]', 'packages = ["app"]\ncoverage_threshold = 120'),
            "projects.app.coverage_threshold",
            "must be between 0 and 100, not 120",
        ),
        (
            ('packages = ["app"]', 'packages = ["app"]\ncoverage_below = "ignore"'),
            "projects.app.coverage_below",
            'must be "failure" or "warnings"',
        ),
        (
            ('packages = ["app"]', 'packages = ["app"]\ninstaller = "conda"'),
            "projects.app.installer",
            'must be "uv" or "pip", not \'conda\'',
        ),
        (
            ('packages = ["app"]', 'packages = ["app"]\nlint_below = "error"'),
            "projects.app.lint_below",
            'must be "failure" or "warnings", not \'error\'',
        ),
        (
            ('packages = ["app"]', 'packages = ["app"]\nlint = "ruff check ."'),
            "projects.app.lint",
            "must be a list of strings",
        ),
        (
            ('packages = ["app"]', 'packages = ["app"]\nmail = ["nobody"]'),
            "projects.app.mail",
            "'nobody' is not valid: an e-mail address",
        ),
        (
            ("[workers.build]", "[workers.Build]"),
            "workers.Build",
            "worker names are lower-case letters",
        ),
        (
            ('packages = ["app"]', 'packages = ["app"]\nworkers = ["build", "repository"]'),
            "projects.app.workers",
            "'repository' is the repository's worker ([repository] worker): "
            "it holds the signing key",
        ),
        (
            ("[workers.build]\n", ""),
            "projects.app.workers",
            "needs a build worker: the only worker, 'repository', is the repository's",
        ),
    ],
)
def test_wrong_file_names_file_key_and_reason(tmp_path, change, key, reason):
    old, new = change
    assert old in MINIMAL
    file = write(tmp_path, MINIMAL.replace(old, new, 1))
    with pytest.raises(settings.SettingsError) as err:
        settings.load(file)
    message = str(err.value)
    assert message.startswith(f"{file}: [{key}] ")
    assert reason in message


def test_not_toml_is_reported_with_the_file(tmp_path):
    file = write(tmp_path, "[conveyor\n")
    with pytest.raises(settings.SettingsError, match=f"^{file}: not valid TOML"):
        settings.load(file)


def test_missing_file(tmp_path):
    with pytest.raises(settings.SettingsError, match="no such settings file"):
        settings.load(tmp_path / "nope.toml")


def test_paths_that_disagree_are_refused(tmp_path):
    text = (
        MINIMAL
        + """
[projects.other]
github = "acme/other"
clone_url = "x.git"
packages = ["other"]
path = ["app-dev", "other-prod"]
"""
    )
    with pytest.raises(
        settings.SettingsError,
        match=r"\[projects.other.path\] path disagrees with project 'app' "
        r"on what follows 'app-dev'",
    ):
        settings.load(write(tmp_path, text))


def test_auth_roles_default_and_can_be_set(tmp_path):
    auth = settings.load(write(tmp_path, MINIMAL)).auth
    assert (auth.developers, auth.releasers, auth.production, auth.admins) == (
        ("developers",),
        ("releasers",),
        ("releasers",),
        ("admins",),
    )
    text = MINIMAL + (
        '[auth]\ndevelopers = ["devs", "interns"]\nreleasers = ["rel"]\nadmins = ["ops"]\n'
    )
    auth = settings.load(write(tmp_path, text)).auth
    assert (auth.developers, auth.releasers, auth.production, auth.admins) == (
        ("devs", "interns"),
        ("rel",),
        ("rel",),
        ("ops",),
    )


@pytest.mark.parametrize("key", ["developers", "releasers", "production", "admins"])
def test_a_bad_role_name_is_refused_with_its_key(tmp_path, key):
    file = write(tmp_path, MINIMAL + f'[auth]\n{key} = ["Ops Team"]\n')
    with pytest.raises(
        settings.SettingsError,
        match=rf"^{file}: \[auth.{key}\] 'Ops Team' is not valid: a role name",
    ):
        settings.load(file)
    with pytest.raises(settings.SettingsError, match=rf"\[auth.{key}\] must not be an empty"):
        settings.load(write(tmp_path, MINIMAL + f"[auth]\n{key} = []\n"))
