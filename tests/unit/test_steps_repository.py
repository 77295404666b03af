"""Unit tests of the apt repository steps: the aptly argv they run and the HTTP verification."""

import json
import os
import subprocess
from pathlib import Path
from unittest import mock

from twisted.internet import defer

from buildbot.process.results import FAILURE
from buildbot.process.results import SUCCESS
from buildbot.test.steps import ExpectDownloadFile
from buildbot.test.steps import ExpectRmdir
from buildbot.test.steps import ExpectUploadFile

from steps import indexes
from steps import repository
from tests.unit import stepcase
from tests.unit.stepcase import ExpectShell

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


StepTestCase = stepcase.StepTestCase


def aptly(*args):
    return ExpectShell(workdir="wkdir", env=ENV, command=["aptly", CONF, *args])


PUBLISHED = json.dumps(
    {
        "Distribution": "snowbird-staging",
        "Sources": [{"Component": "main", "Name": "snowbird-staging@1"}],
    }
)


def next_snapshot(distribution="snowbird-staging"):
    return ExpectShell(
        workdir="wkdir",
        env=ENV,
        command=[
            "sh",
            "-c",
            repository.NextSnapshot.SCRIPT,
            "snapshot",
            "/var/lib/conveyor/aptly.conf",
            distribution,
            "incoming-publish-12",
            "incoming",
            f"{distribution}+new@T",
            f"{distribution}@T",
        ],
    )


def named(base, *_args):
    return f"{base}@T"


# a stand-in `aptly` for the scripts: logs its arguments; `publish show` prints $PUBLISHED (fails
# when empty), `repo add` needs its directory, a `snapshot drop` fails when $DROP_FAILS is set
STAND_IN = """#!/bin/sh
echo "$@" >> "$APTLY_LOG"
case "$2 $3" in
    "publish show") [ -n "$PUBLISHED" ] && echo "$PUBLISHED" ;;
    "repo add") [ -d "$5" ] ;;
    "snapshot drop") [ -z "$DROP_FAILS" ] ;;
esac
"""


class AptlyStepsTest(StepTestCase):
    def named(self, *_args):
        return "NEW"

    def test_current_snapshot_reads_the_publication(self):
        self.setup(repository.CurrentSnapshot(distribution="snowbird-staging", **APTLY))
        self.expect_commands(
            aptly("publish", "show", "-json", "snowbird-staging", ".").stdout(PUBLISHED).exit(0)
        )
        self.expect_outcome(result=SUCCESS)
        self.expect_property("current_snapshot", "snowbird-staging@1")
        return self.run_step()

    def test_current_snapshot_of_an_unpublished_distribution_fails(self):
        self.setup(repository.CurrentSnapshot(distribution="nowhere", **APTLY))
        self.expect_commands(aptly("publish", "show", "-json", "nowhere", ".").exit(1))
        self.expect_outcome(result=FAILURE, state_string="nowhere is not published here")
        return self.run_step()

    LOCKED = "ERROR: Unable to open database: resource temporarily unavailable\n"

    def test_a_locked_database_is_tried_again_until_it_is_free(self):
        # a backup or an operator's aptly holding the database for a while
        self.setup(repository.CurrentSnapshot(distribution="snowbird-staging", **APTLY))
        show = ("publish", "show", "-json", "snowbird-staging", ".")
        self.expect_commands(
            aptly(*show).stderr(self.LOCKED).exit(1),
            aptly(*show).stderr(self.LOCKED).exit(1),
            aptly(*show).stdout(PUBLISHED).exit(0),
        )
        self.expect_outcome(result=SUCCESS)
        self.expect_property("current_snapshot", "snowbird-staging@1")
        self.expect_log_file("stdio", mock.ANY)
        d = self.run_step()
        self.reactor.pump([1] * 30)  # (the fake worker's commands take the clock's turns too)
        return d

    def test_a_database_locked_for_good_fails_saying_so(self):
        self.setup(repository.CurrentSnapshot(distribution="snowbird-staging", **APTLY))
        show = ("publish", "show", "-json", "snowbird-staging", ".")
        self.expect_commands(*[aptly(*show).stderr(self.LOCKED).exit(1) for _ in range(4)])
        self.expect_outcome(result=FAILURE, state_string=repository.LOCKED_MESSAGE)
        d = self.run_step()
        self.reactor.pump([1] * 100)
        return d

    def run_script(self, tmp, incoming, published=PUBLISHED, drop_fails=""):
        import os
        import subprocess

        with open(os.path.join(tmp, "aptly"), "w") as f:
            f.write(STAND_IN)
        os.chmod(os.path.join(tmp, "aptly"), 0o755)
        log = os.path.join(tmp, "log")
        open(log, "w").close()
        env = {
            **os.environ,
            "PATH": f"{tmp}:{os.environ['PATH']}",
            "APTLY_LOG": log,
            "PUBLISHED": published,
            "DROP_FAILS": drop_fails,
        }
        proc = subprocess.run(
            [
                "sh",
                "-c",
                repository.NextSnapshot.SCRIPT,
                "snapshot",
                "/a.conf",
                "app-staging",
                "scratch",
                incoming,
                "part",
                "next",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        return proc.returncode, proc.stdout, open(log).read().splitlines()

    def test_the_snapshot_script_merges_the_current_state_and_the_debs_and_leaves_no_repo(self):
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            code, out, calls = self.run_script(tmp, tmp)
            self.assertEqual((code, out), (0, "current: snowbird-staging@1\n"))
            self.assertEqual(
                calls,
                [
                    "-config=/a.conf publish show -json app-staging .",
                    "-config=/a.conf repo drop -force scratch",
                    # what a run cut short (aptly's database locked) made: running again is safe
                    "-config=/a.conf snapshot drop -force next",
                    "-config=/a.conf snapshot drop -force part",
                    "-config=/a.conf repo create scratch",
                    f"-config=/a.conf repo add scratch {tmp}",
                    "-config=/a.conf snapshot create part from repo scratch",
                    "-config=/a.conf repo drop -force scratch",
                    "-config=/a.conf snapshot merge -no-remove next snowbird-staging@1 part",
                    "-config=/a.conf snapshot drop -force part",
                ],
            )
            # a part that could not be dropped is named, for the cleanup
            code, out, calls = self.run_script(tmp, tmp, drop_fails="yes")
            self.assertEqual((code, out.splitlines()[-1]), (0, "kept: part"))

    def test_the_snapshot_script_stops_where_a_part_fails(self):
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            code, _, calls = self.run_script(tmp, "/nonexistent")
            self.assertNotEqual(code, 0)
            self.assertEqual(calls[-1], "-config=/a.conf repo add scratch /nonexistent")
            self.assertEqual(self.run_script(tmp, tmp, published="")[0], 3)
            self.assertEqual(self.run_script(tmp, tmp, published=json.dumps({"Sources": []}))[0], 4)

    def test_select_version_refuses_what_the_source_does_not_hold(self):
        self.setup(
            repository.SelectVersion(distribution="snowbird", **APTLY),
            buildername="promote",
            package="snowbird",
            package_version="9.9",
            source_snapshot="snowbird-staging@1",
        )
        with mock.patch.object(repository.release, "snapshot_name", self.named):
            self.expect_commands(
                aptly("snapshot", "filter", "snowbird-staging@1", "NEW", "snowbird (= 9.9)").exit(
                    0
                ),
                aptly("snapshot", "search", "NEW", "snowbird (= 9.9)").exit(1),
            )
            self.expect_outcome(
                result=FAILURE, state_string="snowbird 9.9 is not in snowbird-staging@1"
            )
            d = self.run_step()
        return d

    def test_merge_keeps_every_version_and_drops_the_part(self):
        self.setup(
            repository.MergeSnapshot(distribution="snowbird", **APTLY),
            buildername="promote",
            current_snapshot="snowbird@1",
            part_snapshot="part",
        )
        with mock.patch.object(repository.release, "snapshot_name", self.named):
            self.expect_commands(
                aptly("snapshot", "merge", "-no-remove", "NEW", "snowbird@1", "part").exit(0),
                aptly("snapshot", "drop", "-force", "part").exit(0),
            )
            self.expect_outcome(result=SUCCESS)
            self.expect_property("snapshot", "NEW")
            d = self.run_step()
        return d

    def test_fetch_empties_the_builds_incoming_then_downloads_each_package_into_it(self):
        import os
        import shutil
        import tempfile

        store = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, store)
        # each release's package build put its .debs in its own place
        where = {
            "a_1+deb12_all.deb": "app-package-bookworm/4",
            "b_1+deb13_all.deb": "app-package-trixie/2",
        }
        for deb, body in (("a_1+deb12_all.deb", b"first"), ("b_1+deb13_all.deb", b"second")):
            os.makedirs(os.path.join(store, where[deb]))
            with open(os.path.join(store, where[deb], deb), "wb") as f:
                f.write(body)
        self.setup(
            repository.FetchPackages(artifacts_dir=store),
            debs=["a_1+deb12_all.deb", "b_1+deb13_all.deb"],
            artifact_paths=where,
        )
        written = []
        # the build's incoming/ (where the downloads land), not the builder's: a package an
        # earlier publish left there would be imported again, into any distribution
        self.expect_commands(
            ExpectRmdir(dir="wkdir/incoming", log_environ=False).exit(0),
            *(
                ExpectDownloadFile(
                    workerdest=f"incoming/{deb}",
                    workdir="wkdir",
                    blocksize=256 * 1024,
                    maxsize=None,
                    reader=mock.ANY,
                    mode=None,
                )
                .download_string(written.append)
                .exit(0)
                for deb in ("a_1+deb12_all.deb", "b_1+deb13_all.deb")
            ),
        )
        self.expect_outcome(result=SUCCESS, state_string="fetched 2 package(s)")
        d = self.run_step()
        return d.addCallback(lambda _: self.assertEqual(written, [b"first", b"second"]))

    def test_a_package_missing_from_the_store_fails_the_fetch(self):
        self.setup(
            repository.FetchPackages(artifacts_dir="/nonexistent"),
            debs=["a_1_all.deb"],
            artifact_paths={"a_1_all.deb": "app-package/4"},
        )
        self.expect_commands(ExpectRmdir(dir="wkdir/incoming", log_environ=False).exit(0))
        self.expect_outcome(result=FAILURE, state_string="a_1_all.deb is not in the artifact store")
        return self.run_step()

    def test_a_package_with_no_artifact_path_fetches_nothing(self):
        self.setup(
            repository.FetchPackages(artifacts_dir="/nonexistent"),
            debs=["a_1_all.deb", "b_1_all.deb"],
            artifact_paths={"a_1_all.deb": "app-package/4"},
        )
        self.expect_outcome(result=FAILURE, state_string="no artifact path for the packages")
        return self.run_step()

    def test_next_snapshot_is_current_plus_import_merged_in_one_command(self):
        self.setup(
            repository.NextSnapshot(distribution="snowbird-staging", **APTLY), buildername="publish"
        )
        self.patch(repository.release, "snapshot_name", named)
        self.expect_commands(next_snapshot().stdout("current: snowbird-staging@1\n").exit(0))
        self.expect_outcome(result=SUCCESS, state_string="snowbird-staging@T")
        self.expect_property("current_snapshot", "snowbird-staging@1")
        self.expect_property("snapshot", "snowbird-staging@T")
        self.expect_property("new_snapshot", "snowbird-staging@T")
        self.expect_property("part_snapshot", None)
        return self.run_step()

    def test_next_snapshot_of_an_unpublished_distribution_is_refused(self):
        self.setup(repository.NextSnapshot(distribution="nowhere", **APTLY), buildername="publish")
        self.patch(repository.release, "snapshot_name", named)
        self.expect_commands(next_snapshot("nowhere").exit(3))
        self.expect_outcome(result=FAILURE, state_string="nowhere is not published here")
        self.expect_no_property("snapshot")
        return self.run_step()

    def test_a_failed_import_leaves_its_names_to_the_cleanup(self):
        self.setup(
            repository.NextSnapshot(distribution="snowbird-staging", **APTLY), buildername="publish"
        )
        self.patch(repository.release, "snapshot_name", named)
        self.expect_commands(
            next_snapshot()
            .stdout("current: snowbird-staging@1\n")
            .stderr("+ aptly repo add …\nERROR: no files\n")
            .exit(1)
        )
        self.expect_outcome(result=FAILURE)
        self.expect_no_property("snapshot")
        self.expect_property("part_snapshot", "snowbird-staging+new@T")
        return self.run_step()

    def test_publish_switch_signs_with_the_configured_key(self):
        self.setup(
            repository.PublishSwitch(
                distribution="snowbird-staging", signing=["-gpg-key=ABCDEF0123"], **APTLY
            ),
            snapshot="snap-1",
        )
        self.expect_commands(
            aptly(
                "publish",
                "switch",
                "-batch",
                "-gpg-key=ABCDEF0123",
                "snowbird-staging",
                ".",
                "snap-1",
            ).exit(0)
        )
        self.expect_outcome(result=SUCCESS, state_string="snowbird-staging → snap-1")
        return self.run_step()

    def test_a_failed_check_after_the_switch_puts_the_previous_state_back(self):
        step = self.setup(
            repository.RestorePublished(
                distribution="snowbird", signing=["-gpg-key=AB", "-passphrase-file=/s/p"], **APTLY
            ),
            published="snowbird@2",
            current_snapshot="snowbird@1",
        )
        self.assertTrue(step.doStepIf(step))
        self.expect_commands(
            aptly(
                "publish",
                "switch",
                "-batch",
                "-gpg-key=AB",
                "-passphrase-file=/s/p",
                "snowbird",
                ".",
                "snowbird@1",
            ).exit(0)
        )
        self.expect_outcome(result=SUCCESS, state_string="snowbird back to snowbird@1")
        self.expect_property("published", "snowbird@1")
        return self.run_step()

    def test_nothing_to_put_back_once_the_history_has_the_new_state(self):
        step = self.setup(
            repository.RestorePublished(distribution="snowbird", **APTLY),
            published="snowbird@2",
            current_snapshot="snowbird@1",
            recorded=True,
        )
        self.assertFalse(step.doStepIf(step))

    SIGNING = (
        "Signing file 'Release' with gpg, please enter your passphrase when prompted:\n"
        "gpg: signing failed: No agent running\n"
        "ERROR: unable to publish: unable to detached sign file: exit status 2\n"
    )

    def test_a_signing_failure_is_tried_again_and_the_switch_then_done(self):
        # the GnuPG agent restarted, or the GnuPG home was remounted, for a moment
        self.setup(
            repository.PublishSwitch(distribution="snowbird-staging", **APTLY), snapshot="snap-1"
        )
        switch = ("publish", "switch", "-batch", "snowbird-staging", ".", "snap-1")
        self.expect_commands(aptly(*switch).stderr(self.SIGNING).exit(1), aptly(*switch).exit(0))
        self.expect_outcome(result=SUCCESS, state_string="snowbird-staging → snap-1")
        self.expect_log_file("stdio", mock.ANY)
        d = self.run_step()
        self.reactor.pump([1] * 30)
        return d

    def test_signing_that_never_comes_back_fails_saying_so(self):
        self.setup(
            repository.PublishSwitch(distribution="snowbird-staging", **APTLY), snapshot="snap-1"
        )
        switch = ("publish", "switch", "-batch", "snowbird-staging", ".", "snap-1")
        self.expect_commands(*[aptly(*switch).stderr(self.SIGNING).exit(1) for _ in range(4)])
        self.expect_outcome(result=FAILURE, state_string=repository.SIGNING_MESSAGE)
        d = self.run_step()
        self.reactor.pump([1] * 100)
        return d

    def test_publish_failure_halts(self):
        step = self.setup(
            repository.PublishSwitch(distribution="snowbird", **APTLY), snapshot="snap-1"
        )
        self.expect_commands(
            aptly("publish", "switch", "-batch", "snowbird", ".", "snap-1").exit(1)
        )
        self.expect_outcome(result=FAILURE)
        self.assertTrue(step.haltOnFailure)
        return self.run_step()


class DropUnpublishedTest(StepTestCase):
    def test_drops_what_this_build_made_and_did_not_publish(self):
        self.setup(
            repository.DropUnpublished(distribution="snowbird", **APTLY),
            new_snapshot="snowbird@new",
            part_snapshot="snowbird+promoted@x",
        )
        self.expect_commands(
            aptly("snapshot", "drop", "-force", "snowbird@new").exit(0),
            aptly("snapshot", "drop", "-force", "snowbird+promoted@x").exit(0),
            aptly("db", "cleanup").exit(0),
        )
        self.expect_outcome(
            result=SUCCESS, state_string="dropped snowbird@new, snowbird+promoted@x"
        )
        return self.run_step()

    def test_nothing_to_do_after_a_publication(self):
        step = self.setup(
            repository.DropUnpublished(distribution="snowbird", **APTLY),
            new_snapshot="snowbird@new",
            published="snowbird@new",
        )
        self.assertEqual(step.leftovers(), [])


class RecordHistoryTest(StepTestCase):
    def test_appends_an_entry(self):
        written = []
        self.setup(
            repository.RecordHistory(
                history_dir="/srv/www/history", action="promote", distribution="snowbird"
            ),
            snapshot="snowbird@2",
            current_snapshot="snowbird@1",
            package="snowbird",
            package_version=VERSION,
            from_dist="snowbird-staging",
            owner="releaser",
        )
        self.build.getUrl = mock.Mock(return_value=defer.succeed("http://ci/#/builders/3/builds/4"))
        old = '{"n": 1, "snapshot": "snowbird@1", "action": "create"}\n'
        self.expect_commands(
            ExpectUploadFile(
                workersrc="/srv/www/history/snowbird.jsonl",
                workdir="wkdir",
                blocksize=32768,
                maxsize=None,
                writer=mock.ANY,
            )
            .upload_string(old)
            .exit(0),
            ExpectDownloadFile(
                workerdest="/srv/www/history/snowbird.jsonl",
                workdir="wkdir",
                blocksize=32768,
                maxsize=None,
                reader=mock.ANY,
                mode=0o644,
            )
            .download_string(written.append, size=100000)
            .exit(0),
        )
        self.expect_outcome(result=SUCCESS, state_string="snowbird state 2: promote")
        d = self.run_step()

        def check(_):
            lines = b"".join(written).decode().splitlines()
            self.assertEqual(lines[0], old.strip())
            entry = json.loads(lines[1])
            self.assertEqual(
                {
                    k: entry[k]
                    for k in (
                        "n",
                        "action",
                        "snapshot",
                        "previous_snapshot",
                        "package",
                        "version",
                        "from",
                        "who",
                        "build",
                    )
                },
                {
                    "n": 2,
                    "action": "promote",
                    "snapshot": "snowbird@2",
                    "previous_snapshot": "snowbird@1",
                    "package": "snowbird",
                    "version": VERSION,
                    "from": "snowbird-staging",
                    "who": "releaser",
                    "build": "http://ci/#/builders/3/builds/4",
                },
            )

        return d.addCallback(check)


class VerifyPublishedTest(StepTestCase):
    def make(self, answers):
        calls = []

        class Verify(indexes.VerifyPublished):
            def fetch(self, url):
                calls.append(url)
                answer = answers[url]
                if isinstance(answer, Exception):
                    return defer.fail(answer)
                return defer.succeed(answer)

        step = Verify(
            repo_url="http://repo:8011",
            component="main",
            architectures=["amd64", "all"],
            distribution="snowbird-staging",
        )
        return step, calls

    URL = "http://repo:8011/dists/snowbird-staging/main/binary-amd64/Packages"

    def test_listed_version_passes(self):
        step, calls = self.make({self.URL: (200, PACKAGES)})
        self.setup(step, package_version=VERSION, debs=[f"snowbird_{VERSION}_amd64.deb"])
        self.expect_outcome(result=SUCCESS, state_string=f"snowbird {VERSION} in snowbird-staging")
        d = self.run_step()
        # "all" packages are listed in every architecture's index: one GET is enough
        d.addCallback(lambda _: self.assertEqual(calls, [self.URL]))
        return d

    def test_missing_version_fails_and_says_what_is_there(self):
        step, _ = self.make({self.URL: (200, PACKAGES)})
        self.setup(
            step,
            package_version="1.4.0+ci99.gbbbbbbb",
            debs=["snowbird_1.4.0+ci99.gbbbbbbb_amd64.deb"],
        )
        self.expect_outcome(result=FAILURE, state_string="snowbird 1.4.0+ci99.gbbbbbbb missing")
        self.expect_log_file_stderr(
            "stdio",
            "snowbird 1.4.0+ci99.gbbbbbbb is not listed in snowbird-staging's Packages "
            f"index (it lists 1.4.0+ci56.gaaaaaaa, {VERSION})\n",
        )
        return self.run_step()

    def test_http_error_fails(self):
        step, _ = self.make({self.URL: (404, "not found")})
        self.setup(step, package_version=VERSION, debs=[f"snowbird_{VERSION}_amd64.deb"])
        self.expect_outcome(result=FAILURE, state_string="index answered 404")
        return self.run_step()

    def test_unreachable_repository_fails(self):
        step, _ = self.make({self.URL: ConnectionRefusedError("refused")})
        self.setup(step, package_version=VERSION, debs=[f"snowbird_{VERSION}_amd64.deb"])
        self.expect_outcome(result=FAILURE, state_string="repository not reachable")
        return self.run_step()


TARGETS = {"snowbird-staging": ("bookworm", "trixie"), "snowbird": ("bookworm", "trixie")}


def query(release: str) -> str:
    return f"Version (% *+deb{12 if release == 'bookworm' else 13})"


def switch_args(config: str, state: str, *signing: str) -> list[str]:
    """SWITCH's arguments: each release's component derived from `state`, then the switch."""
    derived = [f"{state}~bookworm", f"{state}~trixie"]
    pairs = [derived[0], query("bookworm"), derived[1], query("trixie")]
    switch = ["publish", "switch", "-batch", *signing, "-component=bookworm,trixie"]
    return [config, state, *pairs, "--", *switch, "snowbird-staging", ".", *derived]


def switch(state: str, *signing: str) -> ExpectShell:
    """Each release's component derived from `state` and the switch, in one worker command."""
    return ExpectShell(
        workdir="wkdir",
        env=ENV,
        command=[
            "sh",
            "-c",
            repository.SWITCH,
            "switch",
            *switch_args("/var/lib/conveyor/aptly.conf", state, *signing),
        ],
    )


def run_switch_script(tmp_path: Path, fails: str = "") -> list[str]:
    """repository.SWITCH with an `aptly` that logs its calls, has snap-2~bookworm already,
    and fails on a call that contains `fails`: the calls it made."""
    calls = tmp_path / "calls"
    fake = tmp_path / "aptly"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}\n'
        f'case "$*" in *"snapshot show snap-2~bookworm"*) exit 0 ;; *"show"*) exit 1 ;; esac\n'
        f'case "$*" in *"{fails or "(never)"}"*) exit 9 ;; esac\n'
    )
    fake.chmod(0o755)
    args = switch_args("conf", "snap-2")
    proc = subprocess.run(
        ["sh", "-c", repository.SWITCH, "switch", *args],
        env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"},
        capture_output=True,
    )
    made = calls.read_text().splitlines() if calls.exists() else []
    return [proc.returncode, *(line.removeprefix("-config=conf ") for line in made)]


def test_the_switch_script_derives_what_is_missing_then_switches(tmp_path):
    assert run_switch_script(tmp_path) == [
        0,
        "snapshot show snap-2~bookworm",
        "snapshot show snap-2~trixie",
        f"snapshot filter snap-2 snap-2~trixie {query('trixie')}",
        "publish switch -batch -component=bookworm,trixie snowbird-staging . snap-2~bookworm "
        "snap-2~trixie",
    ]


def test_a_component_that_cannot_be_derived_switches_nothing(tmp_path):
    status, *calls = run_switch_script(tmp_path, fails="snapshot filter")
    assert status == 9 and not any(call.startswith("publish") for call in calls)


class TargetReleasesTest(StepTestCase):
    """A distribution with target releases: one component per release, each derived from its
    state, switched all at once (conveyor/targets.py)."""

    def test_the_switch_derives_each_component_and_switches_them_together(self):
        self.setup(
            repository.PublishSwitch(
                distribution="snowbird-staging",
                signing=["-gpg-key=ABCDEF0123"],
                components=TARGETS,
                **APTLY,
            ),
            snapshot="snap-2",
        )
        self.expect_commands(switch("snap-2", "-gpg-key=ABCDEF0123").exit(0))
        self.expect_outcome(result=SUCCESS, state_string="snowbird-staging → snap-2")
        self.expect_property("published", "snap-2")
        return self.run_step()

    def test_a_switch_that_fails_publishes_nothing(self):
        self.setup(
            repository.PublishSwitch(distribution="snowbird-staging", components=TARGETS, **APTLY),
            snapshot="snap-2",
        )
        self.expect_commands(switch("snap-2").exit(1))
        self.expect_outcome(result=FAILURE)
        self.expect_no_property("published")
        return self.run_step()

    def test_the_current_state_is_what_the_components_are_derived_from(self):
        self.setup(
            repository.CurrentSnapshot(distribution="snowbird-staging", components=TARGETS, **APTLY)
        )
        sources = [{"Component": r, "Name": f"snap-2~{r}"} for r in ("bookworm", "trixie")]
        self.expect_commands(
            aptly("publish", "show", "-json", "snowbird-staging", ".")
            .stdout(json.dumps({"Sources": sources}))
            .exit(0)
        )
        self.expect_outcome(result=SUCCESS)
        self.expect_property("current_snapshot", "snap-2")
        return self.run_step()

    def test_a_promotion_selects_every_releases_package_and_refuses_a_missing_one(self):
        self.setup(
            repository.SelectVersion(distribution="snowbird", components=TARGETS, **APTLY),
            buildername="promote",
            package="snowbird",
            package_version="9.9",
            source_snapshot="snowbird-staging@1",
        )
        query = "snowbird (= 9.9+deb12) | snowbird (= 9.9+deb13)"
        with mock.patch.object(repository.release, "snapshot_name", named):
            self.expect_commands(
                aptly(
                    "snapshot", "filter", "snowbird-staging@1", "snowbird+promoted@T", query
                ).exit(0),
                aptly("snapshot", "search", "snowbird+promoted@T", "snowbird (= 9.9+deb12)").exit(
                    0
                ),
                aptly("snapshot", "search", "snowbird+promoted@T", "snowbird (= 9.9+deb13)").exit(
                    1
                ),
            )
            self.expect_outcome(
                result=FAILURE, state_string="snowbird 9.9+deb13 is not in snowbird-staging@1"
            )
            self.expect_property("part_snapshot", "snowbird+promoted@T")  # the cleanup drops it
            d = self.run_step()
        return d


def test_the_verification_reads_every_component_and_wants_the_version_in_each():
    index = "Package: snowbird\nVersion: {}\nArchitecture: amd64\n\n"
    url = "http://repo:8011/dists/snowbird-staging/{}/binary-amd64/Packages"
    answers = {
        url.format("bookworm"): (200, index.format("9.9+deb12")),
        url.format("trixie"): (200, index.format("9.8+deb13")),
    }
    reader = indexes.IndexReader()
    reader.setup_index("http://repo:8011", "main", ["amd64"], TARGETS)
    reader.fetch = lambda u: defer.succeed(answers[u])
    log = mock.Mock(addStdout=lambda _: defer.succeed(None))
    got = []
    reader.read_index(log, "snowbird-staging").addCallback(got.append)
    assert got == [[]]  # 9.9 is not in trixie's: the distribution does not list it
    answers[url.format("trixie")] = (200, index.format("9.9+deb13"))
    reader.read_index(log, "snowbird-staging").addCallback(got.append)
    assert [s["Version"] for s in got[1]] == ["9.9"]
