"""Make an installation's state from its settings: secrets, signing key, repository, basedirs.

Every function is idempotent: what exists is reused, what is missing is made. `make run` and the
integration tests call `prepare()`; nothing here runs a service (see ops.services).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
from datetime import UTC
from datetime import datetime
from pathlib import Path

from conveyor import hostsetup
from conveyor import release
from conveyor import settings as settings_module
from conveyor import targets
from conveyor.settings import WEBHOOK_SECRET
from conveyor.settings import Settings
from ops import chroots
from ops.api import CLI_CREDENTIALS

ROOT = Path(__file__).resolve().parent.parent


def say(message: str) -> None:
    print(f"conveyor: {message}", flush=True)


def run(argv: list[str], env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run a command (argv, no shell); on failure raise with its output."""
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
        )
    return proc


# systemd's default PATH for services (sbin too: e.g. chroot for the install check's piuparts)
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# what a service takes of the environment it is started from: a proxy, for the install step
PASSED_ON = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")


def service_env(**extra: str) -> dict[str, str]:
    """The environment a service (the master, a worker) starts with: the system's PATH, a UTF-8
    locale, the caller's HOME, a proxy if one is set, and `extra` (what the service needs). Never
    the rest of the caller's shell: a token exported there would reach every command a worker
    runs, and through them the builds' logs. systemd starts the hosts' units the same way
    (ops/hosts.py)."""
    env = {
        "PATH": SYSTEM_PATH,
        "LANG": "C.UTF-8",
        "HOME": os.environ.get("HOME") or os.path.expanduser("~"),
    }
    env.update({name: os.environ[name] for name in PASSED_ON if name in os.environ})
    env.update(extra)
    return env


def settings_argument(parser) -> None:
    """--settings: the pipeline.toml to use (default: $CONVEYOR_SETTINGS, else the checkout's)."""
    parser.add_argument(
        "--settings", default=os.environ.get("CONVEYOR_SETTINGS", str(ROOT / "pipeline.toml"))
    )


def load_settings(path: str) -> Settings | None:
    """The settings, or None after saying on stderr what is wrong with the file."""
    try:
        return settings_module.load(path)
    except settings_module.SettingsError as exc:
        print(f"conveyor: {exc}", file=sys.stderr)
        return None


def venv_bin(name: str) -> str:
    """A console script of the virtualenv that runs us (buildbot, buildbot-worker)."""
    return str(Path(sys.executable).parent / name)


def prepare(settings: Settings) -> None:
    for path in (settings.state_dir, settings.artifacts_dir, settings.repository.aptly_root):
        path.mkdir(parents=True, exist_ok=True)
    ensure_secrets(settings)
    ensure_users(settings)
    fingerprint = ensure_signing_key(settings)
    ensure_repository(settings, fingerprint)
    ensure_master(settings)
    for worker in settings.workers:
        ensure_worker(settings, worker.name)
    if build_workers(settings):  # the clean builds' base (the trusted side makes it)
        for release in chroots.releases(settings):
            chroots.ensure_base(chroots.chroots_dir(settings.state_dir), release)
    lock_down(settings)


def write_secret(settings: Settings, name: str, value: str) -> None:
    settings.secrets_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.secrets_dir, 0o700)
    path = settings.secrets_dir / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")


def ensure_secrets(settings: Settings) -> None:
    """Demo values for every secret that is missing, said loudly (never their values)."""
    wanted = [WEBHOOK_SECRET] + [w.password_secret for w in settings.workers]
    for name in wanted:
        if settings.read_secret(name) is None:
            write_secret(settings, name, secrets.token_hex(24))
            say(f"generated demo secret {settings.secrets_dir / name}")


def gpg_env(settings: Settings) -> dict:
    home = settings.repository.gnupg_home
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    return {**os.environ, "GNUPGHOME": str(home)}


def ensure_signing_key(settings: Settings) -> str:
    """A signing key in the repository's GnuPG home, with the passphrase of
    `[repository] passphrase_secret` if there is one (the demo's has none); its public half is
    served as <repository url>/conveyor.gpg for clients' `signed-by=`."""
    repo = settings.repository
    env = gpg_env(settings)
    # on the repository's host: the key it made (or the one `[repository] fingerprint` names)
    fingerprint = repo.key_on_host() or repo.fingerprint
    if not fingerprint:
        if repo.passphrase_file is not None and not repo.passphrase_file.exists():
            raise RuntimeError(
                f"[repository] passphrase_secret: {repo.passphrase_file} does not "
                "exist; put the signing key's passphrase there (mode 0600)"
            )
        passphrase = (
            ["--pinentry-mode", "loopback", "--passphrase-file", str(repo.passphrase_file)]
            if repo.passphrase_file
            else ["--passphrase", ""]
        )
        run(
            [
                "gpg",
                "--batch",
                *passphrase,
                "--quick-gen-key",
                f"{settings.title} repository signing key <conveyor@localhost>",
                "ed25519",
                "sign",
                "never",
            ],
            env=env,
        )
        listing = run(["gpg", "--batch", "--with-colons", "--list-secret-keys"], env=env).stdout
        fingerprint = next(
            line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")
        )
        repo.signing_key_file.write_text(fingerprint + "\n")
        say(f"generated repository signing key {fingerprint}")
    repo.www_root.mkdir(parents=True, exist_ok=True)
    public = subprocess.run(
        ["gpg", "--batch", "--export", fingerprint], env=env, capture_output=True, check=True
    ).stdout
    if not public:
        raise RuntimeError(
            f"the signing key {fingerprint} is not in {repo.gnupg_home}: import it "
            "there (gpg --import), or leave [repository] fingerprint out"
        )
    (repo.www_root / repo.public_key_name).write_bytes(public)
    return fingerprint


def aptly(settings: Settings, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    argv = ["aptly", f"-config={settings.repository.aptly_config}", *args]
    if check:
        return run(argv, env=gpg_env(settings))
    return subprocess.run(argv, env=gpg_env(settings), capture_output=True, text=True)


def ensure_repository(settings: Settings, fingerprint: str) -> None:
    """Every distribution published (signed) from a first, empty snapshot, with its history
    file started; the served tree links to aptly's published dists/ and pool/."""
    repo = settings.repository
    config = {
        "rootDir": str(repo.aptly_root),
        "architectures": list(repo.architectures),
        "gpgProvider": "gpg",
        "downloadConcurrency": 2,
        "skipContentsPublishing": True,
        # a database held by another process: aptly retries (about 10 s apart), then fails
        "databaseOpenAttempts": 3,
    }
    repo.aptly_config.write_text(json.dumps(config, indent=2) + "\n")
    settings.history_dir.mkdir(parents=True, exist_ok=True)
    published = aptly(settings, "publish", "list", "-raw").stdout.split("\n")
    published = {line.split()[-1] for line in published if line.strip()}
    for dist in settings.distributions:
        if dist in published:
            shown = json.loads(aptly(settings, "publish", "show", "-json", dist, ".").stdout)
            releases = settings.targets_of(dist)
            problem = targets.layout_problem(
                dist, shown.get("Sources") or [], releases, repo.component
            )
            if problem:
                raise RuntimeError(problem)
            continue
        when = datetime.now(UTC)
        snapshot = release.snapshot_name(dist, when, "setup", 0)
        aptly(settings, "snapshot", "create", snapshot, "empty")
        # with target releases, one component per release, each derived from the state
        # (conveyor/targets.py); else the repository's one component
        releases = settings.targets_of(dist)
        sources = [targets.derived(snapshot, t) for t in releases] or [snapshot]
        for source, t in zip(sources, releases, strict=False):  # none without targets
            aptly(settings, "snapshot", "filter", snapshot, source, targets.component_filter(t))
        aptly(
            settings,
            "publish",
            "snapshot",
            "-batch",
            *repo.signing_args(fingerprint),
            f"-architectures={','.join(repo.architectures)}",
            f"-distribution={dist}",
            f"-component={','.join(releases) or repo.component}",
            f"-origin={repo.origin}",
            f"-label={dist}",
            *sources,
            ".",
        )
        entry = {
            "n": 1,
            "when": when.isoformat(timespec="seconds"),
            "distribution": dist,
            "action": "create",
            "snapshot": snapshot,
            "previous_snapshot": None,
            "package": None,
            "version": None,
            "from": None,
            "who": "make run",
            "build": None,
        }
        (settings.history_dir / f"{dist}.jsonl").write_text(release.history_line(entry))
        say(f"created distribution {dist}")
    write_host_files(settings)
    for part in ("dists", "pool"):
        target = repo.aptly_root / "public" / part
        target.mkdir(parents=True, exist_ok=True)
        link = repo.www_root / part
        if not link.is_symlink():
            link.symlink_to(target)


def write_host_files(settings: Settings) -> None:
    """What a host needs to follow each distribution, served beside the repository
    (conveyor/hostsetup.py): `hosts/<dist>.sources` (with target releases, one
    `hosts/<dist>.<release>.sources` each) and `hosts/<dist>.pref`."""
    repo = settings.repository
    for dist in settings.distributions:
        for target in settings.targets_of(dist) or (None,):
            source, pref = (repo.www_root / path for path in hostsetup.served(dist, target))
            source.parent.mkdir(parents=True, exist_ok=True)
            source.write_text(hostsetup.sources(repo.url, dist, target or repo.component))
        pref.write_text(hostsetup.preferences(repo.origin, dist))
        for path, text in hostsetup.report_files(settings, dist).items():
            (repo.www_root / path).write_text(text)


DEMO_USERS = (("releaser", "releasers"), ("developer", "developers"), ("admin", "admins"))


def ensure_users(settings: Settings) -> None:
    """Demo web users when there is no users file: a releaser (may promote), a developer (may
    build, not promote) and an admin (workers, schedulers); the releaser's credentials also go
    to the CLI's credentials file."""
    name = settings.auth.users_secret
    if settings.read_secret(name) is not None:
        return
    lines, passwords = [], {}
    for user, role in DEMO_USERS:
        passwords[user] = secrets.token_urlsafe(12)
        role = {
            "releasers": settings.auth.releasers[0],
            "developers": settings.auth.developers[0],
            "admins": settings.auth.admins[0],
        }[role]
        lines.append(f"{user}:{passwords[user]}:{role}")
    write_secret(settings, name, "\n".join(lines))
    if settings.read_secret(CLI_CREDENTIALS) is None:
        write_secret(settings, CLI_CREDENTIALS, f"releaser:{passwords['releaser']}")
    say(
        f"generated demo web users {', '.join(u for u, _ in DEMO_USERS)} in "
        f"{settings.secrets_dir / name}"
    )


def ensure_master(settings: Settings) -> None:
    if not (settings.master_dir / "buildbot.tac").exists():
        settings.master_dir.parent.mkdir(parents=True, exist_ok=True)
        # a database server's tables are made by upgrade-master at the first start
        # (ops/services.py), with the password of its secret file: never on a command line
        db = settings.db_url if settings.db_url.startswith("sqlite") else "sqlite://"
        run(
            [
                venv_bin("buildbot"),
                "create-master",
                "--quiet",
                "--db",
                db,
                "--config",
                str(ROOT / "master.cfg"),
                str(settings.master_dir),
            ]
        )
        say(f"created master in {settings.master_dir}")


def master_database_missing(settings: Settings) -> bool:
    """An embedded (SQLite) database whose file is gone, e.g. deleted or lost with its disk."""
    url = settings.db_url
    if not url.startswith("sqlite:///") or not (settings.master_dir / "buildbot.tac").exists():
        return False
    path = Path(url.removeprefix("sqlite:///"))
    return not (path if path.is_absolute() else settings.master_dir / path).exists()


def worker_dir(settings: Settings, name: str) -> Path:
    return settings.state_dir / "workers" / name


# --- the trust boundary on one machine: build workers hold nothing of value -------------------

BUILD_USER = "conveyor-build"


# The build user's own buildbot-worker: the master's .venv may use a Python the build user
# cannot run (e.g. one under /root), so it gets a virtualenv of the system's Python with
# requirements/worker.txt (hash-checked), shared by the installations of this machine.
WORKER_VENV = Path("/opt/conveyor-worker/venv")
# the build user's cache (XDG_CACHE_HOME: pip's downloads and wheels), writable in the sandbox
BUILD_CACHE = Path("/var/cache/conveyor-build")


def separate_build_user() -> bool:
    """Run as root, `make run` runs the build workers as BUILD_USER; otherwise they share the
    caller's user (and only the sandbox stands between a test and the secrets)."""
    return os.geteuid() == 0


def build_user_blocked(settings: Settings, name: str) -> str | None:
    """Why the build user cannot run the build worker `name` here (None: it can)."""
    basedir = worker_dir(settings, name)
    if (
        subprocess.run(["runuser", "-u", BUILD_USER, "--", "test", "-w", str(basedir)]).returncode
        != 0
    ):
        return (
            f"it cannot reach {basedir}: let others traverse the parents of the state "
            "directory (chmod o+x), or keep the state directory elsewhere"
        )
    if (
        subprocess.run(
            [
                "runuser",
                "-u",
                BUILD_USER,
                "--",
                str(WORKER_VENV / "bin" / "python"),
                "-c",
                "import buildbot_worker",
            ],
            capture_output=True,
        ).returncode
        != 0
    ):
        return f"it cannot run {WORKER_VENV}/bin/python"
    return None


@contextlib.contextmanager
def machine_lock(name: str):
    """One installation at a time makes what the machine's installations share (the build
    user, its virtualenv): e.g. `make run` beside the tests, or tests run in parallel."""
    Path("/run/lock").mkdir(parents=True, exist_ok=True)
    with open(f"/run/lock/conveyor-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_worker_venv() -> Path:
    """The build user's buildbot-worker (see WORKER_VENV); made once, at the pinned versions."""
    requirements = ROOT / "requirements" / "worker.txt"
    return pinned_venv(
        WORKER_VENV,
        ["-r", str(requirements)],
        hashlib.sha256(requirements.read_bytes()).hexdigest(),
        "worker-venv",
        "requirements/worker.txt for the build user",
    )


def pinned_venv(venv: Path, pip_args: list[str], wanted: str, lock: str, what: str) -> Path:
    """A virtualenv of the system's Python with `pip install pip_args`, readable by every
    service user: made once, and again when `wanted` (what it should hold: its pins, a hash of
    a requirements file) changes."""
    marker = venv / "conveyor-pins.txt"
    with machine_lock(lock):
        if marker.exists() and marker.read_text().strip() == wanted.strip():
            return venv
        run(["/usr/bin/python3", "-m", "venv", "--clear", str(venv)])
        run(
            [
                str(venv / "bin" / "pip"),
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *pip_args,
            ]
        )
        for path in (venv.parent, venv):
            os.chmod(path, 0o755)
        marker.write_text(wanted.strip() + "\n")
        say(f"installed {what} in {venv}")
        return venv


def build_workers(settings: Settings) -> list[str]:
    return [w.name for w in settings.workers if w.name != settings.repository.worker]


def protected_paths(settings: Settings) -> list[Path]:
    """What a build worker must never read: secrets, the signing key, aptly's state (database
    and pool), the master's database and artifact store, the repository worker's directory."""
    repo = settings.repository
    return [
        settings.secrets_dir,
        repo.gnupg_home,
        repo.aptly_root,
        settings.master_dir,
        settings.artifacts_dir,
        worker_dir(settings, repo.worker),
    ]


def worker_password_copy(settings: Settings, name: str) -> Path:
    """A build worker's own copy of its password (it cannot read the secrets directory)."""
    return worker_dir(settings, name) / "worker-password"


def ensure_worker(settings: Settings, name: str) -> None:
    basedir = worker_dir(settings, name)
    basedir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "worker" / "buildbot.tac", basedir / "buildbot.tac")
    own_venv = WORKER_VENV if separate_build_user() else ROOT / ".venv"
    if separate_build_user():  # first: the tools come from its venv (uv)
        ensure_build_user()
        ensure_worker_venv()
    install_worker_tools(basedir, own_venv)
    if name == settings.repository.worker:
        os.chmod(basedir, 0o700)
        return
    password = next(w for w in settings.workers if w.name == name).password_secret
    copy = worker_password_copy(settings, name)
    copy.unlink(missing_ok=True)
    fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "w") as fh:
        fh.write((settings.read_secret(password) or "") + "\n")
    # git refuses a repository another user owns ("dubious ownership"): the local clone URLs
    local = [p.clone_url for p in settings.projects if p.clone_url.startswith("/")]
    (basedir / ".gitconfig").write_text("".join(f"[safe]\n\tdirectory = {url}\n" for url in local))
    if separate_build_user():
        BUILD_CACHE.mkdir(mode=0o700, parents=True, exist_ok=True)
        run(["chown", f"{BUILD_USER}:{BUILD_USER}", str(BUILD_CACHE)])
        run(["chown", "-R", f"{BUILD_USER}:{BUILD_USER}", str(basedir)])
        os.chmod(basedir, 0o700)


def install_worker_tools(basedir: Path, venv: Path) -> Path:
    """The worker's bin/, first on its steps' PATH: Conveyor's tools (worker/bin; none it has
    dropped) and uv, the worker's requirement (missing: the set-up stops), copied from its
    virtualenv, of which nothing else is on the PATH: a build finds the system's python3. The
    sandbox shows it to the project's code, read-only (CONVEYOR_SANDBOX_ALLOW): uv runs there."""
    (bindir := basedir / "bin").mkdir(exist_ok=True)
    tools = [*sorted((ROOT / "worker" / "bin").glob("conveyor-*")), venv / "bin" / "uv"]
    for tool in tools:
        shutil.copyfile(tool, bindir / tool.name)
        if tool.name == "conveyor-attest":  # Python with the venv's securesystemslib
            text = tool.read_text().replace("/usr/bin/python3", str(venv / "bin" / "python"), 1)
            (bindir / tool.name).write_text(text)
        os.chmod(bindir / tool.name, 0o755)
    for stale in set(bindir.glob("conveyor-*")) - {bindir / t.name for t in tools}:
        stale.unlink()
    return bindir


def ensure_user(name: str, home: Path) -> None:
    """A system user (and group) for a service, without a login shell."""
    with machine_lock("users"):
        if subprocess.run(["id", "-u", name], capture_output=True).returncode == 0:
            return
        run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                str(home),
                "--shell",
                "/usr/sbin/nologin",
                name,
            ]
        )
        say(f"created the system user {name}")


def ensure_build_user() -> None:
    """The build workers' user, with subordinate ids for the install check's namespace."""
    ensure_user(BUILD_USER, Path("/nonexistent"))
    ensure_subordinate_ids(BUILD_USER)


def ensure_subordinate_ids(user: str, count: int = 65536) -> None:
    """Subordinate user and group ids (/etc/subuid, /etc/subgid) for `user`: the install
    check's user namespace maps them to the throwaway root's users (worker/bin/
    conveyor-install-check), so the build user needs no root. A free range after the others."""
    for kind, file in (("uids", Path("/etc/subuid")), ("gids", Path("/etc/subgid"))):
        lines = file.read_text().splitlines() if file.exists() else []
        ranges = [line.split(":") for line in lines if line.count(":") == 2]
        if any(name == user for name, _, _ in ranges):
            continue
        start = max([100000] + [int(first) + int(n) for _, first, n in ranges])
        run(["usermod", f"--add-sub{kind}", f"{start}-{start + count - 1}", user])


def lock_down(settings: Settings) -> None:
    """Owner-only modes on everything a build worker must not read (see protected_paths); as
    root, check that the build user really cannot read any of it."""
    for path in protected_paths(settings):
        if path.exists():
            os.chmod(path, 0o700)
    if not separate_build_user():
        return
    readable = [
        str(path)
        for path in protected_paths(settings) + [settings.repository.signing_key_file]
        if path.exists()
        and subprocess.run(["runuser", "-u", BUILD_USER, "--", "test", "-r", str(path)]).returncode
        == 0
    ]
    if readable:
        raise RuntimeError(
            f"the build user {BUILD_USER} can read {', '.join(readable)}: "
            "check their owners and modes (and their parents')"
        )
