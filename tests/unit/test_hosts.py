"""Hosts apart: the repository's own paths (`[repository] home`), the key's fingerprint the
master knows without reading that host's files, and the systemd units the hosts' commands
write (ops/hosts.py, ops/systemd/)."""

from __future__ import annotations

import contextlib
import http.server
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from buildbot.config.errors import ConfigErrors

from conveyor import settings as settings_module
from master import repository
from ops import hosts
from ops import units
from steps import repository as repo_steps

FINGERPRINT = "3B8F2A5C9D0E41F7A6B2C8D94E1F0A7B5C3D2E19"


def load(tmp_path: Path, repository_table: str = "") -> settings_module.Settings:
    (tmp_path / "pipeline.toml").write_text(f"""
[conveyor]
state_dir = "var"
[repository]
{repository_table}
[workers.build]
[workers.repository]
[projects.app]
github = "o/app"
clone_url = "https://example.com/app.git"
packages = ["app"]
path = ["app-staging", "app"]
""")
    return settings_module.load(tmp_path / "pipeline.toml")


def test_one_machine_keeps_the_repository_in_the_state_dir(tmp_path):
    settings = load(tmp_path, 'passphrase_secret = "pass"')
    repo = settings.repository
    state = tmp_path / "var"
    assert not repo.apart and repo.home is None
    assert (repo.www_root, repo.aptly_root, repo.gnupg_home) == (
        state / "www",
        state / "aptly",
        state / "gnupg",
    )
    assert repo.passphrase_file == state / "secrets" / "pass"
    repo.gnupg_home.mkdir(parents=True)
    repo.signing_key_file.write_text(FINGERPRINT + "\n")
    assert repo.signing_key() == FINGERPRINT  # make run: the file it wrote
    assert repo.signing_args()[0] == f"-gpg-key={FINGERPRINT}"


def test_a_repository_host_has_every_path_below_its_home_and_the_master_reads_none(tmp_path):
    home = tmp_path / "repository-host"
    settings = load(tmp_path, f'home = "{home}"\npassphrase_secret = "pass"')
    repo = settings.repository
    assert repo.apart and repo.home == home
    for path in (
        repo.www_root,
        repo.aptly_root,
        repo.aptly_config,
        repo.gnupg_home,
        repo.signing_key_file,
        repo.passphrase_file,
        settings.history_dir,
    ):
        assert path.is_relative_to(home), path
        assert not path.is_relative_to(settings.state_dir), path
    # a key file there is the host's: the master does not read it, it needs the fingerprint
    repo.gnupg_home.mkdir(parents=True)
    repo.signing_key_file.write_text(FINGERPRINT + "\n")
    assert repo.signing_key() == "" and repo.key_on_host() == FINGERPRINT


def test_the_fingerprint_in_the_settings_signs(tmp_path):
    settings = load(tmp_path, f'home = "/srv/repo"\nfingerprint = "{FINGERPRINT.lower()}"')
    assert settings.repository.signing_args() == [f"-gpg-key={FINGERPRINT}"]
    assert repository.with_fingerprint(settings) is settings  # nothing fetched


@pytest.mark.parametrize(
    "table, message",
    [
        (
            'home = "relative/dir"',
            "[repository.home] must be an absolute path on the repository's host",
        ),
        ('fingerprint = "ABCD 1234"', "[repository.fingerprint] 'ABCD 1234' is not valid"),
        ('fingerprint = "3B8F2A5C"', "40 hex digits"),
    ],
)
def test_wrong_repository_host_settings_are_refused(tmp_path, table, message):
    with pytest.raises(settings_module.SettingsError) as refused:
        load(tmp_path, table)
    assert message in str(refused.value)


@contextlib.contextmanager
def serving(directory: Path):
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=str(directory), **k
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def served_key(tmp_path_factory):
    """A signing key made by gpg, its public half as a repository host serves it."""
    base = tmp_path_factory.mktemp("key")
    gnupg = base / "gnupg"
    gnupg.mkdir(mode=0o700)
    env = {"GNUPGHOME": str(gnupg), "PATH": "/usr/bin:/bin"}
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            "t <t@example>",
            "ed25519",
            "sign",
            "never",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    listing = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--list-keys"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fingerprint = next(
        line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")
    )
    www = base / "www"
    www.mkdir()
    (www / "conveyor.gpg").write_bytes(
        subprocess.run(
            ["gpg", "--batch", "--export", fingerprint], env=env, check=True, capture_output=True
        ).stdout
    )
    (www / "not-a-key.gpg").write_text("hello\n")
    with serving(www) as url:
        yield url, fingerprint
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True)


def test_the_master_signs_with_the_key_the_repository_host_serves(tmp_path, served_key):
    url, fingerprint = served_key
    settings = load(tmp_path, f'home = "/srv/repo"\nurl = "{url}"')
    assert settings.repository.signing_args() == []
    known = repository.with_fingerprint(settings)
    assert known.repository.fingerprint == fingerprint
    # the publish, promote and rollback builders sign with it
    from master import releases

    steps = [
        s
        for s in releases.publish_factory(known).steps
        if issubclass(s.step_class, repo_steps.PublishSwitch)
    ]
    assert steps and all(s.kwargs["signing"] == [f"-gpg-key={fingerprint}"] for s in steps)


def test_an_unreachable_or_wrong_key_stops_the_configuration_saying_why(tmp_path, served_key):
    url, _ = served_key
    with pytest.raises(ConfigErrors) as refused:
        repository.served_fingerprint(url + "not-a-key.gpg")
    assert "is not an OpenPGP public key" in str(refused.value.errors)
    with pytest.raises(ConfigErrors) as refused:
        repository.served_fingerprint("http://127.0.0.1:9/conveyor.gpg")
    assert "start the repository host first" in str(refused.value.errors[0])


def test_units_get_the_hosts_paths_and_user(tmp_path):
    text = units.render_unit(
        "conveyor-worker@.service",
        {
            "/srv/conveyor-worker": "/data/workers",
            "/opt/conveyor-worker/venv": "/opt/w",
            "/var/cache/conveyor-build": "/data/cache",
        },
        "ci-build",
    )
    assert "User=ci-build\nGroup=ci-build\n" in text
    assert "ExecStart=/opt/w/bin/buildbot-worker start --nodaemon /data/workers/%i\n" in text
    assert "ReadWritePaths=/data/workers/%i /data/cache\n" in text
    assert "/srv/conveyor-worker" not in text and "conveyor-build" not in text


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")
def test_every_shipped_unit_passes_systemd_analyze_verify(tmp_path):
    venv = str(Path(sys.executable).parent.parent)  # this virtualenv has all three programs
    (tmp_path / "conveyor-chroots.timer").write_text(
        units.render_unit("conveyor-chroots.timer", {}, None)
    )
    for name in sorted(p.name for p in units.UNITS.glob("*.service")):
        text = units.render_unit(
            name,
            {
                "/opt/conveyor-worker/venv": venv,
                "/opt/conveyor/venv": venv,
                "/opt/conveyor/src": str(hosts.ROOT),
            },
            "root",
        )
        (tmp_path / name).write_text(text)
        for hardening in ("ProtectSystem=strict", "PrivateTmp=yes"):
            assert hardening in text, name
        # all but the build worker's: its builds map subordinate ids with set-uid newuidmap
        assert ("NoNewPrivileges=yes" in text) == (name != "conveyor-worker@.service"), name
        unit = tmp_path / name.replace("@.", "@test.")
        proc = subprocess.run(
            ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        assert name.split("@")[0].removesuffix(".service") not in proc.stderr, proc.stderr
    # the weekly refresh of the chroot bases starts its service
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "conveyor-chroots.timer")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and "conveyor-chroots" not in proc.stderr, proc.stderr


def test_a_unit_started_without_systemd_gets_its_environment_and_directory(tmp_path):
    (tmp_path / "env").write_text("FROM_FILE=file value\n")
    (tmp_path / "t@.service").write_text(f"""[Service]
Environment=FROM_UNIT=unit NAME=%i
EnvironmentFile={tmp_path / "env"}
WorkingDirectory={tmp_path}
ExecStartPre=/bin/sh -c "echo pre > pre.txt"
ExecStart=/bin/sh -c "echo $FROM_UNIT $NAME $FROM_FILE > out.txt"
""")
    units.start_unit(tmp_path / "t@.service", "x")
    deadline = time.monotonic() + 10
    while not (tmp_path / "out.txt").exists() or not (tmp_path / "out.txt").read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert (tmp_path / "out.txt").read_text() == "unit x file value\n"
    assert (tmp_path / "pre.txt").read_text() == "pre\n"


def test_a_unit_started_without_systemd_gets_no_new_privileges_when_it_says_so(tmp_path):
    """As systemd: NoNewPrivileges=yes sets no_new_privs, under which a set-uid newuidmap fails
    (so the build worker's unit, whose builds need it, does not say it)."""
    for says, expected in (("yes", "1"), ("no", "0")):
        (tmp_path / f"{says}.service").write_text(f"""[Service]
NoNewPrivileges={says}
WorkingDirectory={tmp_path}
ExecStart=/bin/sh -c "grep NoNewPrivs /proc/self/status > {says}.txt"
""")
        units.start_unit(tmp_path / f"{says}.service")
        out = tmp_path / f"{says}.txt"
        deadline = time.monotonic() + 10
        while not out.exists() or not out.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert out.read_text().split() == ["NoNewPrivs:", expected]


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_the_build_worker_owns_the_cache_directory_without_touching_what_builds_left_in_it(
    tmp_path,
):
    """A running install check reads its unpacked base (files of the build user's subordinate
    ids, setuid ones among them) as its overlay's lower layer: setting up a build worker
    beside it must not chown them, or the check sees /usr/bin/su changed under it."""
    cache = tmp_path / "cache"
    su = cache / "conveyor-install-check" / "base-bookworm-0.root" / "usr" / "bin" / "su"
    su.parent.mkdir(parents=True)
    su.write_text("")
    os.chown(su, 100000, 100042)
    os.chmod(su, 0o4755)
    hosts.own_cache(cache, "nobody")
    assert cache.stat().st_uid == pwd.getpwnam("nobody").pw_uid
    assert (su.stat().st_uid, su.stat().st_gid, stat.S_IMODE(su.stat().st_mode)) == (
        100000,
        100042,
        0o4755,
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="a mount namespace needs root")
def test_a_unit_started_without_systemd_gets_its_read_only_system_and_private_tmp():
    """As systemd: ProtectSystem=strict leaves only ReadWritePaths= writable (and /dev),
    PrivateTmp= gives an empty /tmp of its own, and User= runs the command."""
    base = Path(tempfile.mkdtemp(prefix="unit-test-", dir="/srv"))
    try:
        os.chmod(base, 0o755)
        (base / "rw").mkdir()
        os.chmod(base / "rw", 0o777)
        (base / "t.service").write_text(f"""[Service]
User=nobody
ProtectSystem=strict
PrivateTmp=yes
ReadWritePaths={base / "rw"} -/nonexistent-path
NoNewPrivileges=yes
WorkingDirectory={base}
ExecStart=/bin/sh -c "id -un > rw/who; touch /srv/conveyor-unit-test 2> rw/outside; \
ls -A /tmp > rw/tmp; grep NoNewPrivs /proc/self/status > rw/nnp; echo done > rw/end"
""")
        units.start_unit(base / "t.service")
        deadline = time.monotonic() + 10
        while not (base / "rw" / "end").exists():
            assert time.monotonic() < deadline, (base / "t.service.start.log").read_text()
            time.sleep(0.05)
        assert (base / "rw" / "who").read_text() == "nobody\n"
        assert "Read-only file system" in (base / "rw" / "outside").read_text()
        assert not Path("/srv/conveyor-unit-test").exists()
        assert (base / "rw" / "tmp").read_text() == ""
        assert (base / "rw" / "nnp").read_text().split() == ["NoNewPrivs:", "1"]
    finally:
        shutil.rmtree(base, ignore_errors=True)
