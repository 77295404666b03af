"""Unit tests of the install check step (no processes: ExpectShell), its settings and its place
in the CI factory."""

from pathlib import Path

import pytest

from buildbot.process.results import FAILURE
from buildbot.process.results import SUCCESS

from conveyor import settings
from master import factories
from master import pullrequests
from steps import install
from tests.unit import stepcase
from tests.unit.stepcase import ExpectShell

ROOT = Path(__file__).resolve().parents[2]
DEB = "snowbird_1.4.0+ci57.g3f2a9c1_amd64.deb"
REPO = "http://127.0.0.1:8011/"
TOOL = [
    "conveyor-install-check",
    "--repo",
    REPO,
    "--component",
    "main",
    "--key-url",
    REPO + "conveyor.gpg",
    "--deps",
    "snowbird-staging",
]
PASSED = "conveyor-install-check: passed (install, purge, upgrade, smoke) in 11.4 s\n"
POSTINST = """0m9.1s ERROR: Command failed (status=100): ['chroot', '/x', 'apt-get', 'install']
  Setting up snowbird (1.4.0+ci57.g3f2a9c1) ...
  dpkg: error processing package snowbird (--configure):
   installed snowbird package post-installation script subprocess returned error exit status 1
conveyor-install-check: FAILED (install, purge) after 9.8 s: the postinst of snowbird failed \
(exit status 1)
"""


def step(**kwargs):
    return install.InstallCheck(
        repo_url=REPO, key_url=REPO + "conveyor.gpg", deps="snowbird-staging", **kwargs
    )


class InstallCheckTest(stepcase.StepTestCase):
    def test_passes_with_upgrade_and_smoke(self):
        self.setup(
            step(upgrade_from="snowbird", smoke=["/opt/venvs/snowbird/bin/snowbird", "--version"]),
            debs=[DEB],
        )
        self.expect_commands(
            ExpectShell(
                workdir="wkdir",
                command=[
                    *TOOL,
                    "--upgrade-from",
                    "snowbird",
                    "--smoke=/opt/venvs/snowbird/bin/snowbird",
                    "--smoke=--version",
                    "--",
                    f"../{DEB}",
                ],
            )
            .stdout("0m1.0s INFO: piuparts version 1.1.7\n" + PASSED)
            .exit(0)
        )
        self.expect_outcome(result=SUCCESS)
        self.expect_property("install_check_seconds", 11.4)
        self.expect_result_summary(
            {"step": "install check: install, purge, upgrade, smoke passed  11 s"}
        )
        return self.run_step()

    def test_without_next_distribution_or_smoke_install_and_purge_only(self):
        self.setup(step(), debs=[DEB])
        self.expect_commands(
            ExpectShell(workdir="wkdir", command=[*TOOL, "--", f"../{DEB}"])
            .stdout("conveyor-install-check: passed (install, purge) in 8.0 s\n")
            .exit(0)
        )
        self.expect_outcome(result=SUCCESS)
        self.expect_result_summary({"step": "install check: install, purge passed  8 s"})
        return self.run_step()

    def test_a_target_release_checks_its_own_packages_in_a_root_of_that_release(self):
        bookworm, trixie = (DEB.replace("_amd64", f"+{s}_amd64") for s in ("deb12", "deb13"))
        checking = step(target="trixie")
        self.setup(checking, debs=[bookworm, trixie])
        tool = [TOOL[0], "--release", "trixie", *TOOL[1:4], "trixie", *TOOL[5:]]
        self.expect_commands(
            ExpectShell(workdir="wkdir", command=[*tool, "--", f"../{trixie}"])
            .stdout("conveyor-install-check: passed (install, purge) in 8.0 s\n")
            .exit(0)
        )
        self.expect_outcome(result=SUCCESS)
        assert checking.name == "install-check-trixie"
        return self.run_step()

    def test_a_failing_postinst_fails_the_step_and_says_which_script(self):
        self.setup(step(upgrade_from="snowbird"), debs=[DEB])
        self.expect_commands(
            ExpectShell(
                workdir="wkdir", command=[*TOOL, "--upgrade-from", "snowbird", "--", f"../{DEB}"]
            )
            .stdout(POSTINST)
            .exit(1)
        )
        self.expect_outcome(result=FAILURE)
        self.expect_property("install_check_seconds", 9.8)
        self.expect_result_summary(
            {"step": "install check failed: the postinst of snowbird failed (exit status 1)"}
        )
        return self.run_step()

    def test_a_tool_that_says_nothing_still_fails(self):
        self.setup(step(), debs=[DEB])
        self.expect_commands(
            ExpectShell(workdir="wkdir", command=[*TOOL, "--", f"../{DEB}"])
            .stderr("conveyor-install-check: unshare is missing\n")
            .exit(3)
        )
        self.expect_outcome(result=FAILURE)
        self.expect_result_summary({"step": "install check failed: see its log"})
        return self.run_step()

    def test_no_packages_fails_without_running_anything(self):
        self.setup(step(), debs=[])
        self.expect_outcome(result=FAILURE)
        self.expect_log_file_stderr("stdio", "no packages to check: the property `debs` is empty\n")
        return self.run_step()


MINIMAL = """
[conveyor]
[repository]
[workers.build]
[workers.repository]
[projects.app]
github = "acme/app"
clone_url = "git/app.git"
packages = ["app"]
path = ["app-staging", "app"]
upload_to = "app-staging"
"""


def load(tmp_path, extra=""):
    file = tmp_path / "pipeline.toml"
    file.write_text(MINIMAL + extra)
    return settings.load(file)


def test_install_check_is_on_by_default_without_smoke(tmp_path):
    (project,) = load(tmp_path).projects
    assert project.install_check is True
    assert project.smoke == ()


def test_smoke_and_install_check_are_read(tmp_path):
    (project,) = load(
        tmp_path, 'smoke = ["/opt/venvs/app/bin/app", "--version"]\ninstall_check = false\n'
    ).projects
    assert project.smoke == ("/opt/venvs/app/bin/app", "--version")
    assert project.install_check is False


@pytest.mark.parametrize(
    "line, reason",
    [
        ('smoke = "/opt/venvs/app/bin/app --version"', "must be a list of strings"),
        ("smoke = []", "must not be an empty list"),
        ('smoke = ["app", 3]', "must be a list of strings"),
        ('install_check = "no"', "must be true or false"),
    ],
)
def test_bad_values_fail_fast_with_file_and_key(tmp_path, line, reason):
    with pytest.raises(settings.SettingsError) as error:
        load(tmp_path, line + "\n")
    message = str(error.value)
    assert str(tmp_path / "pipeline.toml") in message
    assert f"[projects.app.{line.split()[0]}]" in message
    assert reason in message


def test_the_package_build_checks_the_install_after_the_upload_before_ci_publishes(tmp_path):
    s = load(tmp_path, 'smoke = ["/opt/venvs/app/bin/app", "--version"]\n')
    steps = factories.package_factory(s, s.projects[0]).steps
    order = [st.step_class.__name__ for st in steps]
    check = order.index("InstallCheck")
    assert order[check - 1] == "UploadPackages"
    assert check == len(order) - 1  # the last step: CI waits for it (AwaitPackage)
    ci = [st.step_class.__name__ for st in factories.ci_factory(s, s.projects[0]).steps]
    assert ci[-2:] == ["AwaitPackage", "Trigger"]
    kwargs = steps[check].kwargs
    assert kwargs["deps"] == "app-staging"
    assert kwargs["upgrade_from"] == "app"  # the next distribution of the path
    assert kwargs["smoke"] == ("/opt/venvs/app/bin/app", "--version")


def test_each_target_release_is_built_then_checked_in_a_package_build_of_its_own(tmp_path):
    s = load(tmp_path, 'targets = ["bookworm", "trixie"]\n')
    project = s.projects[0]
    assert project.package_builders == (
        ("bookworm", f"{project.name}-package-bookworm"),
        ("trixie", f"{project.name}-package-trixie"),
    )
    for release in ("bookworm", "trixie"):
        steps = factories.package_factory(s, project, release).steps
        order = [(st.step_class.__name__, st.kwargs.get("target")) for st in steps]
        assert order[-3:] == [
            ("BuildDebianPackage", release),
            ("UploadPackages", None),
            ("InstallCheck", release),
        ]
    # the CI build starts both, side by side
    start = factories.ci_factory(s, project).steps[0]
    assert start.kwargs["schedulers"] == [builder for _, builder in project.package_builders]


def test_the_tests_run_on_each_target_releases_python_each_in_its_own_venv(tmp_path):
    s = load(tmp_path, 'targets = ["bookworm", "trixie"]\n')
    project = s.projects[0]
    ci = factories.ci_factory(s, project).steps
    # the first release's tests in the CI build, trixie's in a tests build beside it
    assert project.tests_builders == (("trixie", f"{project.name}-tests-trixie"),)
    beside = factories.tests_factory(s, project, "trixie").steps
    steps = ci + beside
    python = [st for st in steps if st.step_class.__module__ == "steps.python"]
    assert [st.kwargs["name"] for st in python] == [
        f"{step}-{release}"
        for release in ("bookworm", "trixie")
        for step in ("virtualenv", "install", "tests", "coverage")
    ]
    order = [st.step_class.__name__ for st in ci]
    assert order[:2] == ["StartPackage", "StartTests"]
    assert order.index("AwaitTests") < order.index("AwaitPackage")
    assert ci[1].kwargs["schedulers"] == [f"{project.name}-tests-trixie"]
    # a pull request's build has no builds beside it: every release, one after another
    pr = pullrequests.pr_factory(s, project).steps
    assert [st.kwargs["name"] for st in pr if st.step_class.__module__ == "steps.python"] == [
        st.kwargs["name"] for st in python
    ]
    for st in python:
        release = st.kwargs["name"].rsplit("-", 1)[1]
        sandbox = [arg for arg in st.kwargs["sandbox"] if isinstance(arg, str)]  # no Property
        # every command of a release's steps runs in that release's system (its Python)
        assert sandbox[sandbox.index("--release") + 1] == release
        assert ("--network" in sandbox) == (st.step_class.__name__ == "InstallRequirements")
        assert st.kwargs["venv"] == f"../venv-{release}"
    tests = {
        st.kwargs["target"]: st.kwargs["junit_xml"] for st in python if "junit_xml" in st.kwargs
    }
    assert tests == {
        "bookworm": "../reports-bookworm/junit.xml",
        "trixie": "../reports-trixie/junit.xml",
    }
    # a project without targets: the worker's own system, as before
    plain = load(tmp_path, "")
    steps = factories.ci_factory(plain, plain.projects[0]).steps
    names = [st.kwargs.get("name") for st in steps if st.step_class.__module__ == "steps.python"]
    assert names == [None] * 4
    assert not any(
        "--release" in [a for a in st.kwargs.get("sandbox", ()) if isinstance(a, str)]
        for st in steps
    )


def test_install_check_false_leaves_the_step_out(tmp_path):
    s = load(tmp_path, "install_check = false\n")
    for factory in (factories.ci_factory, factories.package_factory):
        order = [st.step_class.__name__ for st in factory(s, s.projects[0]).steps]
        assert "InstallCheck" not in order


def test_shipped_pipeline_declares_the_demo_smoke_command():
    (project,) = settings.load(ROOT / "pipeline.toml").projects
    assert project.install_check is True
    assert project.smoke == ("/opt/venvs/snowbird/bin/snowbird", "--version")
