"""Start and stop an installation's services: the repository's web server, master, workers.

Each service leaves a pid file; `stop()` ends exactly those processes (by pid, never by name).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from conveyor.settings import Settings
from ops import chroots
from ops import setup
from ops.setup import ROOT
from ops.setup import gpg_env
from ops.setup import run
from ops.setup import say
from ops.setup import venv_bin
from ops.setup import worker_dir


def stopped_by_signals() -> None:
    """From now on SIGTERM and SIGHUP end this process as Ctrl-C does, by an exception, so that
    its `finally:` stops the services it started (Python's default ends it on the spot: a
    killed bench left its master and workers running, their directory deleted)."""
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, _exit_by_exception)


def _exit_by_exception(number: int, _frame) -> None:
    raise SystemExit(128 + number)


def run_dir(settings: Settings) -> Path:
    path = settings.state_dir / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def pid_files(settings: Settings) -> dict[str, Path]:
    """Every service's pid file, in the order they are stopped (workers first)."""
    files = {
        f"worker {w.name}": worker_dir(settings, w.name) / "twistd.pid" for w in settings.workers
    }
    files["master"] = settings.master_dir / "twistd.pid"
    files["repository web server"] = run_dir(settings) / "http.pid"
    files["mail sink"] = run_dir(settings) / "mailsink.pid"  # last: the master's last mails
    return files


def read_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def wait_for_port(host: str, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"nothing listens on {host}:{port} after {timeout:.0f} s"
                ) from None
            time.sleep(0.2)


def master_env(settings: Settings) -> dict:
    return setup.service_env(CONVEYOR_SETTINGS=str(settings.file))


def start(settings: Settings) -> None:
    start_web_server(settings)
    start_mail_sink(settings)
    start_master(settings)
    for worker in settings.workers:
        start_worker(settings, worker.name)


def start_web_server(settings: Settings) -> None:
    repo = settings.repository
    pidfile = run_dir(settings) / "http.pid"
    if read_pid(pidfile):
        return
    # Twisted's web server (twistd web): a static tree, a daemon that writes its own pid file
    run(
        [
            venv_bin("twistd"),
            f"--pidfile={pidfile}",
            f"--logfile={run_dir(settings) / 'http.log'}",
            "web",
            f"--listen=tcp:{repo.port}:interface={repo.bind}",
            f"--path={repo.www_root}",
        ],
        stdin=subprocess.DEVNULL,
    )
    wait_for_port(repo.bind, repo.port)
    say(f"apt repository served at {repo.url}")


def start_master(settings: Settings) -> None:
    if read_pid(settings.master_dir / "twistd.pid"):
        # a running master picks up changed settings and modules without a restart
        run([venv_bin("buildbot"), "reconfig", str(settings.master_dir)], env=master_env(settings))
        return
    if setup.master_database_missing(settings):
        upgrade_master(settings, "the master's database is missing")
    proc = _buildbot_start(settings)
    if proc.returncode != 0 and "upgrade-master" in _master_log_tail(settings):
        # an empty or older database (e.g. a new PostgreSQL database): make it, start again
        upgrade_master(settings, "the master's database is empty or older than this Buildbot")
        proc = _buildbot_start(settings)
    if proc.returncode != 0:
        raise RuntimeError(
            f"the master did not start:\n{proc.stdout}{proc.stderr}\n{_master_log_tail(settings)}"
        )
    wait_for_port(settings.web_bind, settings.web_port)
    say(f"web UI at {settings.web_url}")


def _buildbot_start(settings: Settings) -> subprocess.CompletedProcess:
    return subprocess.run(
        [venv_bin("buildbot"), "start", str(settings.master_dir)],
        env=master_env(settings),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def _master_log_tail(settings: Settings) -> str:
    log = settings.master_dir / "twistd.log"
    return log.read_text(errors="replace")[-4000:] if log.exists() else ""


def upgrade_master(settings: Settings, why: str) -> None:
    """`buildbot upgrade-master`: a fresh (or upgraded) database for the master. The builds'
    history starts again; the repository and its versions are kept."""
    run(
        [venv_bin("buildbot"), "upgrade-master", str(settings.master_dir)],
        env=master_env(settings),
        stdin=subprocess.DEVNULL,
    )
    say(
        f"{why}: made a fresh one with `buildbot upgrade-master` (the build history starts "
        "again; the repository, its versions and its history are kept)"
    )


def start_worker(settings: Settings, name: str) -> None:
    basedir = worker_dir(settings, name)
    if read_pid(basedir / "twistd.pid"):
        return
    worker = next(w for w in settings.workers if w.name == name)
    master_host = "127.0.0.1" if settings.worker_bind in ("0.0.0.0", "") else settings.worker_bind
    env = {
        "CONVEYOR_WORKER_NAME": name,
        "CONVEYOR_MASTER": f"{master_host}:{settings.worker_port}",
        "CONVEYOR_WORKER_PASSWORD_FILE": str(settings.secrets_dir / worker.password_secret),
        # conveyor-sandbox (worker/bin) on the PATH of the worker's commands
        "PATH": f"{basedir / 'bin'}:{setup.SYSTEM_PATH}",
    }
    argv = [venv_bin("buildbot-worker"), "start", str(basedir)]
    if name in setup.build_workers(settings):
        password = setup.worker_password_copy(settings, name)
        env.update(
            {
                "CONVEYOR_WORKER_PASSWORD_FILE": str(password),
                # what the install check's namespace hides, even from a user that could read it
                "CONVEYOR_SANDBOX_HIDE": ":".join(
                    str(p) for p in [*setup.protected_paths(settings), password]
                ),
                # what a build's sandbox shows of the worker: its tools (uv), read-only
                "CONVEYOR_SANDBOX_ALLOW": str(basedir / "bin"),
                # the clean builds' bases (worker/bin/conveyor-chroot-build)
                "CONVEYOR_CHROOTS": str(chroots.chroots_dir(settings.state_dir)),
            }
        )
        own_user = setup.separate_build_user()
        blocked = setup.build_user_blocked(settings, name) if own_user else None
        if own_user and not blocked:
            env.update(
                {
                    "HOME": str(basedir),  # git's safe.directory (basedir/.gitconfig)
                    # the install check's base (a build's sandbox has a cache of its own)
                    "XDG_CACHE_HOME": str(setup.BUILD_CACHE),
                }
            )
            # its own buildbot-worker, and a fresh environment: nothing of the caller's (root's)
            # but what is set here
            argv = [
                "runuser",
                "-u",
                setup.BUILD_USER,
                "--",
                "env",
                "-i",
                *(f"{k}={v}" for k, v in setup.service_env(**env).items()),
                str(setup.WORKER_VENV / "bin" / "buildbot-worker"),
                "start",
                str(basedir),
            ]
        else:
            if blocked:
                say(f"warning: the build worker cannot run as {setup.BUILD_USER}: {blocked}")
            warn_shared_user(name)
    run(argv, env=setup.service_env(**env), stdin=subprocess.DEVNULL, cwd=str(ROOT))
    say(f"worker {name} started")


_warned: set[str] = set()


def warn_shared_user(name: str) -> None:
    """Once: without root, the build worker runs as the caller, like the master."""
    if name in _warned:
        return
    _warned.add(name)
    say(
        f"warning: the build worker {name} runs as {os.environ.get('USER') or os.getuid()}, the "
        "same user as the master and the repository worker. Code under test (tests, setup.py, "
        "debian/rules) runs in the sandbox, which hides the secrets, the signing key and "
        "aptly's state, but the user could read them. Run `make run` as root (or with sudo) "
        f"to give the build worker its own user, {setup.BUILD_USER}."
    )


def stop(settings: Settings) -> list[str]:
    """Stop every service this installation started; return what was stopped."""
    stopped = []
    for what, pidfile in pid_files(settings).items():
        pid = read_pid(pidfile)
        if pid is None:
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while read_pid(pidfile) == pid and alive(pid):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.2)
        pidfile.unlink(missing_ok=True)
        stopped.append(what)
    # gpg started an agent for the repository's key home while signing: end it too
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=gpg_env(settings), capture_output=True)
    return stopped


def alive(pid: int) -> bool:
    try:
        # reap it if it is our child (the web server), then look
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# --- the mail sink (ops/mailsink.py): where the demo's and the tests' mail goes ----------------


def mail_dir(settings: Settings) -> Path:
    return settings.state_dir / "mail"


def wants_mail_sink(settings: Settings) -> bool:
    """Mail to a non-privileged port on this machine, without TLS, is taken for a development
    set-up (the demo's 127.0.0.1:8025): a sink there keeps each message in var/mail/. A real
    relay (port 25, 465, 587, another host, TLS) is never shadowed."""
    mail = settings.mail
    return (
        mail.smtp_host in ("127.0.0.1", "localhost", "::1")
        and mail.smtp_port >= 1024
        and not mail.use_tls
        and not mail.starttls
    )


def start_mail_sink(settings: Settings) -> None:
    if not wants_mail_sink(settings):
        return
    pidfile = run_dir(settings) / "mailsink.pid"
    if read_pid(pidfile):
        return
    host, port = settings.mail.smtp_host, settings.mail.smtp_port
    try:
        with socket.create_connection((host, port), timeout=1):
            say(f"something already listens on {host}:{port}: mail goes there, no sink started")
            return
    except OSError:
        pass
    log = open(run_dir(settings) / "mailsink.log", "ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ops.mailsink",
            "--host",
            host,
            "--port",
            str(port),
            "--dir",
            str(mail_dir(settings)),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        cwd=str(ROOT),
    )
    pidfile.write_text(f"{proc.pid}\n")
    wait_for_port(host, port)
    say(f"mail sink on {host}:{port}: every mail Conveyor sends is kept in {mail_dir(settings)}/")
