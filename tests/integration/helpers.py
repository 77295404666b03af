"""What the integration tests share: an installation on free loopback ports, and an apt client
with its own sources list (APT_CONFIG) that trusts only the repository's key (signed-by)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from conveyor import settings as settings_module

ROOT = Path(__file__).resolve().parents[2]


PORTS = range(20000, 30000)  # below Linux's ephemeral range (32768-60999): no client takes one
PORT_LOCKS = Path("/run/lock")
_held: list = []  # the lock files of this process's ports, open while it lives


def free_port() -> int:
    """A loopback port that is free now and that no other test process will pick: each port
    handed out is reserved with a lock file (flock) for the life of this process, so pytest-xdist
    workers, and two test runs side by side, never share one. The kernel's bind(0) could hand
    two workers the same port between one's probe and its server's bind."""
    PORT_LOCKS.mkdir(parents=True, exist_ok=True)
    start = (os.getpid() * 7919) % len(PORTS)
    for offset in range(len(PORTS)):
        port = PORTS[(start + offset) % len(PORTS)]
        lock = open(PORT_LOCKS / f"conveyor-test-port-{port}", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another test process holds it
            lock.close()
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:  # in use by something else
                lock.close()
                continue
        _held.append(lock)
        return port
    raise RuntimeError(f"no free port in {PORTS}")


def write_pipeline(
    base: Path, extra: str = "", conveyor: str = "", **project_overrides: str
) -> settings_module.Settings:
    """A pipeline.toml like the shipped one, with its state under base and free ports.

    project_overrides replace keys of [projects.snowbird] (values in TOML syntax); extra is TOML
    appended at the end (more tables: [mail], [github], [auth] …); conveyor is more keys of
    [conveyor] (e.g. 'admins = ["ops@example.com"]')."""
    project = {
        "github": '"sprintly/snowbird"',
        "clone_url": '"var/git/snowbird.git"',
        "branch": '"main"',
        "packages": '["snowbird"]',
        "path": '["snowbird-development", "snowbird-staging", "snowbird"]',
        "upload_to": '"snowbird-staging"',
        "coverage_threshold": "80",
        "mail": '["snowbird-team@example.com"]',
        # the install check adds a throwaway root to every CI build: on only in the modules
        # that test it (install_check="true"); the shipped pipeline.toml keeps it on
        "install_check": "false",
        **project_overrides,
    }
    text = (
        f"""
[conveyor]
state_dir = "var"
web_port = {free_port()}
worker_port = {free_port()}
{conveyor}
[repository]
port = {free_port()}

[workers.build]
[workers.repository]

[projects.snowbird]
"""
        + "".join(f"{key} = {value}\n" for key, value in project.items())
        + extra
    )
    (base / "pipeline.toml").write_text(text)
    return settings_module.load(base / "pipeline.toml")


class AptClient:
    """apt-get against one distribution only, trusting only the key fetched from the repository,
    without touching the machine's own sources (APT_CONFIG with private lists and cache)."""

    def __init__(self, base: Path, repo_url: str, distribution: str, component: str = "main"):
        self.base = base
        for sub in ("sources.list.d", "lists/partial", "cache/archives/partial", "preferences.d"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        self.keyring = base / "conveyor.gpg"
        with urllib.request.urlopen(repo_url + "conveyor.gpg", timeout=30) as response:
            self.keyring.write_bytes(response.read())
        self.sources = base / "sources.list"
        self.sources.write_text(
            f"deb [signed-by={self.keyring}] {repo_url} {distribution} {component}\n"
        )
        self.config = base / "apt.conf"
        self.config.write_text(
            f'Dir::Etc::sourcelist "{self.sources}";\n'
            f'Dir::Etc::sourceparts "{base / "sources.list.d"}";\n'
            f'Dir::Etc::preferencesparts "{base / "preferences.d"}";\n'
            f'Dir::State::Lists "{base / "lists"}";\n'
            f'Dir::Cache "{base / "cache"}";\n'
            'APT::Sandbox::User "root";\n'
        )

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {**os.environ, "APT_CONFIG": str(self.config), "DEBIAN_FRONTEND": "noninteractive"}
        proc = subprocess.run(list(args), env=env, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def update(self) -> subprocess.CompletedProcess:
        return self.run("apt-get", "update")

    def install(self, package: str, version: str | None = None) -> subprocess.CompletedProcess:
        return self.run(
            "apt-get",
            "install",
            "-y",
            "--no-install-recommends",
            f"{package}={version}" if version else package,
        )

    def candidate(self, package: str) -> str:
        out = self.run("apt-cache", "policy", package).stdout
        for line in out.splitlines():
            if line.strip().startswith("Candidate:"):
                return line.split(":", 1)[1].strip()
        raise AssertionError(f"apt-cache policy {package} shows no candidate:\n{out}")


def demo_passwords(settings) -> dict[str, str]:
    """The demo users' passwords (`make run`'s users secret): user -> password."""
    text = settings.read_secret(settings.auth.users_secret) or ""
    return {line.split(":")[0]: line.split(":")[1] for line in text.splitlines()}


def session(settings, user: str | None):
    """A session on the installation's REST API: anonymous, or logged in as a demo user."""
    from ops import api

    master = api.Master(settings.web_url)
    if user:
        master.login(user, demo_passwords(settings)[user])
    return master


def staging_index(settings, distribution: str = "snowbird-staging") -> str:
    """A distribution's amd64 `Packages` index, fetched over HTTP as apt does."""
    from conveyor.served import index_url

    with urllib.request.urlopen(index_url(settings, distribution), timeout=30) as response:
        return response.read().decode()


def mail_about(mail_dir: Path, known: set, short_sha: str, timeout: float = 60):
    """The first mail not in `known` whose subject names the commit: mails of earlier builds
    and promotions may still arrive in between."""
    from ops import mailsink

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(set(mailsink.messages(mail_dir)) - known):
            mail = mailsink.read(path)
            if short_sha in (mail["Subject"] or ""):
                return mail
        time.sleep(0.5)
    raise AssertionError(f"no mail about {short_sha} in {mail_dir}")


def installed_version(package: str) -> str | None:
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f=${db:Status-Status} ${Version}", package],
        capture_output=True,
        text=True,
    )
    status, _, version = proc.stdout.partition(" ")
    return version if proc.returncode == 0 and status == "installed" else None


def purge(package: str) -> None:
    if (
        installed_version(package) is None
        and subprocess.run(["dpkg-query", "-W", package], capture_output=True).returncode != 0
    ):
        return  # neither installed nor half-removed: nothing to do (and no dpkg lock taken)
    subprocess.run(
        ["apt-get", "purge", "-y", "-q", package],
        capture_output=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def version_gt(a: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, "gt", b]).returncode == 0


def two_versions(settings) -> tuple[str, str]:
    """Push the demo app twice (the second commit writes release notes) and wait for both CI
    builds to publish: (older, newer) versions, in the project's upload_to."""
    from conveyor.results import result_name
    from ops import api
    from ops import demo
    from ops import github

    project = settings.projects[0]
    checkout = demo.ensure_demo_repo(settings, project)
    found = []
    for n in range(2):
        before = github.git(checkout, "rev-parse", "HEAD")
        if n:
            (checkout / "NOTES.md").write_text("Second release.\n")
            github.git(checkout, "add", "NOTES.md")
            github.git(checkout, "commit", "-qm", "Write release notes")
            github.git(checkout, "push", "-q", "origin", "HEAD:refs/heads/main")
        build = github.push_and_wait(
            settings, project, checkout, before=before if n else github.ZERO
        )
        assert result_name(build["results"]) == "SUCCESS", api.describe(build)
        found.append(build["properties"]["package_version"][0])
    assert version_gt(found[1], found[0])
    return found[0], found[1]


def users_file(users: dict[str, tuple[str, str]]):
    """A `before_start` for running_installation: the web users file with these users,
    name -> (password, "role,role"); the first user with a role is the operator's (the
    credentials ops.api.reader reads with)."""

    def write(settings: settings_module.Settings) -> None:
        from ops import api
        from ops import setup

        setup.write_secret(
            settings,
            settings.auth.users_secret,
            "\n".join(f"{name}:{password}:{roles}" for name, (password, roles) in users.items()),
        )
        operator = next(name for name, (_, roles) in users.items() if roles)
        setup.write_secret(settings, api.CLI_CREDENTIALS, f"{operator}:{users[operator][0]}")

    return write


def traversable(base: Path) -> None:
    """mkdtemp's directories are private (0700): let the build worker's own user pass through
    them to its directory (o+x, not o+r)."""
    for path in [base, *base.parents]:
        if path in (Path("/tmp"), Path("/srv"), Path("/")):
            break
        os.chmod(path, path.stat().st_mode | 0o111)


# Where the integration tests keep their installations: not below pytest's own temporary
# root, which pytest makes 0700 again whenever a session starts (it would lock the build
# worker's user out of its directory), and not below /tmp, which the sandbox replaces by a
# private one (that alone would hide the state from a build, and prove less).
TEST_ROOT = Path("/srv/conveyor-tests")


@contextlib.contextmanager
def dpkg_turn(needed: bool):
    """The test modules that install the built package into this machine share its dpkg
    database: under pytest-xdist (make test) they take turns, a whole module at a time."""
    if not needed:
        yield
        return
    from ops import setup

    with setup.machine_lock("dpkg-tests"):
        yield


@contextlib.contextmanager
def installation_base(name: str):
    """A fresh directory for one test installation, removed afterwards."""
    TEST_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=TEST_ROOT))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def running_installation(
    name: str,
    package: str | None = None,
    extra: str = "",
    before_start=None,
    project: dict[str, str] | None = None,
    conveyor: str = "",
):
    """Set up and start an installation (free ports, its own directory: installation_base);
    stop it afterwards, whatever happens. A test module that installs `package` into this
    machine names it: it waits for its dpkg_turn, and the package is purged before and after.
    before_start(settings) may add secrets before the services read them; project: keys of
    [projects.snowbird] in TOML syntax, conveyor: more keys of [conveyor] (see write_pipeline)."""
    from ops import services
    from ops import setup

    with installation_base(name) as base, dpkg_turn(bool(package)):
        settings = write_pipeline(base, extra=extra, conveyor=conveyor, **(project or {}))
        traversable(base)
        if package:
            purge(package)
        try:
            if before_start:
                before_start(settings)
            setup.prepare(settings)
            services.start(settings)
            yield settings
        finally:
            services.stop(settings)
            if package:
                purge(package)
