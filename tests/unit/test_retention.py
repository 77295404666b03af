"""Retention ([retention]): which snapshots and artifacts go, the steps that remove them, the
settings; and the database settings (a password only by secret file)."""

import json
import os
import shutil
import tempfile
import time
from unittest import mock

import pytest

from buildbot.process.results import FAILURE
from buildbot.process.results import SUCCESS
from buildbot.test.steps import ExpectUploadFile

from conveyor import retention
from conveyor import settings
from steps import retention as retention_steps
from tests.unit import stepcase
from tests.unit.stepcase import ExpectShell
from tests.unit.test_settings import MINIMAL
from tests.unit.test_settings import write

APTLY = {"aptly_config": "/srv/aptly.conf", "gnupg_home": "/srv/gpg"}
ENV = {"GNUPGHOME": "/srv/gpg"}


def aptly(*args):
    return ExpectShell(
        workdir="wkdir", env=ENV, command=["aptly", "-config=/srv/aptly.conf", *args]
    )


def entry(n, snapshot, previous=None):
    return {"n": n, "snapshot": snapshot, "previous_snapshot": previous}


STAGING = [
    entry(1, "st@1"),
    entry(2, "st@2", "st@1"),
    entry(3, "st@3", "st@2"),
    entry(4, "st@4", "st@3"),
]
PROD = [
    entry(1, "pr@1"),
    entry(2, "pr@2", "pr@1"),
    entry(3, "pr@3", "pr@2"),
    entry(4, "pr@1", "pr@3"),
]  # a rollback to the first state


def test_in_use_are_the_last_states_what_is_published_and_the_rollback_target():
    in_use = retention.snapshots_in_use(
        {"st": STAGING, "pr": PROD}, 2, {"st": "st@4", "pr": "pr@1"}
    )
    # staging: states 3 and 4 (the published one; a rollback returns to 3);
    # production: states 3 and 4 (pr@1 again, published), and a one-step rollback from pr@1,
    # whose first state is 1, has nothing to return to: state 2 goes
    assert in_use == {"st@3", "st@4", "pr@1", "pr@3"}
    existing = ["st@1", "st@2", "st@3", "st@4", "pr@1", "pr@2", "pr@3", "st@5+new@x"]
    assert retention.snapshots_to_drop(existing, in_use) == ["pr@2", "st@1", "st@2", "st@5+new@x"]


def test_a_rollback_target_outside_the_window_stays():
    # rolled back to state 2, then two more states that re-publish it: "previous" walks back
    # from state 2's first appearance to state 1, outside the last two entries
    history = [
        entry(1, "a@1"),
        entry(2, "a@2", "a@1"),
        entry(3, "a@3", "a@2"),
        entry(4, "a@2", "a@3"),
    ]
    assert retention.snapshots_in_use({"a": history}, 1, {"a": "a@2"}) == {"a@2", "a@1"}


def test_published_snapshots_are_never_dropped_even_unknown_to_the_history():
    in_use = retention.snapshots_in_use({"st": STAGING}, 1, {"st": "by-hand"})
    assert "by-hand" in in_use
    assert "st@4" in in_use  # the last state
    assert retention.snapshots_to_drop(["by-hand", "st@1"], in_use) == ["st@1"]


def test_expired_build_dirs_are_those_untouched_for_long(tmp_path):
    old = tmp_path / "snowbird-ci" / "1"
    (old / "coverage").mkdir(parents=True)
    (old / "snowbird_1.0_all.deb").write_bytes(b"x" * 1000)
    (old / "coverage" / "index.html").write_text("<html>")
    young = tmp_path / "snowbird-ci" / "2"
    young.mkdir()
    (young / "snowbird_1.1_all.deb").write_bytes(b"y")
    touched = tmp_path / "snowbird-pr" / "7"
    touched.mkdir(parents=True)
    (touched / "old.deb").write_bytes(b"z")
    month_ago = time.time() - 31 * 86400
    for path in (
        old,
        old / "coverage",
        old / "snowbird_1.0_all.deb",
        old / "coverage" / "index.html",
        touched,
        touched / "old.deb",
    ):
        os.utime(path, (month_ago, month_ago))
    (touched / "new-report.html").write_text("new")  # something new inside: it stays
    assert retention.expired_build_dirs(tmp_path, time.time() - 30 * 86400) == [old]
    assert retention.remove_tree(old) == 1006
    assert not old.exists() and young.exists()


class PruneArtifactsTest(stepcase.StepTestCase):
    def test_removes_old_builds_and_says_how_much(self):
        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root, True)
        old = os.path.join(root, "snowbird-ci", "3")
        os.makedirs(old)
        with open(os.path.join(old, "a.deb"), "wb") as fh:
            fh.write(b"x" * 2_500_000)
        then = time.time() - 8 * 86400
        os.utime(os.path.join(old, "a.deb"), (then, then))
        os.utime(old, (then, then))
        self.setup(retention_steps.PruneArtifacts(artifacts_dir=root, days=7))
        self.expect_outcome(
            result=SUCCESS,
            state_string="removed the artifacts of 1 build(s) older than 7 days (2.5 MB)",
        )
        self.expect_property("artifacts_pruned", 1)
        self.expect_log_file("stdio", "removed snowbird-ci/3\n")
        d = self.run_step()
        # the builder's directory went too, once empty
        return d.addCallback(lambda _: self.assertEqual(os.listdir(root), []))


def history_upload(dist, entries):
    return (
        ExpectUploadFile(
            workersrc=f"/srv/history/{dist}.jsonl",
            workdir="wkdir",
            blocksize=32768,
            maxsize=None,
            writer=mock.ANY,
        )
        .upload_string("".join(json.dumps(e) + "\n" for e in entries))
        .exit(0)
    )


PUBLISHED = json.dumps(
    [
        {"Distribution": "st", "Sources": [{"Name": "st@4"}]},
        {"Distribution": "pr", "Sources": [{"Name": "pr@1"}]},
    ]
)


class PruneSnapshotsTest(stepcase.StepTestCase):
    def step(self, keep=2):
        return retention_steps.PruneSnapshots(
            history_dir="/srv/history", distributions=["st", "pr"], keep_states=keep, **APTLY
        )

    def test_drops_what_no_recent_state_uses_then_cleans_the_pool(self):
        self.setup(self.step())
        self.expect_commands(
            history_upload("st", STAGING),
            history_upload("pr", PROD),
            aptly("publish", "list", "-json").stdout(PUBLISHED).exit(0),
            aptly("snapshot", "list", "-raw")
            .stdout("pr@1\npr@2\npr@3\nst@1\nst@2\nst@3\nst@4\nst@9+new@x\n")
            .exit(0),
            aptly("snapshot", "drop", "-force", "pr@2").exit(0),
            aptly("snapshot", "drop", "-force", "st@1").exit(0),
            aptly("snapshot", "drop", "-force", "st@2").exit(0),
            aptly("snapshot", "drop", "-force", "st@9+new@x").exit(0),
            aptly("db", "cleanup").exit(0),
        )
        self.expect_outcome(
            result=SUCCESS,
            state_string="dropped 4 snapshot(s), kept 4 (the last 2 states of each distribution)",
        )
        self.expect_property("snapshots_dropped", 4)
        self.expect_property("snapshots_kept", 4)
        return self.run_step()

    def test_an_unreadable_history_drops_nothing(self):
        self.setup(self.step())
        self.expect_commands(
            history_upload("st", STAGING),
            ExpectUploadFile(
                workersrc="/srv/history/pr.jsonl",
                workdir="wkdir",
                blocksize=32768,
                maxsize=None,
                writer=mock.ANY,
            ).exit(1),
        )
        self.expect_outcome(
            result=FAILURE,
            state_string="cannot read /srv/history/pr.jsonl: nothing dropped",
        )
        self.expect_no_property("snapshots_dropped")
        return self.run_step()

    def test_a_snapshot_aptly_will_not_drop_stops_it(self):
        self.setup(self.step(keep=3))
        self.expect_commands(
            history_upload("st", STAGING),
            history_upload("pr", PROD),
            aptly("publish", "list", "-json").stdout(PUBLISHED).exit(0),
            aptly("snapshot", "list", "-raw").stdout("st@0\nst@4\n").exit(0),
            aptly("snapshot", "drop", "-force", "st@0").exit(1),
        )
        self.expect_outcome(result=FAILURE, state_string="could not drop st@0")
        return self.run_step()


def test_retention_defaults_and_bounds(tmp_path):
    s = settings.load(write(tmp_path, MINIMAL))
    assert (
        s.retention.logs_days,
        s.retention.artifacts_days,
        s.retention.snapshots_keep_states,
    ) == (30, 30, 20)
    s = settings.load(write(tmp_path, MINIMAL + "[retention]\nsnapshots_keep_states = 3\n"))
    assert s.retention.snapshots_keep_states == 3
    with pytest.raises(
        settings.SettingsError, match=r"\[retention.logs_days\] must be between 1 and 36500, not 0"
    ):
        settings.load(write(tmp_path, MINIMAL + "[retention]\nlogs_days = 0\n"))
    with pytest.raises(settings.SettingsError, match=r"\[retention.days\] unknown key 'days'"):
        settings.load(write(tmp_path, MINIMAL + "[retention]\ndays = 3\n"))


def with_db(url: str, extra: str = "") -> str:
    return MINIMAL.replace("[conveyor]\n", f'[conveyor]\ndb_url = "{url}"\n{extra}')


def test_a_password_in_db_url_is_refused_without_repeating_it(tmp_path):
    with pytest.raises(settings.SettingsError) as exc:
        settings.load(write(tmp_path, with_db("postgresql://bb:s3cret@db:5432/bb")))
    message = str(exc.value)
    assert "[conveyor.db_url] must not hold a password" in message
    assert "db_password_secret" in message and "s3cret" not in message


def test_postgresql_url_gets_its_password_from_the_secret_file(tmp_path):
    from master import config

    s = settings.load(write(tmp_path, with_db("postgresql://bb@db.example:5432/bb")))
    assert s.db_password_secret == "db-password"
    assert config.database_url(s) == "postgresql://bb@db.example:5432/bb"  # no file: none
    s.secrets_dir.mkdir(parents=True)
    (s.secrets_dir / "db-password").write_text("p@ss:w/rd\n")
    assert config.database_url(s) == "postgresql://bb:p%40ss%3Aw%2Frd@db.example:5432/bb"
    s = settings.load(
        write(tmp_path, with_db("postgresql://bb@db/bb", 'db_password_secret = "pg"\n'))
    )
    (s.secrets_dir / "pg").write_text("other\n")
    assert config.database_url(s) == "postgresql://bb:other@db/bb"
    s = settings.load(write(tmp_path, MINIMAL))
    assert (s.db_url, s.db_password_secret) == ("sqlite:///state.sqlite", None)
    assert config.database_url(s) == "sqlite:///state.sqlite"
