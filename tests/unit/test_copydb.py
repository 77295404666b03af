"""python -m ops.copydb: what it refuses before it runs buildbot copy-db."""

import os

from conveyor import settings
from ops import copydb
from tests.unit.test_settings import MINIMAL
from tests.unit.test_settings import write


def test_a_password_in_the_url_is_refused(tmp_path, capsys):
    s = settings.load(write(tmp_path, MINIMAL))
    assert copydb.copy_db(s, "postgresql://bb:s3cret@db:5432/bb", "db-password") == 2
    assert "must not hold a password" in capsys.readouterr().out


def test_a_running_master_is_refused(tmp_path, capsys):
    s = settings.load(write(tmp_path, MINIMAL))
    s.master_dir.mkdir(parents=True)
    (s.master_dir / "twistd.pid").write_text(f"{os.getpid()}\n")  # alive: this process
    assert copydb.copy_db(s, "postgresql://bb@db:5432/bb", "db-password") == 2
    assert "the master is running: stop it first" in capsys.readouterr().out
