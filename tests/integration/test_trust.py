"""The trust boundary: code under test never reaches the signing key, the secrets or the
repository. A pull request whose tests try, on the build worker, to read the private signing
key, the secrets, aptly's database, the master's database and another installation's worker
password (readable by the same build user), to run `aptly publish`, to write outside their build
directory (the install check's shared base among others), and to connect to the master's, the
repository's and the mail sink's ports: every attempt fails, the build reports its test results as
usual, and the repository's published files stay byte for byte as they were.

Needs root (the build worker runs as its own user, conveyor-build) and `make system`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from conveyor.results import result_name
from ops import api
from ops import demo
from ops import github
from ops import setup
from tests.integration.helpers import ROOT
from tests.integration.helpers import free_port
from tests.integration.helpers import running_installation

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="a separate build user needs root"),
]

HOSTILE = '''"""Added by Conveyor's trust test: each test tries to reach what code under test
must not, and passes only if the attempt fails."""
import os
import socket
import subprocess

import pytest

FILES = {files!r}
PORTS = {ports!r}
APTLY_CONFIG = {aptly_config!r}
OUTSIDE = {outside!r}
PRIVATE = {private!r}


@pytest.mark.parametrize("what", sorted(FILES))
def test_cannot_read(what):
    for path in FILES[what]:
        with pytest.raises(OSError):
            with open(path, "rb") as fh:
                fh.read()


def test_cannot_run_aptly_publish():
    proc = subprocess.run(["aptly", f"-config={{APTLY_CONFIG}}", "publish", "show",
                           "snowbird-staging"], capture_output=True, text=True)
    assert proc.returncode != 0, proc.stdout


@pytest.mark.parametrize("path", OUTSIDE)
def test_cannot_write_outside_the_build(path):
    with pytest.raises(OSError):
        with open(path, "w") as fh:
            fh.write("escaped")


@pytest.mark.parametrize("port", PORTS)
def test_cannot_connect_to_the_installations_ports(port):
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_writes_to_tmp_stay_private():
    for path in PRIVATE:
        with open(path, "w") as fh:  # the sandbox's own /tmp: it never reaches the host's
            fh.write("escaped")
'''


def tree_digest(*roots: Path) -> dict[str, str]:
    """Every file below the roots (links followed) -> its SHA-256."""
    digests = {}
    for root in roots:
        if root.is_file():
            digests[str(root)] = hashlib.sha256(root.read_bytes()).hexdigest()
        for dirpath, _dirs, files in os.walk(root, followlinks=True):
            for name in files:
                path = Path(dirpath) / name
                digests[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def files_below(path: Path) -> list[str]:
    return sorted(str(p) for p in path.rglob("*") if p.is_file())


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def other_installation():
    """Another installation's build worker on the same host: its password, readable by the
    build user (its workers run as the same conveyor-build), as ops/setup.py leaves it."""
    password = Path("/srv/conveyor-tests-other/var/workers/build/worker-password")
    password.parent.mkdir(parents=True, exist_ok=True)
    password.write_text("the other installation's worker password\n")
    for path in (password, *list(password.parents)[:4]):
        shutil.chown(path, setup.BUILD_USER, setup.BUILD_USER)
    os.chmod(password, 0o400)
    yield password
    shutil.rmtree("/srv/conveyor-tests-other", ignore_errors=True)


@pytest.fixture(scope="module")
def installation():
    # (installation_base is not below /tmp: there, the sandbox's private /tmp would hide the
    # state on its own; here only the build user and the sandbox's hiding stand between the
    # tests and the state, as in a `make run` installation)
    mail = f'[mail]\nsmtp_host = "127.0.0.1"\nsmtp_port = {free_port()}\n'  # its mail sink
    with running_installation("trust", extra=mail) as settings:
        yield settings


def test_a_hostile_pull_request_reaches_nothing(installation, other_installation):
    settings = installation
    # without the sandbox, the build user reads the other installation's password
    assert (
        subprocess.run(
            ["runuser", "-u", setup.BUILD_USER, "--", "cat", str(other_installation)],
            capture_output=True,
        ).returncode
        == 0
    )
    # the master's worker and web ports, the repository's, the mail sink's: each listens
    ports = [
        settings.worker_port,
        settings.web_port,
        settings.repository.port,
        settings.mail.smtp_port,
    ]
    assert all(listening(port) for port in ports), ports
    project = settings.projects[0]
    repo = settings.repository
    files = {
        "signing-key": files_below(repo.gnupg_home / "private-keys-v1.d"),
        "secrets": files_below(settings.secrets_dir),
        "aptly-database": files_below(repo.aptly_root / "db"),
        "aptly-config": [str(repo.aptly_config)],
        "master-database": files_below(settings.master_dir),
        "repository-worker": [str(setup.worker_dir(settings, repo.worker) / "buildbot.tac")],
        "another-installation": [str(other_installation)],
    }
    assert all(files.values()), files  # each attempt has something real to try
    # outside the build directory and its caches: the state, the served tree, the system
    outside = [
        str(settings.state_dir / "escaped-by-a-test"),
        str(repo.www_root / "escaped-by-a-test"),
        str(ROOT / "escaped-by-a-test"),
        "/etc/escaped-by-a-test",
        # what every later build of every project reads: the install check's base
        str(setup.BUILD_CACHE / "escaped-by-a-test"),
    ]
    # a build's /tmp is its own: a write there never reaches the machine's
    private = [Path("/tmp/escaped-by-a-test"), Path("/var/tmp/escaped-by-a-test")]
    served = (
        repo.www_root / "dists",
        repo.www_root / "pool",
        settings.history_dir,
        repo.www_root / repo.public_key_name,
    )
    published = tree_digest(*served)
    assert any("/dists/snowbird-staging/" in p for p in published)

    checkout = demo.ensure_demo_repo(settings, project)
    before = api.last_build_number(settings, project.pr_builder)
    _head, status, body = github.pull_request_with_file(
        settings,
        project,
        checkout,
        7,
        "hostile",
        "tests/test_hostile.py",
        HOSTILE.format(
            files=files,
            ports=ports,
            aptly_config=str(repo.aptly_config),
            outside=outside,
            private=[str(p) for p in private],
        ),
        "Try to reach the signing key",
    )
    assert status in (200, 202) and "1 change" in body, body

    build = api.wait_for_build(settings, project.pr_builder, before, timeout=300)
    # every attempt failed, so every hostile test passed: the build is green as usual
    (result_set,) = api.api(settings, f"builds/{build['buildid']}/test_result_sets")[
        "test_result_sets"
    ]
    results = api.api(settings, f"test_result_sets/{result_set['test_result_setid']}/results")
    hostile = {
        r["test_name"]: r["value"]
        for r in results["test_results"]
        if "test_hostile" in r["test_name"]
    }
    expected = (
        {f"tests.test_hostile::test_cannot_read[{what}]" for what in files}
        | {
            "tests.test_hostile::test_cannot_run_aptly_publish",
            "tests.test_hostile::test_writes_to_tmp_stay_private",
        }
        | {f"tests.test_hostile::test_cannot_write_outside_the_build[{p}]" for p in outside}
        | {
            f"tests.test_hostile::test_cannot_connect_to_the_installations_ports[{port}]"
            for port in ports
        }
    )
    assert set(hostile) == expected, sorted(hostile)
    # "1": passed, so the attempt failed; a "0" names an attempt that got through
    assert [name for name, value in hostile.items() if value != "1"] == [], build["url"]
    assert result_name(build["results"]) == "SUCCESS", api.describe(build)

    assert not any(Path(p).exists() for p in outside + private)
    assert tree_digest(*served) == published  # not one byte of the repository changed


def test_the_build_worker_runs_as_its_own_user_and_the_sandbox_is_on(installation):
    settings = installation
    build_dir = setup.worker_dir(settings, setup.build_workers(settings)[0])
    assert build_dir.stat().st_uid != 0
    for path in setup.protected_paths(settings):
        assert path.stat().st_mode & 0o077 == 0, path  # owner only
    steps = api.api(settings, "builds?order=-buildid&limit=1")["builds"]
    assert steps  # a build ran (the previous test): its tests ran in conveyor-sandbox
    logs = api.api(settings, f"builds/{steps[0]['buildid']}/steps")["steps"]
    tests = next(s for s in logs if s["name"] == "tests")
    (stdio,) = [
        entry
        for entry in api.api(settings, f"steps/{tests['stepid']}/logs")["logs"]
        if entry["slug"] == "stdio"
    ]
    text = api.api(settings, f"logs/{stdio['logid']}/contents")["logchunks"][0]["content"]
    assert "conveyor-sandbox" in text
