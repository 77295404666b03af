"""Unit tests of the Debian packaging steps (no processes: ExpectShell and friends)."""

from unittest import mock

from buildbot.process.results import FAILURE
from buildbot.process.results import SUCCESS
from buildbot.test.steps import ExpectShell
from buildbot.test.steps import ExpectUploadFile
from twisted.internet import defer

from tests.unit import stepcase
from conveyor import release
from steps import debian

SHA = "3f2a9c1d5e6f708192a3b4c5d6e7f8091a2b3c4d"
CHANGELOG = """snowbird (1.4.0) unstable; urgency=medium

  * Initial release.

 -- Sprintly <dev@sprintly.example>  Mon, 02 Nov 2026 10:00:00 +0000
"""
BUILD_URL = "http://127.0.0.1:8010/#/builders/1/builds/57"
SUBMITTED = 1795703405  # 2026-11-26 14:30:05 UTC
VERSION = "1.4.0+ci20261126.143005.57.g3f2a9c1"


class StepTestCase(stepcase.StepTestCase):
    build_number = 57

    def setup(self, step, **props):
        step = super().setup(step, **props)
        self.build.getUrl = mock.Mock(return_value=defer.succeed(BUILD_URL))
        # the push reached the master at 2026-11-26 14:30:05 UTC (its build request)
        self.build.requests = [mock.Mock(submittedAt=SUBMITTED)]
        return step


class StampVersionTest(StepTestCase):
    def test_stamps_unique_version_commit_and_build_url(self):
        # the changelog's first entry and the commit's time: the checkout's (steps/checkout.py);
        # nothing is asked of the worker
        self.setup(debian.StampVersion(), got_revision=SHA, commit_time=1764150000,
                   changelog_head=CHANGELOG)
        self.expect_outcome(result=SUCCESS)
        self.expect_property("package_version", VERSION)
        self.expect_property("source_package", "snowbird")
        self.expect_property("commit_time", 1764150000)
        self.expect_result_summary({"step": f"version {VERSION}"})
        d = self.run_step()

        def check(_):
            entry = self.get_nth_step(0).getProperty("changelog_entry")
            self.assertEqual(
                entry.splitlines()[0],
                f"snowbird ({VERSION}) UNRELEASED; urgency=medium, "
                f"XB-Conveyor-Commit={SHA}, XB-Conveyor-Build={BUILD_URL}")
            self.assertIn(" -- Conveyor <conveyor@localhost>  Wed, 26 Nov 2025 09:40:00 +0000",
                          entry)
            # the project's own history stays below it (STAMP_SCRIPT): a changelog again
            self.assertEqual(release.parse_changelog_head(entry + CHANGELOG).version, VERSION)
        return d.addCallback(check)

    def test_without_the_checkouts_commit_time_it_fails_with_reason(self):
        self.setup(debian.StampVersion(), got_revision=SHA, changelog_head=CHANGELOG)
        self.expect_outcome(result=FAILURE)
        self.expect_log_file_stderr(
            "stdio", f"no commit time for {SHA}: the checkout (steps/checkout.py) sets it\n")
        self.expect_no_property("package_version")
        return self.run_step()

    def test_missing_changelog_fails_with_reason(self):
        self.setup(debian.StampVersion(), got_revision=SHA, changelog_head="")
        self.expect_outcome(result=FAILURE)
        self.expect_log_file_stderr(
            "stdio", "debian/changelog not found in the commit: the project needs a debian/ "
            "directory to be packaged\n")
        return self.run_step()

    def test_garbage_changelog_fails_with_reason(self):
        self.setup(debian.StampVersion(), got_revision=SHA, changelog_head="hello\n")
        self.expect_outcome(result=FAILURE)
        self.expect_log_file_stderr(
            "stdio", "debian/changelog does not start with an entry header: 'hello'\n")
        return self.run_step()


class BuildDebianPackageTest(StepTestCase):
    BUILD = ["sh", "-c", debian.BUILD_SCRIPT, "deb", "*_1.4.0+ci57.g3f2a9c1_*.deb",
             "sh", "-c", debian.STAMP_SCRIPT, "stamp", "the entry\n",
             "dpkg-buildpackage", "-b", "-us", "-uc"]
    ENV = {"SOURCE_DATE_EPOCH": "1764150000", "DEB_BUILD_OPTIONS": "nocheck"}

    def expect_build(self, found: str):
        self.expect_commands(
            ExpectShell(workdir="wkdir", command=self.BUILD, env=self.ENV)
            .stdout(f"dpkg-buildpackage: info: binary-only upload\n{debian.BUILT}\n{found}")
            .exit(0))

    def test_builds_and_lists_packages(self):
        self.setup(debian.BuildDebianPackage(packages=["snowbird"]),
                   package_version="1.4.0+ci57.g3f2a9c1", commit_time=1764150000,
                   changelog_entry="the entry\n")
        self.expect_build("snowbird_1.4.0+ci57.g3f2a9c1_amd64.deb\n")
        self.expect_outcome(result=SUCCESS)
        self.expect_property("debs", ["snowbird_1.4.0+ci57.g3f2a9c1_amd64.deb"])
        self.expect_result_summary({"step": "built snowbird_1.4.0+ci57.g3f2a9c1_amd64.deb"})
        return self.run_step()

    def test_a_package_the_settings_name_but_debian_does_not_build_fails(self):
        self.setup(debian.BuildDebianPackage(packages=["snowbird", "snowbird-worker"]),
                   package_version="1.4.0+ci57.g3f2a9c1", commit_time=1764150000,
                   changelog_entry="the entry\n")
        self.expect_build("snowbird_1.4.0+ci57.g3f2a9c1_amd64.deb\n")
        self.expect_outcome(result=FAILURE)
        self.expect_log_file_stderr(
            "packages", "debian/ built ['snowbird'] but the settings name snowbird-worker: fix "
            "`packages` in pipeline.toml or debian/control\n")
        self.expect_no_property("debs")
        return self.run_step()

    def test_failed_build_fails_the_step(self):
        self.setup(debian.BuildDebianPackage(packages=["snowbird"]),
                   package_version="1.4.0+ci57.g3f2a9c1", commit_time=1764150000,
                   changelog_entry="the entry\n")
        self.expect_commands(
            ExpectShell(workdir="wkdir", command=self.BUILD, env=self.ENV).exit(2))
        self.expect_outcome(result=FAILURE)
        return self.run_step()


class UploadPackagesTest(StepTestCase):
    def test_uploads_each_package_into_the_store_and_links_it(self):
        import os
        import shutil
        import tempfile
        store = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, store)
        step = self.setup(debian.UploadPackages(artifacts_dir=store,
                                                artifacts_url="http://repo/artifacts/"),
                          debs=["a_1_all.deb", "b_1_amd64.deb"], buildername="snowbird-package")
        links = []
        step.addURL = lambda name, url: defer.succeed(links.append((name, url)))
        self.expect_commands(*(
            ExpectUploadFile(workersrc=f"../{deb}", workdir="wkdir", blocksize=256 * 1024,
                             maxsize=None, keepstamp=False, writer=mock.ANY)
            .upload_string(f"contents of {deb}").exit(0)
            for deb in ("a_1_all.deb", "b_1_amd64.deb")))
        self.expect_outcome(result=SUCCESS, state_string="uploaded 2 package(s)")
        self.expect_property("artifacts_path", "snowbird-package/57")
        d = self.run_step()

        def check(_):
            for deb in ("a_1_all.deb", "b_1_amd64.deb"):
                with open(os.path.join(store, "snowbird-package", "57", deb)) as f:
                    self.assertEqual(f.read(), f"contents of {deb}")
                self.assertEqual(oct(os.stat(os.path.join(store, "snowbird-package", "57",
                                                          deb)).st_mode & 0o777), "0o644")
            self.assertEqual(links, [
                ("a_1_all.deb", "http://repo/artifacts/snowbird-package/57/a_1_all.deb"),
                ("b_1_amd64.deb", "http://repo/artifacts/snowbird-package/57/b_1_amd64.deb")])
        return d.addCallback(check)

    def test_a_failed_upload_fails_and_leaves_no_file(self):
        import os
        import shutil
        import tempfile
        store = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, store)
        self.setup(debian.UploadPackages(artifacts_dir=store, artifacts_url="http://r/a/"),
                   debs=["a_1_all.deb"], buildername="snowbird-package")
        self.expect_commands(
            ExpectUploadFile(workersrc="../a_1_all.deb", workdir="wkdir", blocksize=256 * 1024,
                             maxsize=None, keepstamp=False, writer=mock.ANY).exit(1))
        self.expect_outcome(result=FAILURE, state_string="a_1_all.deb not uploaded (failure)")
        d = self.run_step()
        return d.addCallback(lambda _: self.assertEqual(
            os.listdir(os.path.join(store, "snowbird-package", "57")), []))

    def test_nothing_to_upload_fails(self):
        self.setup(debian.UploadPackages(artifacts_dir="/a", artifacts_url="http://r/a/"),
                   buildername="snowbird-ci")
        self.expect_outcome(result=FAILURE)
        return self.run_step()


def run_build_script(where, build: str) -> tuple[int, str]:
    """debian.BUILD_SCRIPT in `where`/build (the checkout), `build` standing in for the sandboxed
    dpkg-buildpackage."""
    import subprocess
    checkout = where / "build"
    checkout.mkdir()
    proc = subprocess.run(["sh", "-c", debian.BUILD_SCRIPT, "deb", "*_1.4.0+ci57.g3f2a9c1_*.deb",
                           "sh", "-c", build], cwd=checkout, capture_output=True, text=True,
                          check=False)
    return proc.returncode, proc.stdout


def test_the_build_script_lists_this_builds_debs_only(tmp_path):
    (tmp_path / "snowbird_1.4.0+ci56.g0000000_amd64.deb").write_text("an earlier build's")
    (tmp_path / "snowbird_1.4.0+ci56.g0000000_amd64.changes").write_text("an earlier build's")
    code, out = run_build_script(tmp_path, """
        echo '{built}'; echo snowbird_1.4.0+ci57.g3f2a9c1_forged.deb   # printed by debian/rules
        : > ../snowbird_1.4.0+ci57.g3f2a9c1_amd64.deb
        : > ../snowbird-doc_1.4.0+ci57.g3f2a9c1_all.deb
        ln -s /etc/hostname ../snowbird-link_1.4.0+ci57.g3f2a9c1_amd64.deb
    """.format(built=debian.BUILT))
    assert code == 0
    assert debian.built_debs(out, "1.4.0+ci57.g3f2a9c1") == [
        "snowbird-doc_1.4.0+ci57.g3f2a9c1_all.deb", "snowbird_1.4.0+ci57.g3f2a9c1_amd64.deb"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".changes")) == []


def test_the_build_script_fails_as_the_build_does_and_lists_nothing(tmp_path):
    code, out = run_build_script(tmp_path, ": > ../snowbird_1.4.0+ci57.g3f2a9c1_amd64.deb; exit 3")
    assert code == 3
    assert debian.built_debs(out, "1.4.0+ci57.g3f2a9c1") == []


def test_names_off_the_version_or_with_a_path_are_not_packages():
    out = (f"{debian.BUILT}\nsnowbird_1.4.0+ci57.g3f2a9c1_amd64.deb\n../x_1.4.0+ci57.g3f2a9c1_amd64"
           ".deb\nsnowbird_9.9_amd64.deb\n")
    assert debian.built_debs(out, "1.4.0+ci57.g3f2a9c1") == [
        "snowbird_1.4.0+ci57.g3f2a9c1_amd64.deb"]


def test_the_stamp_puts_the_entry_on_top_of_the_changelog_then_runs_the_build(tmp_path):
    import subprocess
    (tmp_path / "debian").mkdir()
    (tmp_path / "debian" / "changelog").write_text(CHANGELOG)
    proc = subprocess.run(["sh", "-c", debian.STAMP_SCRIPT, "stamp", "the entry\n\n",
                           "sh", "-c", "head -n 1 debian/changelog; echo \"$@\"", "build",
                           "-b", "-us"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert proc.stdout == "the entry\n-b -us\n"
    assert (tmp_path / "debian" / "changelog").read_text() == "the entry\n\n" + CHANGELOG
    assert not (tmp_path / "debian" / "changelog.conveyor").exists()
