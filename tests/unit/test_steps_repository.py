"""Unit tests of the apt repository steps: the aptly argv they run and the HTTP verification."""

from unittest import mock

from buildbot.process.results import FAILURE
from buildbot.process.results import SUCCESS
from buildbot.test.reactor import TestReactorMixin
from buildbot.test.steps import ExpectShell
from buildbot.test.steps import TestBuildStepMixin
from twisted.internet import defer
from twisted.trial import unittest

from steps import repository

APTLY = {"aptly_config": "/var/lib/conveyor/aptly.conf", "gnupg_home": "/var/lib/conveyor/gpg"}
ENV = {"GNUPGHOME": "/var/lib/conveyor/gpg"}
CONF = "-config=/var/lib/conveyor/aptly.conf"
VERSION = "1.4.0+ci57.g3f2a9c1"

PACKAGES = f"""Package: snowbird
Version: 1.4.0+ci56.gaaaaaaa
Architecture: amd64

Package: snowbird
Version: {VERSION}
Architecture: amd64
Description: demo
 continued line: Version: 9
"""


class StepTestCase(TestBuildStepMixin, TestReactorMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        yield self.setup_test_build_step()

    def setup(self, step, **props):
        step = self.setup_step(step)
        for name, value in props.items():
            self.build.setProperty(name, value, "test")
        self.build.number = 12
        return step


class AptlyStepsTest(StepTestCase):
    def test_add_runs_repo_add_on_incoming(self):
        self.setup(repository.AddToRepository(distribution="snowbird-staging", **APTLY))
        self.expect_commands(
            ExpectShell(workdir="wkdir", env=ENV,
                        command=["aptly", CONF, "repo", "add", "snowbird-staging", "incoming"])
            .exit(0))
        self.expect_outcome(result=SUCCESS, state_string="added to snowbird-staging")
        return self.run_step()

    def test_add_failure_halts(self):
        step = self.setup(repository.AddToRepository(distribution="snowbird-staging", **APTLY))
        self.expect_commands(
            ExpectShell(workdir="wkdir", env=ENV,
                        command=["aptly", CONF, "repo", "add", "snowbird-staging", "incoming"])
            .exit(1))
        self.expect_outcome(result=FAILURE)
        self.assertTrue(step.haltOnFailure)
        return self.run_step()

    def test_snapshot_named_after_distribution_time_and_build(self):
        self.setup(repository.CreateSnapshot(distribution="snowbird-staging", **APTLY),
                   buildername="publish")
        with mock.patch.object(repository.repository, "snapshot_name",
                        return_value="snowbird-staging@20261126T070000Z@publish-12") as name:
            self.expect_commands(
                ExpectShell(workdir="wkdir", env=ENV,
                            command=["aptly", CONF, "snapshot", "create",
                                     "snowbird-staging@20261126T070000Z@publish-12", "from",
                                     "repo", "snowbird-staging"]).exit(0))
            self.expect_outcome(result=SUCCESS)
            self.expect_property("snapshot", "snowbird-staging@20261126T070000Z@publish-12")
            yield_ = self.run_step()
        self.assertEqual(name.call_args.args[0], "snowbird-staging")
        self.assertEqual(name.call_args.args[2:], ("publish", 12))
        return yield_

    def test_publish_switch_signs_with_the_configured_key(self):
        self.setup(repository.PublishSwitch(distribution="snowbird-staging",
                                            signing_key="ABCDEF0123", **APTLY),
                   snapshot="snap-1")
        self.expect_commands(
            ExpectShell(workdir="wkdir", env=ENV,
                        command=["aptly", CONF, "publish", "switch", "-batch",
                                 "-gpg-key=ABCDEF0123", "snowbird-staging", ".", "snap-1"])
            .exit(0))
        self.expect_outcome(result=SUCCESS, state_string="snowbird-staging → snap-1")
        return self.run_step()


class VerifyPublishedTest(StepTestCase):
    def make(self, answers):
        calls = []

        class Verify(repository.VerifyPublished):
            def fetch(self, url):
                calls.append(url)
                answer = answers[url]
                if isinstance(answer, Exception):
                    return defer.fail(answer)
                return defer.succeed(answer)

        step = Verify(repo_url="http://repo:8011", component="main",
                      architectures=["amd64", "all"], distribution="snowbird-staging")
        return step, calls

    URL = "http://repo:8011/dists/snowbird-staging/main/binary-amd64/Packages"

    def test_listed_version_passes(self):
        step, calls = self.make({self.URL: (200, PACKAGES)})
        self.setup(step, package_version=VERSION, debs=[f"snowbird_{VERSION}_amd64.deb"])
        self.expect_outcome(result=SUCCESS,
                            state_string=f"snowbird {VERSION} in snowbird-staging")
        d = self.run_step()
        # "all" packages are listed in every architecture's index: one GET is enough
        d.addCallback(lambda _: self.assertEqual(calls, [self.URL]))
        return d

    def test_missing_version_fails_and_says_what_is_there(self):
        step, _ = self.make({self.URL: (200, PACKAGES)})
        self.setup(step, package_version="1.4.0+ci99.gbbbbbbb",
                   debs=["snowbird_1.4.0+ci99.gbbbbbbb_amd64.deb"])
        self.expect_outcome(result=FAILURE,
                            state_string="snowbird 1.4.0+ci99.gbbbbbbb missing (failure)")
        self.expect_log_file_stderr(
            "stdio", "snowbird 1.4.0+ci99.gbbbbbbb is not listed in snowbird-staging's Packages "
            f"index (it lists 1.4.0+ci56.gaaaaaaa, {VERSION})\n")
        return self.run_step()

    def test_http_error_fails(self):
        step, _ = self.make({self.URL: (404, "not found")})
        self.setup(step, package_version=VERSION, debs=[f"snowbird_{VERSION}_amd64.deb"])
        self.expect_outcome(result=FAILURE, state_string="index answered 404 (failure)")
        return self.run_step()

    def test_unreachable_repository_fails(self):
        step, _ = self.make({self.URL: ConnectionRefusedError("refused")})
        self.setup(step, package_version=VERSION, debs=[f"snowbird_{VERSION}_amd64.deb"])
        self.expect_outcome(result=FAILURE, state_string="repository not reachable (failure)")
        return self.run_step()
