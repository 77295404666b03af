"""Three hosts on this one machine, each set up by its own `python -m ops` command: the master
(with a real PostgreSQL), a build worker and the repository host. Each has its own state
directory, its own OS user and its own loopback address; no state path is shared, and the test
proves it (settings, every process's working directory and open files, what each tree holds,
what each user may read). A signed push is built on the build worker, published and served by
the repository host, promoted into production, and installed with apt-get through a private
configuration.

Needs root (users, apt-get install into this machine, then purge).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conveyor import settings as settings_module
from conveyor.results import result_name
from ops import api
from ops import cli
from ops import demo
from ops import github
from ops import hosts
from ops import setup
from tests.integration.helpers import ROOT
from tests.integration.helpers import AptClient
from tests.integration.helpers import dpkg_turn
from tests.integration.helpers import installation_base
from tests.integration.helpers import installed_version
from tests.integration.helpers import purge
from tests.integration.postgres import postgres_server

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="creates users, installs a package: needs root"),
]

PACKAGE = "snowbird"
STAGING, PRODUCTION = "snowbird-staging", "snowbird"
HOSTS = ("master", "build", "repository")
# the build host's user is the machine's build user: its pip and install-check caches
# (/var/cache/conveyor-build, outside the three hosts' trees) are shared with the other tests
USERS = {"master": "conveyor-t-master", "build": setup.BUILD_USER, "repository": "conveyor-t-repo"}
# each host's own loopback address; the database and the GitHub stand-in (git daemon) have theirs
ADDRESS = {
    "master": "127.0.0.2",
    "build": "127.0.0.3",
    "repository": "127.0.0.4",
    "db": "127.0.0.5",
    "github": "127.0.0.6",
}
# read-only software every host has in the same place: the system, the worker's and the
# master's virtualenvs (/opt), this checkout's code
SOFTWARE = (Path("/usr"), Path("/opt"), Path("/etc"), Path("/dev"), Path("/proc"), ROOT)


def free_port(address: str) -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def ops(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "ops", *args], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, f"python -m ops {' '.join(args)}:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


@dataclasses.dataclass
class Three:
    base: Path
    roots: dict[str, Path]
    settings: settings_module.Settings  # the master's copy
    repository: settings_module.Settings  # the repository host's copy
    github: settings_module.Settings  # the GitHub stand-in: the local bare repository
    worker_unit: Path
    build_basedir: Path
    pg: object
    checkout: Path | None = None


def pipeline(roots: dict[str, Path], pg, ports: dict[str, int]) -> str:
    return f"""
[conveyor]
state_dir = "{roots["master"] / "var"}"
web_bind = "{ADDRESS["master"]}"
web_port = {ports["web"]}
worker_bind = "{ADDRESS["master"]}"
worker_port = {ports["worker"]}
db_url = "{pg.url}"
db_password_secret = "db-password"

[repository]
bind = "{ADDRESS["repository"]}"
port = {ports["repository"]}
home = "{roots["repository"] / "home"}"

[workers.build]
[workers.repository]

[projects.snowbird]
github = "sprintly/snowbird"
clone_url = "git://{ADDRESS["github"]}:{ports["git"]}/snowbird.git"
packages = ["snowbird"]
path = ["snowbird-development", "snowbird-staging", "snowbird"]
upload_to = "snowbird-staging"
coverage_threshold = 80

[mail]
smtp_host = "{ADDRESS["master"]}"
smtp_port = {ports["smtp"]}
"""


@contextlib.contextmanager
def git_daemon(directory: Path, port: int):
    """GitHub's stand-in for the hosts: the demo's bare repository over git://."""
    proc = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            f"--base-path={directory}",
            f"--listen={ADDRESS['github']}",
            f"--port={port}",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        from ops.services import wait_for_port

        wait_for_port(ADDRESS["github"], port)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def three():
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(installation_base("three"))
        os.chmod(base, 0o711)
        roots = {name: base / name for name in HOSTS}
        for name in HOSTS:
            setup.ensure_user(USERS[name], roots[name])
            roots[name].mkdir(mode=0o700)
            shutil.chown(roots[name], USERS[name], USERS[name])
        pg = stack.enter_context(postgres_server(base / "db", host=ADDRESS["db"]))
        ports = {
            "web": free_port(ADDRESS["master"]),
            "worker": free_port(ADDRESS["master"]),
            "smtp": free_port(ADDRESS["master"]),
            "repository": free_port(ADDRESS["repository"]),
            "git": free_port(ADDRESS["github"]),
        }
        text = pipeline(roots, pg, ports)
        for name in ("master", "repository"):  # the same file, one copy on each host
            (roots[name] / "pipeline.toml").write_text(text)
        settings = settings_module.load(roots["master"] / "pipeline.toml")
        repository = settings_module.load(roots["repository"] / "pipeline.toml")
        project = settings.projects[0]

        # GitHub: the demo app in a bare repository, served by git daemon
        gh = base / "github"
        gh_settings = dataclasses.replace(
            settings,
            state_dir=gh,
            projects=(dataclasses.replace(project, clone_url=str(gh / "snowbird.git")),),
        )
        checkout = demo.ensure_demo_repo(gh_settings, gh_settings.projects[0])
        stack.enter_context(git_daemon(gh, ports["git"]))

        # 1. the master's secrets (and its database's password), without starting it
        setup.write_secret(settings, "db-password", pg.password)
        master_args = [
            "master-host",
            "--settings",
            str(settings.file),
            "--user",
            USERS["master"],
            "--unit-dir",
            str(roots["master"] / "systemd"),
        ]
        ops(*master_args)
        master = f"{ADDRESS['master']}:{ports['worker']}"
        # the administrator copies each worker's password to its host
        passwords = {}
        for name, worker in (("build", "build"), ("repository", "repository")):
            passwords[name] = base / f"{name}-password"
            passwords[name].write_text(settings.read_secret(f"worker-{worker}-password") + "\n")
            os.chmod(passwords[name], 0o600)
        # 2. the repository host
        stack.callback(ops, "repository-host", "--settings", str(repository.file), "--stop")
        ops(
            "repository-host",
            "--settings",
            str(repository.file),
            "--master",
            master,
            "--password-file",
            str(passwords["repository"]),
            "--user",
            USERS["repository"],
            "--unit-dir",
            str(roots["repository"] / "systemd"),
            "--bind",
            ADDRESS["repository"],
            "--start",
            "--no-packages",
        )
        # 3. a build worker
        worker_root = roots["build"] / "workers"
        build_args = [
            "build-worker",
            "--name",
            "build",
            "--master",
            master,
            "--root",
            str(worker_root),
            "--user",
            USERS["build"],
        ]
        stack.callback(ops, *build_args, "--stop")
        ops(
            *build_args,
            "--password-file",
            str(passwords["build"]),
            "--unit-dir",
            str(roots["build"] / "systemd"),
            "--bind",
            ADDRESS["build"],
            "--start",
            "--no-packages",
        )
        for password in passwords.values():
            password.unlink()
        # 4. the master
        stack.callback(ops, *master_args, "--stop")
        ops(*master_args, "--start")
        yield Three(
            base=base,
            roots=roots,
            settings=settings,
            repository=repository,
            github=gh_settings,
            checkout=checkout,
            worker_unit=roots["build"] / "systemd" / "conveyor-worker@.service",
            build_basedir=worker_root / "build",
            pg=pg,
        )


def test_the_build_worker_command_wrote_a_unit_systemd_accepts_and_a_worker_that_connects(three):
    unit = three.worker_unit
    instance = unit.with_name("conveyor-worker@build.service")  # the template's instance
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(instance)],
        capture_output=True,
        text=True,
        cwd=unit.parent,
    )
    assert proc.returncode == 0, proc.stderr
    assert unit.name not in proc.stderr and "conveyor-worker@build" not in proc.stderr, proc.stderr
    text = unit.read_text()
    # no NoNewPrivileges: the build's namespaces need set-uid newuidmap (start_unit honours it)
    assert "NoNewPrivileges=yes" not in text
    for line in (
        f"User={USERS['build']}",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        f"ReadWritePaths={three.build_basedir.parent}/%i",
    ):
        assert line in text
    for name in ("conveyor-repository-web.service", "conveyor-repository-worker.service"):
        path = three.roots["repository"] / "systemd" / name
        proc = subprocess.run(
            ["systemd-analyze", "verify", str(path)], capture_output=True, text=True
        )
        assert proc.returncode == 0 and name not in proc.stderr, proc.stderr
    master_unit = three.roots["master"] / "systemd" / "conveyor-master.service"
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(master_unit)], capture_output=True, text=True
    )
    assert proc.returncode == 0 and master_unit.name not in proc.stderr, proc.stderr
    # both workers connect to the master (they retry every few seconds until it is up)
    deadline = time.monotonic() + 60
    while True:
        workers = {w["name"]: w for w in api.api(three.settings, "workers")["workers"]}
        missing = [name for name in ("build", "repository") if not workers[name]["connected_to"]]
        if not missing:
            break
        assert time.monotonic() < deadline, f"not connected: {missing}\n" + "".join(
            log.read_text()[-2000:]
            for log in (
                three.build_basedir / "twistd.log",
                three.repository.repository.home / "worker" / "twistd.log",
            )
            if log.exists()
        )
        time.sleep(1)
    # each from its own host's address
    port = three.settings.worker_port
    lines = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( dport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    sources = sorted(line.split()[-2].rpartition(":")[0] for line in lines)
    assert sources == [ADDRESS["build"], ADDRESS["repository"]], lines


def test_a_push_is_built_published_served_promoted_and_installed_across_hosts(three):
    settings = three.settings
    project = settings.projects[0]
    build = github.push_and_wait(settings, project, three.checkout)
    assert result_name(build["results"]) == "SUCCESS", failure(settings, build)
    version = build["properties"]["package_version"][0]
    assert build["properties"]["workername"][0] == "build"

    # served by the repository host, on its own address, signed with its key
    url = settings.repository.url
    assert url == f"http://{ADDRESS['repository']}:{settings.repository.port}/"
    index = http_get(f"{url}dists/{STAGING}/main/binary-amd64/Packages")
    assert f"Version: {version}\n" in index
    assert http_get(f"{url}dists/{STAGING}/InRelease").startswith(
        "-----BEGIN PGP SIGNED MESSAGE-----"
    )

    # promoted into production with the CLI, which reads status and history over HTTP
    args = ["--settings", str(settings.file)]
    assert cli.main(args + ["promote", PACKAGE, STAGING, PRODUCTION]) == cli.OK
    history = http_get(f"{url}history/{PRODUCTION}.jsonl")
    assert f'"version": "{version}"' in history and '"action": "promote"' in history

    # the master's database is the PostgreSQL server's
    assert int(three.pg.psql("SELECT count(*) FROM builds")) >= 2  # CI, publish, promote

    apt = AptClient(three.base / "apt-client", url, PRODUCTION)
    apt.update()
    assert apt.candidate(PACKAGE) == version
    # this machine's dpkg is shared with the other modules that install the package: in turns
    with dpkg_turn(True):
        purge(PACKAGE)
        try:
            apt.install(PACKAGE, version)
            assert installed_version(PACKAGE) == version
        finally:
            purge(PACKAGE)


def test_the_cli_reads_status_and_history_from_the_repository_host(three, capsys):
    args = ["--settings", str(three.settings.file)]
    assert cli.main(args + ["history", PRODUCTION]) == cli.OK
    out = capsys.readouterr().out
    assert "promote" in out and "<- published" in out


def test_no_path_is_shared_between_the_three_hosts(three):
    roots = three.roots
    m, r = three.settings, three.repository.repository
    owned = {
        "master": [m.state_dir, m.master_dir, m.secrets_dir, m.artifacts_dir, m.file],
        "repository": [
            r.home,
            r.www_root,
            r.aptly_root,
            r.aptly_config,
            r.gnupg_home,
            r.signing_key_file,
            three.repository.history_dir,
            three.repository.file,
        ],
        "build": [three.build_basedir],
    }
    for host, paths in owned.items():
        for path in paths:
            assert under(path, roots[host]), (host, path)
    # no root lies inside another
    for a in HOSTS:
        for b in HOSTS:
            assert a == b or not under(roots[a], roots[b])

    # what each tree holds: the master no repository state, the repository no master state,
    # the build worker neither
    names = {host: {p.name for p in roots[host].rglob("*")} for host in HOSTS}
    for host in ("master", "build"):
        assert not names[host] & {
            "aptly.conf",
            "pubring.kbx",
            "private-keys-v1.d",
            "InRelease",
            "signing-key",
        }, host
    for host in ("repository", "build"):
        assert not names[host] & {"master.cfg", "state.sqlite", "secrets", "artifacts"}, host
    assert "state.sqlite" not in names["master"]  # its database is PostgreSQL's
    assert "InRelease" in names["repository"] and "buildbot.tac" in names["master"]

    # every process of a host runs as its user, with its cwd and open files on its own tree
    # (or in read-only software)
    pids = {
        "master": [m.master_dir / "twistd.pid"],
        "repository": hosts.repository_pidfiles(three.repository),
        "build": [three.build_basedir / "twistd.pid"],
    }
    for host, pidfiles in pids.items():
        for pidfile in pidfiles:
            pid = int(pidfile.read_text().strip())
            proc = Path(f"/proc/{pid}")
            assert proc.stat().st_uid == pwd.getpwnam(USERS[host]).pw_uid, (host, pidfile)
            files = [Path(os.readlink(proc / "cwd"))] + [
                Path(target)
                for fd in (proc / "fd").iterdir()
                if (target := os.readlink(fd)).startswith("/")
            ]
            for path in files:
                assert under(path, roots[host]) or any(under(path, s) for s in SOFTWARE), (
                    host,
                    pidfile,
                    path,
                )

    # and no host's user may read another host's tree
    for host in HOSTS:
        for other in HOSTS:
            if other != host:
                denied = subprocess.run(
                    ["runuser", "-u", USERS[host], "--", "ls", str(roots[other])],
                    capture_output=True,
                )
                assert denied.returncode != 0, (host, other)


def under(path: Path, root: Path) -> bool:
    return Path(path).resolve().is_relative_to(Path(root).resolve())


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode()


def failure(settings, build: dict) -> str:
    """What a failed build says: its failing steps and the end of their logs."""
    text = [api.describe(build)]
    for step in build.get("steps") or []:
        if step.get("results") not in (0, 3, None):
            for log in api.api(settings, f"steps/{step['stepid']}/logs")["logs"]:
                content = api.api(settings, f"logs/{log['logid']}/contents")["logchunks"]
                text.append("".join(c["content"] for c in content)[-3000:])
    return "\n".join(text)
