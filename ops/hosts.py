"""One machine of an installation on several hosts, each set up by one command (as root):

    python -m ops repository-host --master HOST:PORT --password-file FILE [--user U] [--start]
        aptly, the signing key and the published tree below `[repository] home`, the web server
        that serves them (twistd web) and the repository's worker, as the user U
    python -m ops build-worker --name NAME --master HOST:PORT --password-file FILE [--start]
                               [--release R ...]
        a build worker: system packages, its user, its buildbot-worker, its systemd unit, the
        chroot bases of its own release and of each --release (the projects' targets)
    python -m ops master-host [--user U] [--start]
        the master: secrets, web users, its directory, its service virtualenv and unit

Each writes systemd units (ops/systemd/, its paths and user filled in) into --unit-dir
(/etc/systemd/system) and, with systemd running, enables and starts them. Without systemd as
PID 1 (a container, the tests), `--start` runs each unit's ExecStart as its User=, with its
Environment= and EnvironmentFile=, the way systemd would; `--stop` stops what that started.
Nothing here reads another host's files: the repository host reads the settings (its paths
below `home`, the distributions) and its worker's password; a build worker needs no settings.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

from conveyor.settings import Settings
from ops import chroots
from ops import setup
from ops.setup import ROOT
from ops.setup import run
from ops.setup import say
from ops.units import install_units
from ops.units import render_unit
from ops.units import running
from ops.units import start_unit
from ops.units import stop_pids
from ops.units import systemd_running

COMMANDS = ("repository-host", "build-worker", "master-host")
# the master's own virtualenv (the system's Python, requirements/master.txt): a service user cannot
# run a virtualenv whose Python lives in someone's home
MASTER_VENV = Path("/opt/conveyor/venv")
SYSTEM_PATH = setup.SYSTEM_PATH


# --- what every host needs ---------------------------------------------------------------------


def system_packages(listing: Path) -> None:
    """apt-get install what the list names and dpkg does not have yet."""
    run([str(ROOT / "bin" / "install-system-packages"), str(listing)])


def chown_tree(path: Path, user: str) -> None:
    run(["chown", "-R", f"{user}:{user}", str(path)])


def own_cache(cache: Path, user: str) -> None:
    """The cache itself, never what is in it: a running install check's overlay reads the bases
    unpacked there (setuid files); a `chown -R` cleared their bits ("/usr/bin/chage modified")."""
    cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.chown(cache, user, pwd.getpwnam(user).pw_gid)


def copy_private(source: Path, target: Path, user: str | None) -> None:
    """A secret's own copy on this host, readable by the service user only (0400)."""
    target.unlink(missing_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "w") as fh:
        fh.write(source.read_text().strip() + "\n")
    if user:
        shutil.chown(target, user, user)


def write_env_file(path: Path, env: dict[str, str]) -> None:
    path.write_text("".join(f"{key}={value}\n" for key, value in env.items()))


def ensure_master_venv() -> Path:
    """The master host's virtualenv of the system's Python with requirements/master.txt, the
    runtime only, hash-checked (made once, again when the file changes)."""
    requirements = ROOT / "requirements" / "master.txt"
    return setup.pinned_venv(
        MASTER_VENV,
        ["-r", str(requirements)],
        hashlib.sha256(requirements.read_bytes()).hexdigest(),
        "master-venv",
        "requirements/master.txt for the master",
    )


# --- the repository host -----------------------------------------------------------------------


def repository_paths(settings: Settings) -> dict[str, Path]:
    repo = settings.repository
    home = repo.home or settings.state_dir
    return {
        "home": home,
        "worker": home / "worker",
        "run": home / "run",
        "env": home / "worker.env",
        "password": home / "worker-password",
    }


def repository_units(settings: Settings, user: str | None) -> dict[str, str]:
    repo = settings.repository
    paths = repository_paths(settings)
    venv = str(setup.WORKER_VENV)
    swap = {
        "/srv/conveyor-repository/www": str(repo.www_root),
        "/srv/conveyor-repository": str(paths["home"]),
        "/opt/conveyor-worker/venv": venv,
    }
    web = (
        f"{venv}/bin/twistd --nodaemon --pidfile={paths['run'] / 'http.pid'} "
        f"--logfile={paths['run'] / 'http.log'} web "
        f"--listen=tcp:{repo.port}:interface={repo.bind} --path={repo.www_root}"
    )
    return {
        "conveyor-repository-web.service": render_unit(
            "conveyor-repository-web.service", swap, user, web
        ),
        "conveyor-repository-worker.service": render_unit(
            "conveyor-repository-worker.service", swap, user
        ),
    }


def repository_host(
    settings: Settings,
    master: str,
    password_file: Path,
    user: str | None,
    unit_dir: Path,
    start: bool,
    packages: bool = True,
    bind: str | None = None,
) -> None:
    """Everything the repository's machine holds and serves; see the module's docstring."""
    repo = settings.repository
    paths = repository_paths(settings)
    if packages:
        system_packages(ROOT / "worker" / "system-packages.txt")
    home = paths["home"]
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o711)  # the web server's user may pass to www/; nothing else is listed
    if user:
        setup.ensure_user(user, home)
    setup.ensure_worker_venv()  # the worker's, and conveyor-attest's securesystemslib
    fingerprint = setup.ensure_signing_key(settings)
    repo.aptly_root.mkdir(parents=True, exist_ok=True)
    setup.ensure_repository(settings, fingerprint)
    # what gpg started while making the key and publishing: ended, the service user signs
    subprocess.run(
        ["gpgconf", "--kill", "gpg-agent"], env=setup.gpg_env(settings), capture_output=True
    )
    worker = paths["worker"]
    worker.mkdir(exist_ok=True)
    shutil.copyfile(ROOT / "worker" / "buildbot.tac", worker / "buildbot.tac")
    bindir = setup.install_worker_tools(worker, setup.WORKER_VENV)  # conveyor-attest
    paths["run"].mkdir(exist_ok=True)
    copy_private(password_file, paths["password"], None)
    write_env_file(
        paths["env"],
        {
            "CONVEYOR_WORKER_NAME": repo.worker,
            "CONVEYOR_MASTER": master,
            "CONVEYOR_WORKER_PASSWORD_FILE": str(paths["password"]),
            "HOME": str(worker),
            "PATH": f"{bindir}:{SYSTEM_PATH}",
            **({"CONVEYOR_WORKER_BIND": bind} if bind else {}),
        },
    )
    for path in (repo.aptly_root, repo.gnupg_home, worker, paths["env"]):
        os.chmod(path, 0o700 if path.is_dir() else 0o600)
    if user:
        for path in {
            home,
            repo.www_root,
            repo.aptly_root,
            repo.aptly_config.parent,
            repo.gnupg_home,
        }:  # below home, unless the settings put them elsewhere
            chown_tree(path, user)
    units = repository_units(settings, user)
    install_units(unit_dir, units, list(units))
    say(f"repository host ready in {home}: key {fingerprint}, served at {repo.url}")
    if start and not systemd_running():
        if not running(paths["run"] / "http.pid"):
            start_unit(unit_dir / "conveyor-repository-web.service")  # writes run/http.pid
        from ops.services import wait_for_port

        wait_for_port(repo.bind, repo.port)
        if not running(paths["worker"] / "twistd.pid"):
            start_unit(
                unit_dir / "conveyor-repository-worker.service",
                pidfile=paths["worker"] / "twistd.pid",
            )
        say(f"started the web server ({repo.url}) and the worker {repo.worker} (master {master})")


def repository_pidfiles(settings: Settings) -> list[Path]:
    paths = repository_paths(settings)
    return [paths["worker"] / "twistd.pid", paths["run"] / "http.pid"]


# --- a build worker ----------------------------------------------------------------------------


def build_worker_paths(root: Path, name: str) -> dict[str, Path]:
    basedir = root / name
    return {
        "basedir": basedir,
        "env": basedir / "worker.env",
        "password": basedir / "worker-password",
        "pid": basedir / "twistd.pid",
    }


def build_worker(
    name: str,
    master: str,
    password_file: Path,
    user: str,
    root: Path,
    cache: Path,
    unit_dir: Path,
    start: bool,
    packages: bool = True,
    bind: str | None = None,
    releases: tuple[str, ...] = (),
) -> Path:
    """A build worker from a clean Debian machine; returns the unit file written."""
    if packages:
        system_packages(ROOT / "worker" / "system-packages.txt")
    paths = build_worker_paths(root, name)
    basedir = paths["basedir"]
    setup.ensure_user(user, basedir)
    # the install check's user namespace maps the user's subordinate ids (/etc/subuid)
    setup.ensure_subordinate_ids(user)
    venv = setup.ensure_worker_venv()
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    # buildbot-worker's own layout (info/); its buildbot.tac is then Conveyor's, which takes the
    # name, the master and the password file from the unit's environment: no password in it
    run(
        [
            str(venv / "bin" / "buildbot-worker"),
            "create-worker",
            "--quiet",
            "--force",
            "--umask=0o22",
            str(basedir),
            master,
            name,
            "see-worker-password",
        ]
    )
    shutil.copyfile(ROOT / "worker" / "buildbot.tac", basedir / "buildbot.tac")
    bindir = setup.install_worker_tools(basedir, venv)
    chroots_dir = chroots.chroots_dir(root)
    # the clean builds' bases: this machine's release, and the projects' other targets
    for release in dict.fromkeys((chroots.machine_release(), *releases)):
        chroots.ensure_base(chroots_dir, release)
    copy_private(password_file, paths["password"], None)
    write_env_file(
        paths["env"],
        {
            "CONVEYOR_MASTER": master,
            "CONVEYOR_WORKER_PASSWORD_FILE": str(paths["password"]),
            # what the install check's namespace hides: the worker's password
            "CONVEYOR_SANDBOX_HIDE": str(paths["password"]),
            # what a build's sandbox shows of the worker: its tools (uv), read-only
            "CONVEYOR_SANDBOX_ALLOW": str(bindir),
            # the clean builds' bases, made here by the trusted side
            # (worker/bin/conveyor-chroot-build)
            "CONVEYOR_CHROOTS": str(chroots_dir),
            "HOME": str(basedir),
            "XDG_CACHE_HOME": str(cache),
            "PATH": f"{bindir}:{SYSTEM_PATH}",
            **({"CONVEYOR_WORKER_BIND": bind} if bind else {}),
        },
    )
    chown_tree(basedir, user)
    own_cache(cache, user)
    os.chmod(basedir, 0o700)
    unit = render_unit(
        "conveyor-worker@.service",
        {
            "/srv/conveyor-worker": str(root),
            "/opt/conveyor-worker/venv": str(venv),
            "/var/cache/conveyor-build": str(cache),
        },
        user,
    )
    # the chroot bases made anew weekly, by root (the trusted side)
    refresh = {
        "/opt/conveyor/src": str(ROOT),
        "/opt/conveyor/venv": sys.prefix,
        "/var/cache/conveyor/chroots": str(chroots_dir),
    }
    install_units(
        unit_dir,
        {
            "conveyor-worker@.service": unit,
            "conveyor-chroots.service": render_unit("conveyor-chroots.service", refresh, None),
            "conveyor-chroots.timer": render_unit("conveyor-chroots.timer", {}, None),
        },
        [f"conveyor-worker@{name}", "conveyor-chroots.timer"],
    )
    say(f"build worker {name} ready in {basedir} (user {user}, master {master})")
    if start and not systemd_running() and not running(paths["pid"]):
        start_unit(unit_dir / "conveyor-worker@.service", name, pidfile=paths["pid"])
        say(f"started the build worker {name}")
    return unit_dir / "conveyor-worker@.service"


# --- the master host ---------------------------------------------------------------------------


def master_unit(settings: Settings, user: str | None) -> str:
    venv = MASTER_VENV
    return render_unit(
        "conveyor-master.service",
        {
            "/srv/conveyor/pipeline.toml": str(settings.file),
            "/srv/conveyor/var/master": str(settings.master_dir),
            "/srv/conveyor/var": str(settings.state_dir),
            "/opt/conveyor/src": str(ROOT),
            "/opt/conveyor/venv": str(venv),
        },
        user,
    )


def master_host(settings: Settings, user: str | None, unit_dir: Path, start: bool) -> None:
    """The master's machine: secrets, web users, the master's directory (and database), its
    virtualenv and unit. Its workers and the repository are set up on their own hosts."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    settings.artifacts_dir.mkdir(parents=True, exist_ok=True)
    setup.ensure_secrets(settings)
    setup.ensure_users(settings)
    # its database's tables: made (or upgraded) by the unit's ExecStartPre, `buildbot
    # upgrade-master`, through master.cfg (which reads the database's password, and the
    # repository's key once the repository host serves it)
    setup.ensure_master(settings)
    if user:
        setup.ensure_user(user, settings.state_dir)
        ensure_master_venv()
        chown_tree(settings.state_dir, user)
        shutil.chown(settings.file, user, user)
    for path in (settings.state_dir, settings.secrets_dir, settings.master_dir):
        os.chmod(path, 0o700)
    install_units(
        unit_dir,
        {"conveyor-master.service": master_unit(settings, user)},
        ["conveyor-master.service"],
    )
    if start and not systemd_running():
        if not running(settings.master_dir / "twistd.pid"):
            start_unit(
                unit_dir / "conveyor-master.service", pidfile=settings.master_dir / "twistd.pid"
            )
        from ops.services import wait_for_port

        wait_for_port(settings.web_bind, settings.web_port, timeout=60)
        say(f"master started: {settings.web_url}")


# --- python -m ops <command> -------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=COMMANDS)
    setup.settings_argument(parser)
    parser.add_argument("--name", help="build-worker: the worker's name in the settings")
    parser.add_argument("--master", help="the master's workers address, HOST:PORT")
    parser.add_argument(
        "--password-file",
        type=Path,
        help="the worker's password (a copy of the master's secrets/worker-<name>-password)",
    )
    parser.add_argument(
        "--user", help="the service user (default: conveyor-build, conveyor-repository, conveyor)"
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=Path("/srv/conveyor-worker"),
        help="build-worker: where workers live (ROOT/NAME)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=setup.BUILD_CACHE,
        help="build-worker: pip's cache for the builds",
    )
    parser.add_argument(
        "--bind",
        help="the worker's own address to connect to the master from "
        "(default: the system's choice)",
    )
    parser.add_argument("--unit-dir", type=Path, default=Path("/etc/systemd/system"))
    parser.add_argument(
        "--start", action="store_true", help="without systemd: run the units' commands now"
    )
    parser.add_argument("--stop", action="store_true", help="stop what --start started")
    parser.add_argument(
        "--no-packages", action="store_true", help="do not install the system packages"
    )
    parser.add_argument(
        "--release",
        action="append",
        default=[],
        help="build-worker: a target release to make a chroot base of, besides the machine's "
        "own (one --release each: the projects' targets)",
    )
    args = parser.parse_args(argv)
    if args.command == "build-worker":
        if not (args.name and args.master):
            parser.error("build-worker needs --name and --master")
        paths = build_worker_paths(args.root, args.name)
        if args.stop:
            stop_pids([paths["pid"]])
            return 0
        if not args.password_file:
            parser.error("build-worker needs --password-file")
        build_worker(
            args.name,
            args.master,
            args.password_file,
            args.user or setup.BUILD_USER,
            args.root,
            args.cache,
            args.unit_dir,
            args.start,
            not args.no_packages,
            args.bind,
            tuple(args.release),
        )
        return 0
    settings = setup.load_settings(args.settings)
    if settings is None:
        return 2
    if args.command == "repository-host":
        if args.stop:
            stop_pids(repository_pidfiles(settings))
            gnupg = settings.repository.gnupg_home
            if gnupg.exists():  # the agent that signed, as the user it ran as
                owner = pwd.getpwuid(gnupg.stat().st_uid).pw_name
                subprocess.run(
                    [
                        "runuser",
                        "-u",
                        owner,
                        "--",
                        "env",
                        f"GNUPGHOME={gnupg}",
                        "gpgconf",
                        "--kill",
                        "gpg-agent",
                    ],
                    capture_output=True,
                )
            return 0
        if not (args.master and args.password_file):
            parser.error("repository-host needs --master and --password-file")
        repository_host(
            settings,
            args.master,
            args.password_file,
            args.user or "conveyor-repository",
            args.unit_dir,
            args.start,
            not args.no_packages,
            args.bind,
        )
        return 0
    if args.stop:
        stop_pids([settings.master_dir / "twistd.pid"])
        return 0
    master_host(settings, args.user or "conveyor", args.unit_dir, args.start)
    return 0
