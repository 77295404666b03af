"""Unit tests of the promotion and rollback steps: the rules applied to what is published."""

import json
from unittest import mock

from twisted.internet import defer

from buildbot.process.results import FAILURE
from buildbot.process.results import SUCCESS
from buildbot.test.steps import ExpectDownloadFile
from buildbot.test.steps import ExpectUploadFile

from steps import indexes
from steps import promotion
from tests.unit import stepcase
from tests.unit.stepcase import ExpectShell

PATHS = {"snowbird": ["snowbird-development", "snowbird-staging", "snowbird"]}
URL = "http://repo/dists/{}/main/binary-amd64/Packages"


def index(*versions):
    return "\n".join(
        f"Package: snowbird\nVersion: {v}\nConveyor-Commit: c{v[-1]}\n" for v in versions
    )


StepTestCase = stepcase.StepTestCase


def resolver(published):
    class Resolve(promotion.ResolvePromotion):
        def fetch(self, url):
            return defer.succeed((200, published[url]) if url in published else (404, ""))

    return Resolve(
        paths=PATHS, repo_url="http://repo/", component="main", architectures=["amd64", "all"]
    )


class ResolvePromotionTest(StepTestCase):
    published = {
        URL.format("snowbird-staging"): index("1.0+ci1.g1", "1.0+ci2.g2"),
        URL.format("snowbird"): index("1.0+ci1.g1"),
    }

    def test_newest_of_the_source_goes_to_the_next_step(self):
        self.setup(
            resolver(self.published),
            package="snowbird",
            version="",
            from_dist="snowbird-staging",
            to_dist="",
        )
        self.expect_outcome(
            result=SUCCESS,
            state_string="snowbird 1.0+ci2.g2: snowbird-staging → snowbird (there: 1.0+ci1.g1)",
        )
        self.expect_property("to_dist", "snowbird")
        self.expect_property("package_version", "1.0+ci2.g2")
        self.expect_property("previous_version", "1.0+ci1.g1")
        self.expect_property("package_commit", "c2")
        self.expect_property("previous_commit", "c1")
        self.expect_property("promotion_noop", False)
        return self.run_step()

    def test_a_rebuild_promotes_what_the_original_build_promoted(self):
        # the original promoted 1.0+ci1.g1 into staging... here: into production, although
        # staging has a newer version today and the rebuild's own fields are empty
        published = {**self.published, URL.format("snowbird"): ""}
        step = self.setup(
            resolver(published),
            package="snowbird",
            version="",
            from_dist="snowbird-staging",
            to_dist="",
        )
        self.build.requests = [mock.Mock(bsid=31)]
        answers = {
            ("buildsets", 31): {"bsid": 31, "rebuilt_buildid": 7},
            ("builds", 7, "properties"): {
                "package_version": ("1.0+ci1.g1", "ResolvePromotion"),
                "to_dist": ("snowbird", "ResolvePromotion"),
            },
        }
        real_get = step.master.data.get
        step.master.data.get = lambda path, **kw: (
            defer.succeed(answers[path]) if path in answers else real_get(path, **kw)
        )
        self.expect_outcome(
            result=SUCCESS,
            state_string="snowbird 1.0+ci1.g1: snowbird-staging → snowbird (there: none)",
        )
        self.expect_property("package_version", "1.0+ci1.g1")
        return self.run_step()

    def test_skipping_a_step_is_refused_naming_the_rule(self):
        self.setup(
            resolver(self.published),
            package="snowbird",
            version="",
            from_dist="snowbird-development",
            to_dist="snowbird",
        )
        self.expect_outcome(result=FAILURE)
        self.expect_log_file_stderr(
            "stdio",
            "refused: rule 'one step at a time': from snowbird-development a version "
            "goes to snowbird-staging, not snowbird (path: snowbird-development → "
            "snowbird-staging → snowbird)\n",
        )
        self.expect_no_property("package_version")
        return self.run_step()

    def test_unknown_package_and_bad_version_are_refused(self):
        self.setup(
            resolver(self.published),
            package="snowbird",
            version="1.0 (>= 0)",
            from_dist="snowbird-staging",
            to_dist="snowbird",
        )
        self.expect_outcome(result=FAILURE)
        self.expect_log_file_stderr(
            "stdio", "refused: '1.0 (>= 0)' is not a Debian version (deb-version(7))\n"
        )
        return self.run_step()

    def test_a_frozen_target_refuses_even_a_promotion_asked_for_before_the_freeze(self):
        frozen = json.dumps(
            {
                "frozen": True,
                "reason": "release weekend",
                "who": "ada",
                "when": "2026-12-04T18:00:00+00:00",
            }
        )
        self.setup(
            resolver({**self.published, "http://repo/history/snowbird.freeze.json": frozen}),
            package="snowbird",
            version="",
            from_dist="snowbird-staging",
            to_dist="",
        )
        self.expect_outcome(result=FAILURE)
        self.expect_log_file_stderr(
            "stdio",
            "refused: snowbird is frozen (by ada at 2026-12-04T18:00:00+00:00: release "
            "weekend): no promotion into it until `bin/conveyor unfreeze snowbird`; a "
            "rollback stays possible\n",
        )
        self.expect_no_property("package_version")
        return self.run_step()

    def test_version_already_there_is_a_success_that_changes_nothing(self):
        self.setup(
            resolver(self.published),
            package="snowbird",
            version="1.0+ci1.g1",
            from_dist="snowbird-staging",
            to_dist="snowbird",
        )
        self.expect_outcome(
            result=SUCCESS,
            state_string="snowbird 1.0+ci1.g1 is already in snowbird: nothing changed",
        )
        self.expect_property("promotion_noop", True)
        return self.run_step()


HISTORY = "".join(
    json.dumps(e) + "\n"
    for e in [
        {"n": 1, "snapshot": "snowbird@1", "package": None, "version": None},
        {"n": 2, "snapshot": "snowbird@2", "package": "snowbird", "version": "1.0+ci1.g1"},
        {"n": 3, "snapshot": "snowbird@3", "package": "snowbird", "version": "1.0+ci2.g2"},
    ]
)


def rollback_check():
    return promotion.ResolveRollback(
        history_dir="/srv/history",
        distribution="snowbird",
        aptly_config="/srv/aptly.conf",
        gnupg_home="/srv/gpg",
        keep_states=20,
    )


def snapshot_kept(name: str):
    return ExpectShell(
        workdir="wkdir",
        env={"GNUPGHOME": "/srv/gpg"},
        log_environ=False,
        command=["sh", "-c", promotion.ResolveRollback.KEPT, "kept", "/srv/aptly.conf", name],
    )


class ResolveRollbackTest(StepTestCase):
    def expect_history(self, *more):
        self.expect_commands(
            ExpectUploadFile(
                workersrc="/srv/history/snowbird.jsonl",
                workdir="wkdir",
                blocksize=32768,
                maxsize=None,
                writer=mock.ANY,
            )
            .upload_string(HISTORY)
            .exit(0),
            *more,
        )

    def test_back_to_the_previous_state(self):
        self.setup(rollback_check(), current_snapshot="snowbird@3")
        self.expect_history(snapshot_kept("snowbird@2").exit(0))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("snapshot", "snowbird@2")
        self.expect_property("package_version", "1.0+ci1.g1")
        self.expect_property("verify_absent", "1.0+ci2.g2")
        return self.run_step()

    def test_unknown_state_is_refused(self):
        self.setup(rollback_check(), current_snapshot="snowbird@3", state="7")
        self.expect_history()
        self.expect_outcome(result=FAILURE)
        self.expect_log_file_stderr(
            "stdio", "refused: there is no state 7: the history has 3 entries\n"
        )
        self.expect_no_property("snapshot")
        return self.run_step()

    def test_a_state_retention_dropped_is_refused_saying_so(self):
        self.setup(rollback_check(), current_snapshot="snowbird@3", state="1")
        self.expect_history(snapshot_kept("snowbird@1").exit(1))
        self.expect_outcome(result=FAILURE)
        self.expect_log_file_stderr(
            "stdio",
            "refused: state 1 (snowbird@1) is no longer kept: retention keeps the "
            "states of each distribution's last 20 history entries; pick one of those "
            "(bin/conveyor history snowbird)\n",
        )
        self.expect_no_property("snapshot")
        return self.run_step()


class VerifyAfterRollbackTest(StepTestCase):
    def make(self, text):
        class Verify(indexes.VerifyPublished):
            def fetch(self, url):
                return defer.succeed((200, text))

        return Verify(
            repo_url="http://repo/",
            component="main",
            architectures=["amd64"],
            distribution="snowbird",
        )

    def test_the_version_that_left_must_not_be_listed(self):
        self.setup(
            self.make(index("1.0+ci1.g1", "1.0+ci2.g2")),
            verify_packages=["snowbird"],
            package_version="1.0+ci1.g1",
            verify_absent="1.0+ci2.g2",
        )
        self.expect_outcome(result=FAILURE, state_string="snowbird 1.0+ci2.g2 still listed")
        return self.run_step()

    def test_rolled_back_index_passes(self):
        self.setup(
            self.make(index("1.0+ci1.g1")),
            verify_packages=["snowbird"],
            package_version="1.0+ci1.g1",
            verify_absent="1.0+ci2.g2",
        )
        self.expect_outcome(result=SUCCESS)
        return self.run_step()


def test_kept_means_that_exact_snapshot_is_listed(tmp_path):
    import os
    import subprocess

    aptly = tmp_path / "aptly"
    aptly.write_text(
        '#!/bin/sh\n[ "$1 $2 $3" = "-config=/a.conf snapshot list" ] || exit 9\n'
        'printf "snowbird@20261126T100000Z@publish-10\\nsnowbird.x@2\\n"\n'
    )
    aptly.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}

    def kept(name: str) -> bool:
        return (
            subprocess.run(
                ["sh", "-c", promotion.ResolveRollback.KEPT, "kept", "/a.conf", name],
                env=env,
                check=False,
            ).returncode
            == 0
        )

    assert kept("snowbird@20261126T100000Z@publish-10")
    assert not kept("snowbird@20261126T100000Z@publish-1")  # a prefix of one is not it
    assert not kept("snowbird@2")  # nor a pattern ("." is no wildcard)
    assert not kept("-x")


class CheckBasisTest(StepTestCase):
    def check(self, **props):
        self.setup(promotion.CheckBasis(distribution="snowbird"), **props)

    def test_the_distribution_as_the_request_saw_it_passes(self):
        self.check(basis_snapshot="snowbird@3", basis_state=3, current_snapshot="snowbird@3")
        self.expect_outcome(
            result=SUCCESS, state_string="snowbird is at state 3, as the request saw"
        )
        return self.run_step()

    def test_a_distribution_that_moved_since_the_request_is_refused(self):
        # the second of two identical rollbacks, or a rebuild of an old change
        self.check(basis_snapshot="snowbird@3", basis_state=3, current_snapshot="snowbird@4")
        self.expect_outcome(result=FAILURE)
        self.expect_log_file_stderr(
            "refused",
            "refused: snowbird has changed since this was asked for (it was at state "
            "3, snowbird@3; it now serves snowbird@4): nothing was changed; look at "
            "its history and ask again\n",
        )
        return self.run_step()

    def test_a_request_without_a_basis_passes(self):
        self.check(current_snapshot="snowbird@4")
        self.expect_outcome(result=SUCCESS, state_string="no basis recorded (an older request)")
        return self.run_step()


class SetFreezeTest(StepTestCase):
    def freeze(self, **props):
        self.setup(
            promotion.SetFreeze(history_dir="/srv/www/history", distribution="snowbird"),
            owner="ada",
            **props,
        )
        self.build.getUrl = mock.Mock(return_value=defer.succeed("http://ci/#/builders/9/builds/1"))

    def test_a_freeze_is_written_beside_the_history_with_who_and_why(self):
        written = []
        self.freeze(action="freeze", reason="release weekend")
        self.expect_commands(
            ExpectDownloadFile(
                workerdest="/srv/www/history/snowbird.freeze.json",
                workdir="wkdir",
                blocksize=32768,
                maxsize=None,
                reader=mock.ANY,
                mode=0o644,
            )
            .download_string(written.append, size=100000)
            .exit(0)
        )
        self.expect_outcome(result=SUCCESS, state_string="snowbird frozen: release weekend")
        d = self.run_step()

        def check(_):
            state = json.loads(written[0])
            assert {k: state[k] for k in ("frozen", "reason", "who", "build")} == {
                "frozen": True,
                "reason": "release weekend",
                "who": "ada",
                "build": "http://ci/#/builders/9/builds/1",
            }

        return d.addCallback(check)

    def test_a_freeze_needs_a_reason(self):
        self.freeze(action="freeze", reason="")
        self.expect_outcome(
            result=FAILURE,
            state_string="refused: a freeze needs a reason (the team reads it)",
        )
        return self.run_step()
