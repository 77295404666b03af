"""Unit tests of the Debian packaging steps (no processes: ExpectShell and friends)."""

from unittest import mock

from buildbot.process.results import FAILURE
from buildbot.process.results import SUCCESS
from buildbot.test.steps import ExpectDownloadFile
from buildbot.test.steps import ExpectShell
from buildbot.test.steps import ExpectUploadFile
from twisted.internet import defer

from tests.unit import stepcase
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
        written = []
        # the commit's time: the checkout's (steps/checkout.py)
        self.setup(debian.StampVersion(), got_revision=SHA, commit_time=1764150000)
        self.expect_commands(
            ExpectUploadFile(workersrc="debian/changelog", workdir="wkdir", blocksize=32768,
                             maxsize=None, writer=mock.ANY).upload_string(CHANGELOG).exit(0),
            ExpectDownloadFile(workerdest="debian/changelog", workdir="wkdir", blocksize=32768,
                               maxsize=None, reader=mock.ANY, mode=None)
            .download_string(written.append, size=100000).exit(0),
        )
        self.expect_outcome(result=SUCCESS)
        self.expect_property("package_version", VERSION)
        self.expect_property("source_package", "snowbird")
        self.expect_property("commit_time", 1764150000)
        self.expect_result_summary({"step": f"version {VERSION}"})
        d = self.run_step()

        def check(_):
            text = b"".join(written).decode()
            head = text.splitlines()[0]
            self.assertEqual(
                head,
                f"snowbird ({VERSION}) UNRELEASED; urgency=medium, "
                f"XB-Conveyor-Commit={SHA}, XB-Conveyor-Build={BUILD_URL}")
            self.assertIn(" -- Conveyor <conveyor@localhost>  Wed, 26 Nov 2025 09:40:00 +0000",
                          text)
            # the project's own history is kept below the CI entry
            self.assertTrue(text.endswith(CHANGELOG))
        return d.addCallback(check)

    def test_without_the_checkouts_commit_time_it_fails_with_reason(self):
        self.setup(debian.StampVersion(), got_revision=SHA)
        self.expect_commands(
            ExpectUploadFile(workersrc="debian/changelog", workdir="wkdir", blocksize=32768,
                             maxsize=None, writer=mock.ANY).upload_string(CHANGELOG).exit(0),
        )
        self.expect_outcome(result=FAILURE)
        self.expect_log_file_stderr(
            "stdio", f"no commit time for {SHA}: the checkout (steps/checkout.py) sets it\n")
        self.expect_no_property("package_version")
        return self.run_step()

    def test_missing_changelog_fails_with_reason(self):
        self.setup(debian.StampVersion(), got_revision=SHA)
        self.expect_commands(
            ExpectUploadFile(workersrc="debian/changelog", workdir="wkdir", blocksize=32768,
                             maxsize=None, writer=mock.ANY).exit(1),
        )
        self.expect_outcome(result=FAILURE)
        self.expect_log_file_stderr(
            "stdio", "debian/changelog not found: the project needs a debian/ directory to be "
            "packaged\n")
        return self.run_step()

    def test_garbage_changelog_fails_with_reason(self):
        self.setup(debian.StampVersion(), got_revision=SHA)
        self.expect_commands(
            ExpectUploadFile(workersrc="debian/changelog", workdir="wkdir", blocksize=32768,
                             maxsize=None, writer=mock.ANY).upload_string("hello\n").exit(0),
        )
        self.expect_outcome(result=FAILURE)
        self.expect_log_file_stderr(
            "stdio", "debian/changelog does not start with an entry header: 'hello'\n")
        return self.run_step()


class BuildDebianPackageTest(StepTestCase):
    CLEAN = ["find", "..", "-maxdepth", "1", "-type", "f", "(", "-name", "*.deb", "-o", "-name",
             "*.changes", "-o", "-name", "*.buildinfo", ")", "-delete"]

    def expect_build(self, found: str):
        self.expect_commands(
            ExpectShell(workdir="wkdir", command=self.CLEAN).exit(0),
            ExpectShell(workdir="wkdir", command=["dpkg-buildpackage", "-b", "-us", "-uc"],
                        env={"SOURCE_DATE_EPOCH": "1764150000",
                             "DEB_BUILD_OPTIONS": "nocheck"}).exit(0),
            ExpectShell(workdir="wkdir",
                        command=["find", "..", "-maxdepth", "1", "-type", "f", "-name",
                                 "*_1.4.0+ci57.g3f2a9c1_*.deb", "-printf", "%f\\n"])
            .log("debs", stdout=found).exit(0),
        )

    def test_builds_and_lists_packages(self):
        self.setup(debian.BuildDebianPackage(packages=["snowbird"]),
                   package_version="1.4.0+ci57.g3f2a9c1", commit_time=1764150000)
        self.expect_build("snowbird_1.4.0+ci57.g3f2a9c1_amd64.deb\n")
        self.expect_outcome(result=SUCCESS)
        self.expect_property("debs", ["snowbird_1.4.0+ci57.g3f2a9c1_amd64.deb"])
        self.expect_result_summary({"step": "built snowbird_1.4.0+ci57.g3f2a9c1_amd64.deb"})
        return self.run_step()

    def test_a_package_the_settings_name_but_debian_does_not_build_fails(self):
        self.setup(debian.BuildDebianPackage(packages=["snowbird", "snowbird-worker"]),
                   package_version="1.4.0+ci57.g3f2a9c1", commit_time=1764150000)
        self.expect_build("snowbird_1.4.0+ci57.g3f2a9c1_amd64.deb\n")
        self.expect_outcome(result=FAILURE)
        self.expect_log_file_stderr(
            "packages", "debian/ built ['snowbird'] but the settings name snowbird-worker: fix "
            "`packages` in pipeline.toml or debian/control\n")
        self.expect_no_property("debs")
        return self.run_step()

    def test_failed_build_fails_the_step(self):
        self.setup(debian.BuildDebianPackage(packages=["snowbird"]),
                   package_version="1.4.0+ci57.g3f2a9c1", commit_time=1764150000)
        self.expect_commands(
            ExpectShell(workdir="wkdir", command=self.CLEAN).exit(0),
            ExpectShell(workdir="wkdir", command=["dpkg-buildpackage", "-b", "-us", "-uc"],
                        env={"SOURCE_DATE_EPOCH": "1764150000",
                             "DEB_BUILD_OPTIONS": "nocheck"}).exit(2),
        )
        self.expect_outcome(result=FAILURE)
        return self.run_step()


class UploadPackagesTest(StepTestCase):
    def test_adds_one_linked_upload_per_package(self):
        step = self.setup(debian.UploadPackages(artifacts_dir="/srv/www/artifacts",
                                                artifacts_url="http://repo/artifacts/"),
                          debs=["a_1_all.deb", "b_1_amd64.deb"], buildername="snowbird-ci")
        added = []
        self.build.addStepsAfterCurrentStep = added.extend
        self.expect_outcome(result=SUCCESS)
        self.expect_property("artifacts_path", "snowbird-ci/57")
        d = self.run_step()

        def check(_):
            self.assertEqual([s.masterdest for s in added],
                             ["/srv/www/artifacts/snowbird-ci/57/a_1_all.deb",
                              "/srv/www/artifacts/snowbird-ci/57/b_1_amd64.deb"])
            self.assertEqual([s.url for s in added],
                             ["http://repo/artifacts/snowbird-ci/57/a_1_all.deb",
                              "http://repo/artifacts/snowbird-ci/57/b_1_amd64.deb"])
            self.assertEqual(added[0].workersrc, "../a_1_all.deb")
            self.assertTrue(step)
        return d.addCallback(check)

    def test_nothing_to_upload_fails(self):
        self.setup(debian.UploadPackages(artifacts_dir="/a", artifacts_url="http://r/a/"),
                   buildername="snowbird-ci")
        self.build.addStepsAfterCurrentStep = lambda steps: None
        self.expect_outcome(result=FAILURE)
        return self.run_step()
