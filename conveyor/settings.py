"""pipeline.toml + secrets -> typed, validated settings.

Everything the master, the worker tools, `make run` and the tests need to know about a Conveyor
installation is read here, once, and checked. A wrong file raises `SettingsError` naming the file,
the key and what is wrong, so `buildbot checkconfig` stops with a sentence instead of a traceback.

Part of the pure core (conveyor/): `master/`, `ops/` (make run) and the CLI read the same
settings.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from conveyor import approvals as conveyor_approvals
from conveyor import targets as conveyor_targets
from conveyor.grammar import DISTRIBUTION_NAME
from conveyor.grammar import EMAIL
from conveyor.grammar import EXTRA_NAME
from conveyor.grammar import GITHUB_NAME
from conveyor.grammar import GITHUB_ORG_OR_TEAM
from conveyor.grammar import IDENTIFIER
from conveyor.grammar import PACKAGE_NAME
from conveyor.grammar import ROLE

# the secret that signs GitHub's webhooks (a file in the secrets directory)
WEBHOOK_SECRET = "github-webhook-secret"


class SettingsError(ValueError):
    """A pipeline.toml that cannot be used; the message names file, key and reason."""


@dataclass(frozen=True)
class Worker:
    name: str
    # name of the secret (a file in the secrets directory) holding the worker's password
    password_secret: str


@dataclass(frozen=True)
class Project:
    name: str
    github: str
    clone_url: str
    branch: str
    packages: tuple[str, ...]
    path: tuple[str, ...]
    upload_to: str
    workers: tuple[str, ...]
    requirements: tuple[str, ...] = ("requirements-dev.txt",)
    # the test dependencies besides the requirements files: the project itself, editable, with
    # these extras of pyproject's [project.optional-dependencies] (`-e ".[test]"`), and these
    # PEP 735 dependency groups of its [dependency-groups] (`--group test`, uv only)
    extras: tuple[str, ...] = ()
    dependency_groups: tuple[str, ...] = ()
    test_runner: str = "pytest"
    test_args: tuple[str, ...] = ()
    coverage_threshold: float = 80.0
    coverage_below: str = "failure"
    mail: tuple[str, ...] = ()
    python: str = "/usr/bin/python3"  # the system's (Debian's), not whatever is first on PATH
    pull_requests: bool = True
    # the install check (steps/install.py): on by default; the smoke command (argv) runs inside
    # the throwaway root after the install and after the upgrade
    install_check: bool = True
    smoke: tuple[str, ...] = ()
    # the lint step (steps/lint.py): the linter's argv, run from the build's virtualenv, and what
    # its problems do to the build ("warnings" or "failure"); no lint: no step
    lint: tuple[str, ...] = ()
    lint_below: str = "warnings"
    # what makes the build's fresh virtualenv and installs the requirements: "uv" (the worker's,
    # with its download/wheel cache) or "pip"
    installer: str = "uv"
    # the Debian releases to build for, one package each (conveyor/targets.py); none: the worker's
    targets: tuple[str, ...] = ()

    @property
    def pr_builder(self) -> str:
        return f"{self.name}-pr"

    @property
    def ci_builder(self) -> str:
        return f"{self.name}-ci"

    @property
    def package_builders(self) -> tuple[tuple[str, str], ...]:
        """(target, builder) of each package build beside CI's (steps/beside.py), one per target
        (`<name>-package-trixie`), else `<name>-package` for the worker's release (target '')."""
        targets = self.targets or ("",)
        return tuple((t, f"{self.name}-package" + (f"-{t}" if t else "")) for t in targets)

    @property
    def tests_builders(self) -> tuple[tuple[str, str], ...]:
        """(target, builder) of the tests of each target after the first, beside CI's."""
        return tuple((target, f"{self.name}-tests-{target}") for target in self.targets[1:])

    @property
    def push_scheduler(self) -> str:
        return f"{self.name}-push"


@dataclass(frozen=True)
class Repository:
    url: str
    bind: str
    port: int
    worker: str
    www_root: Path
    aptly_root: Path
    aptly_config: Path
    gnupg_home: Path
    signing_key_file: Path
    public_key_name: str = "conveyor.gpg"
    component: str = "main"
    architectures: tuple[str, ...] = ("amd64", "all")
    origin: str = "Conveyor"
    # a file holding the signing key's passphrase (a secret), or None: a key without one
    passphrase_file: Path | None = None
    # The repository's own host (`[repository] home`), where every path above lives as seen
    # there: the master never reads them (it knows only `url` and `fingerprint`). None: the
    # repository shares the master's machine and state_dir (make run).
    home: Path | None = None
    # the signing key's fingerprint (`[repository] fingerprint`); empty: the master reads it from
    # signing_key_file (one machine) or fetches the served key (master/repository.py)
    fingerprint: str = ""

    @property
    def apart(self) -> bool:
        """The repository lives on a host of its own (see `home`)."""
        return self.home is not None

    @property
    def public_key_url(self) -> str:
        return self.url + self.public_key_name

    def signing_key(self) -> str:
        """The fingerprint of the signing key: from the settings, or (the repository on the
        master's machine) from the file `make run` wrote; never read from a host apart."""
        if self.fingerprint or self.apart:
            return self.fingerprint
        return self.key_on_host()

    def key_on_host(self) -> str:
        """On the repository's host: the fingerprint of the key it generated (or "")."""
        try:
            return self.signing_key_file.read_text().strip()
        except FileNotFoundError:
            return ""

    def signing_args(self, key: str | None = None) -> list[str]:
        """aptly's options to sign with the key (and its passphrase, by file: never on a
        command line or in a log)."""
        key = key or self.signing_key()
        args = [f"-gpg-key={key}"] if key else []
        if self.passphrase_file is not None:
            args.append(f"-passphrase-file={self.passphrase_file}")
        return args


@dataclass(frozen=True)
class Mail:
    """Where Conveyor's mail goes out: an SMTP relay; its password is a secret."""

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    from_address: str = "conveyor@localhost"
    use_tls: bool = False  # SMTPS (implicit TLS)
    starttls: bool = False  # STARTTLS on a plain connection
    username: str | None = None
    password_secret: str = "smtp-password"
    every_failure: bool = False  # mail each still-failing build, not only the first failure


@dataclass(frozen=True)
class GitHub:
    """The GitHub API that receives commit statuses; the token is a secret."""

    api_url: str = "https://api.github.com"
    token_secret: str = "github-token"
    statuses: bool = True


@dataclass(frozen=True)
class Auth:
    """Web UI log-in and who may change the repository.

    Users live in the secrets file `users_secret`: one `name:password:role,role` per line.
    """

    users_secret: str = "web-users"
    # who may do what: see master/authz.py (each list also has the rights of the lists below)
    developers: tuple[str, ...] = ("developers",)  # CI and pull-request builds
    releasers: tuple[str, ...] = ("releasers",)  # + promote, roll back, publish
    production: tuple[str, ...] = ("releasers",)  # + into the last distribution of a path
    admins: tuple[str, ...] = ("admins",)  # + workers, schedulers, everything else
    # GitHub OAuth log-in instead of the users file, when a client id is set
    github_client_id: str | None = None
    github_client_secret: str = "github-oauth-client-secret"
    # role -> GitHub organisations ("sprintly") or teams ("sprintly/release-team")
    github_roles: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # builds, logs, changes and the board without log-in (read-only), for open-source projects
    public: bool = False
    # coverage reports (the project's source) and built packages without log-in
    public_reports: bool = False


@dataclass(frozen=True)
class Retention:
    """How long things are kept ([retention]); the defaults keep a busy team's disk flat."""

    logs_days: int = 30  # build logs (Buildbot's JanitorConfigurator)
    artifacts_days: int = 30  # built packages and coverage reports on the master
    snapshots_keep_states: int = 20  # aptly snapshots: those of each distribution's last N states
    hour: int = 3  # the nightly run (master's local time), as Nightly's hour
    minute: int = 17


@dataclass(frozen=True)
class Settings:
    file: Path
    root: Path
    title: str
    state_dir: Path
    master_dir: Path
    secrets_dir: Path
    web_url: str
    web_bind: str
    web_port: int
    worker_port: int
    worker_bind: str
    worker_missing_timeout: int
    db_url: str
    artifacts_dir: Path
    artifacts_url: str
    workers: tuple[Worker, ...]
    projects: tuple[Project, ...]
    repository: Repository
    admins: tuple[str, ...] = field(default=())
    mail: Mail = field(default_factory=Mail)
    github: GitHub = field(default_factory=GitHub)
    auth: Auth = field(default_factory=Auth)
    # the secret (file in the secrets directory) with the database's password; None: no password
    db_password_secret: str | None = None
    retention: Retention = field(default_factory=Retention)
    approvals: conveyor_approvals.Approvals = field(default_factory=conveyor_approvals.Approvals)

    @property
    def history_dir(self) -> Path:
        """One `<distribution>.jsonl` per distribution, served at <repository url>history/."""
        return self.repository.www_root / "history"

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(p for project in self.projects for p in project.packages)

    def project_of_package(self, package: str) -> Project | None:
        return next((p for p in self.projects if package in p.packages), None)

    @property
    def distributions(self) -> tuple[str, ...]:
        """Every distribution of every project's path, in path order, each once."""
        seen: dict[str, None] = {}
        for project in self.projects:
            for dist in project.path:
                seen.setdefault(dist, None)
        return tuple(seen)

    def targets_of(self, distribution: str) -> tuple[str, ...]:
        """The components a distribution publishes, one per target release (projects that
        share it agree on them: _check_paths); () for the repository's one component."""
        return next((p.targets for p in self.projects if distribution in p.path), ())

    def project(self, name: str) -> Project:
        for project in self.projects:
            if project.name == name:
                return project
        raise KeyError(name)

    def project_for_github(self, full_name: str) -> Project | None:
        for project in self.projects:
            if project.github.lower() == full_name.lower():
                return project
        return None

    def read_secret(self, name: str) -> str | None:
        try:
            return (self.secrets_dir / name).read_text().strip()
        except FileNotFoundError:
            return None


class _Table:
    """A TOML table that knows its place in the file, for error messages."""

    def __init__(self, file: Path, where: str, data: Any):
        self.file = file
        self.where = where
        if not isinstance(data, dict):
            raise self.error(f"must be a table, not {type(data).__name__}")
        self.data = data
        self.used: set[str] = set()

    def error(self, message: str, key: str | None = None) -> SettingsError:
        place = f"{self.where}.{key}" if key and self.where else (key or self.where or "top level")
        return SettingsError(f"{self.file}: [{place}] {message}")

    def _get(self, key: str, default: Any, kind: type | tuple[type, ...], what: str) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is _REQUIRED:
                raise self.error("is required", key)
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(f"must be {what}, not {value!r}", key)
        return value

    def str(
        self, key: str, default: Any = None, pattern: re.Pattern | None = None, hint: str = ""
    ) -> Any:
        value = self._get(key, default, str, "a string")
        if value is None:
            return None
        if not value.strip():
            raise self.error("must not be empty", key)
        if pattern is not None and not pattern.match(value):
            raise self.error(f"{value!r} is not valid{': ' + hint if hint else ''}", key)
        return value

    def bool(self, key: str, default: bool) -> bool:
        return self._get(key, default, bool, "true or false")

    def int(self, key: str, default: Any = None, low: int = 1, high: int = 65535) -> Any:
        value = self._get(key, default, int, "a whole number")
        if value is not None and not low <= value <= high:
            raise self.error(f"must be between {low} and {high}, not {value}", key)
        return value

    def number(self, key: str, default: Any, low: float, high: float) -> float:
        value = self._get(key, default, (int, float), "a number")
        if not low <= value <= high:
            raise self.error(f"must be between {low} and {high}, not {value}", key)
        return float(value)

    def strs(
        self,
        key: str,
        default: Any = None,
        pattern: re.Pattern | None = None,
        hint: str = "",
        nonempty: bool = True,
    ) -> Any:
        value = self._get(key, default, list, "a list of strings")
        if value is None:
            return None
        if nonempty and not value:
            raise self.error("must not be an empty list", key)
        for item in value:
            if not isinstance(item, str) or not item.strip():
                raise self.error(f"must be a list of strings, not {value!r}", key)
            if pattern is not None and not pattern.match(item):
                raise self.error(f"{item!r} is not valid{': ' + hint if hint else ''}", key)
        return tuple(value)

    def table(self, key: str, required: bool = True) -> _Table:
        self.used.add(key)
        if key not in self.data:
            if required:
                raise self.error("is required", key)
            return _Table(self.file, f"{self.where}.{key}".strip("."), {})
        return _Table(self.file, f"{self.where}.{key}".strip("."), self.data[key])

    def check_unknown(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.error(
                f"unknown key {unknown[0]!r} (known: {', '.join(sorted(self.used))})", unknown[0]
            )


_REQUIRED = object()


def _resolve(root: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (root / path).resolve()


def _clone_url(root: Path, value: str) -> str:
    # A URL (scheme://… or user@host:path) is kept; anything else is a local path, made absolute
    # so that the worker, whatever its working directory, clones the same repository.
    if "://" in value or re.match(r"^[\w.-]+@[\w.-]+:", value):
        return value
    return str(_resolve(root, value))


def load(path: str | Path) -> Settings:
    """Read and check a pipeline.toml; raise SettingsError naming file, key and reason."""
    file = Path(path).resolve()
    try:
        with open(file, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise SettingsError(f"{file}: no such settings file") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{file}: not valid TOML: {exc}") from None
    return parse(data, file)


def parse(data: dict, file: Path) -> Settings:
    """The settings of a parsed pipeline.toml: one reader per table, each checking its own
    keys (an unknown key is an error that names it)."""
    root = file.parent
    top = _Table(file, "", data)
    conveyor = _conveyor(top.table("conveyor"), root)
    repository, repo_table = _repository(top.table("repository"), root, conveyor["state_dir"])
    workers = _workers(top.table("workers"), repository, repo_table)
    projects = _projects(top.table("projects"), root, workers, repository.worker)
    settings = Settings(
        file=file,
        root=root,
        workers=workers,
        projects=projects,
        repository=repository,
        mail=_mail(top.table("mail", required=False)),
        github=_github(top.table("github", required=False)),
        auth=_auth(top.table("auth", required=False)),
        retention=_retention(top.table("retention", required=False)),
        approvals=conveyor_approvals.from_table(
            top.table("approvals", required=False), {p.path[-1] for p in projects}
        ),
        **conveyor,
    )
    top.check_unknown()
    return settings


def _conveyor(t: _Table, root: Path) -> dict[str, Any]:
    """[conveyor]: the master (the keyword arguments of Settings it sets)."""
    state_dir = _resolve(root, t.str("state_dir", "var"))
    web_bind = t.str("web_bind", "127.0.0.1")
    web_port = t.int("web_port", 8010)
    web_url = t.str("web_url", f"http://{web_bind}:{web_port}/")
    if not re.match(r"^https?://", web_url):
        raise t.error(f"must start with http:// or https://, not {web_url!r}", "web_url")
    web_url = web_url.rstrip("/") + "/"
    db_url = t.str("db_url", "sqlite:///state.sqlite")
    _check_db_url(t, db_url)
    result = {
        "title": t.str("title", "Conveyor"),
        "state_dir": state_dir,
        "master_dir": state_dir / "master",
        "secrets_dir": state_dir / "secrets",
        "web_url": web_url,
        "web_bind": web_bind,
        "web_port": web_port,
        "worker_port": t.int("worker_port", 9989),
        "worker_bind": t.str("worker_bind", "127.0.0.1"),
        "worker_missing_timeout": t.int("worker_missing_timeout", 300, low=10, high=86400),
        "db_url": db_url,
        "db_password_secret": t.str(
            "db_password_secret", None if db_url.startswith("sqlite") else "db-password"
        ),
        # the master's: served by its web server, behind log-in (master/site.py)
        "artifacts_dir": state_dir / "artifacts",
        "artifacts_url": web_url + "artifacts/",
        "admins": t.strs("admins", (), EMAIL, "an e-mail address", nonempty=False),
    }
    t.check_unknown()
    return result


def _repository(repo: _Table, root: Path, state_dir: Path) -> tuple[Repository, _Table]:
    """[repository]: the apt repository, its host and its signing."""
    repo_bind = repo.str("bind", "127.0.0.1")
    repo_port = repo.int("port", 8011)
    repo_url = repo.str("url", f"http://{repo_bind}:{repo_port}/")
    if not re.match(r"^https?://", repo_url):
        raise repo.error(f"must start with http:// or https://, not {repo_url!r}", "url")
    repo_url = repo_url.rstrip("/") + "/"
    # [repository] home: the repository's own host keeps everything below it (default: the
    # master's state_dir, one machine); the paths are those of that host
    home = repo.str("home", None)
    repo_home = _resolve(root, home) if home else state_dir
    if home and not Path(home).is_absolute():
        raise repo.error(f"must be an absolute path on the repository's host, not {home!r}", "home")
    fingerprint = (
        repo.str(
            "fingerprint",
            None,
            re.compile(r"^[0-9A-Fa-f]{40}$"),
            "the key's full fingerprint, 40 hex digits (gpg --fingerprint)",
        )
        or ""
    )
    relative_to = repo_home if home else root  # where a relative path of the table starts
    www_root = _resolve(relative_to, repo.str("www_root", str(repo_home / "www")))
    aptly_root = _resolve(relative_to, repo.str("aptly_root", str(repo_home / "aptly")))
    repository = Repository(
        url=repo_url,
        bind=repo_bind,
        port=repo_port,
        worker=repo.str("worker", "repository", IDENTIFIER, "lower-case letters, digits and -"),
        www_root=www_root,
        aptly_root=aptly_root,
        aptly_config=_resolve(
            relative_to, repo.str("aptly_config", str(aptly_root / "aptly.conf"))
        ),
        gnupg_home=_resolve(relative_to, repo.str("gnupg_home", str(repo_home / "gnupg"))),
        signing_key_file=_resolve(
            relative_to, repo.str("signing_key_file", str(repo_home / "gnupg" / "signing-key"))
        ),
        component=repo.str("component", "main", DISTRIBUTION_NAME),
        architectures=repo.strs("architectures", ("amd64", "all"), DISTRIBUTION_NAME),
        origin=repo.str("origin", "Conveyor"),
        passphrase_file=(
            repo_home / "secrets" / passphrase
            if (passphrase := repo.str("passphrase_secret", None))
            else None
        ),
        home=repo_home if home else None,
        fingerprint=fingerprint.upper(),
    )
    repo.check_unknown()
    return repository, repo


def _workers(t: _Table, repository: Repository, repo: _Table) -> tuple[Worker, ...]:
    """[workers.<name>]: at least one, the repository's among them."""
    workers = []
    for name in t.data:
        if not IDENTIFIER.match(name):
            raise t.error("worker names are lower-case letters, digits and -", name)
        wt = t.table(name)
        workers.append(
            Worker(name=name, password_secret=wt.str("password_secret", f"worker-{name}-password"))
        )
        wt.check_unknown()
    if not workers:
        raise t.error("at least one worker is required")
    names = tuple(w.name for w in workers)
    if repository.worker not in names:
        raise repo.error(
            f"{repository.worker!r} is not one of the [workers]: {', '.join(names)}", "worker"
        )
    return tuple(workers)


def _projects(
    t: _Table, root: Path, workers: tuple[Worker, ...], repository_worker: str
) -> tuple[Project, ...]:
    """[projects.<name>]: at least one; their paths must not cross (_check_paths)."""
    projects = []
    for name in t.data:
        if not IDENTIFIER.match(name):
            raise t.error("project names are lower-case letters, digits and -", name)
        projects.append(
            _project(t.table(name), name, root, tuple(w.name for w in workers), repository_worker)
        )
    if not projects:
        raise t.error("at least one project is required")
    _check_paths(t, projects)
    return tuple(projects)


def _mail(m: _Table) -> Mail:
    """[mail]: the SMTP server and who mail comes from."""
    mail = Mail(
        smtp_host=m.str("smtp_host", "127.0.0.1"),
        smtp_port=m.int("smtp_port", 25),
        from_address=m.str("from", "conveyor@localhost", EMAIL, "an e-mail address"),
        use_tls=m.bool("use_tls", False),
        starttls=m.bool("starttls", False),
        username=m.str("username", None),
        password_secret=m.str("password_secret", "smtp-password"),
        every_failure=m.bool("every_failure", False),
    )
    if mail.use_tls and mail.starttls:
        raise m.error("use_tls (SMTPS) and starttls exclude each other: choose one", "starttls")
    m.check_unknown()
    return mail


def _github(g: _Table) -> GitHub:
    """[github]: the API for statuses and pull requests."""
    github = GitHub(
        api_url=g.str("api_url", "https://api.github.com").rstrip("/"),
        token_secret=g.str("token_secret", "github-token"),
        statuses=g.bool("statuses", True),
    )
    if not re.match(r"^https?://", github.api_url):
        raise g.error(f"must start with http:// or https://, not {github.api_url!r}", "api_url")
    g.check_unknown()
    return github


def _auth(a: _Table) -> Auth:
    """[auth]: users, roles, GitHub log-in, and whether anyone may read."""
    releasers = a.strs("releasers", ("releasers",), ROLE, "a role name")
    roles_table = a.table("github_roles", required=False)
    github_roles = {}
    for name in roles_table.data:
        if not ROLE.match(name):
            raise roles_table.error("is not a valid role name", name)
        github_roles[name] = roles_table.strs(
            name, None, GITHUB_ORG_OR_TEAM, "a GitHub organisation or org/team"
        )
    auth = Auth(
        users_secret=a.str("users_secret", "web-users"),
        developers=a.strs("developers", ("developers",), ROLE, "a role name"),
        releasers=releasers,
        production=a.strs("production", releasers, ROLE, "a role name"),
        admins=a.strs("admins", ("admins",), ROLE, "a role name"),
        github_client_id=a.str("github_client_id", None),
        github_client_secret=a.str("github_client_secret", "github-oauth-client-secret"),
        github_roles=github_roles,
        public=a.bool("public", False),
        public_reports=a.bool("public_reports", False),
    )
    a.check_unknown()
    return auth


def _retention(r: _Table) -> Retention:
    """[retention]: what is kept of logs, artifacts and snapshots, and when it is pruned."""
    retention = Retention(
        logs_days=r.int("logs_days", 30, high=36500),
        artifacts_days=r.int("artifacts_days", 30, high=36500),
        snapshots_keep_states=r.int("snapshots_keep_states", 20, high=100000),
        hour=r.int("hour", 3, low=0, high=23),
        minute=r.int("minute", 17, low=0, high=59),
    )
    r.check_unknown()
    return retention


def _check_db_url(t: _Table, url: str) -> None:
    """A database URL SQLAlchemy can read, without a password: that is a secret file."""
    match = re.match(r"^([a-z][a-z0-9+]*)://([^/?#]*)", url)
    if not match:
        raise t.error(
            f"{url!r} is not a database URL (sqlite:///state.sqlite, "
            "postgresql://user@host:5432/name)",
            "db_url",
        )
    userinfo = match.group(2).rpartition("@")[0]
    if ":" in userinfo:
        raise t.error(
            "must not hold a password (pipeline.toml is no place for secrets): write "
            "postgresql://user@host:port/name and put the password in the secrets "
            "file named by [conveyor] db_password_secret (default: db-password)",
            "db_url",
        )


def _project(
    t: _Table, name: str, root: Path, worker_names: tuple[str, ...], repository_worker: str
) -> Project:
    path = t.strs("path", _REQUIRED, DISTRIBUTION_NAME, "lower-case letters, digits, . and -")
    if len(set(path)) != len(path):
        raise t.error(f"names a distribution twice: {list(path)}", "path")
    upload_to = t.str("upload_to", path[0])
    if upload_to not in path:
        raise t.error(f"{upload_to!r} is not on this project's path {list(path)}", "upload_to")
    # build workers run the project's own code: never the worker that holds the signing key
    build_workers = tuple(w for w in worker_names if w != repository_worker)
    workers = t.strs("workers", build_workers or None, IDENTIFIER)
    if workers is None:
        raise t.error(
            f"needs a build worker: the only worker, {repository_worker!r}, is the "
            "repository's, which must never run a project's code; add one to "
            "[workers]",
            "workers",
        )
    for w in workers:
        if w not in worker_names:
            raise t.error(
                f"{w!r} is not one of the [workers]: {', '.join(worker_names)}", "workers"
            )
        if w == repository_worker:
            raise t.error(
                f"{w!r} is the repository's worker ([repository] worker): it holds "
                "the signing key and aptly's state, and must never run a project's "
                "code (tests, setup.py, debian/rules); name a build worker",
                "workers",
            )
    coverage_below = t.str("coverage_below", "failure")
    if coverage_below not in ("failure", "warnings"):
        raise t.error(f'must be "failure" or "warnings", not {coverage_below!r}', "coverage_below")
    installer = t.str("installer", "uv")
    if installer not in ("uv", "pip"):
        raise t.error(f'must be "uv" or "pip", not {installer!r}', "installer")
    groups = t.strs(
        "dependency_groups", (), EXTRA_NAME, "a dependency group's name", nonempty=False
    )
    if groups and installer != "uv":
        raise t.error(
            'dependency groups (PEP 735) are installed by uv: set installer = "uv" '
            "(pip learnt --group in 25.1, newer than Debian's)",
            "dependency_groups",
        )
    targets = t.strs("targets", (), nonempty=False)
    if problem := conveyor_targets.problem(targets):
        raise t.error(problem, "targets")
    lint_below = t.str("lint_below", "warnings")
    if lint_below not in ("failure", "warnings"):
        raise t.error(f'must be "failure" or "warnings", not {lint_below!r}', "lint_below")
    project = Project(
        name=name,
        github=t.str("github", _REQUIRED, GITHUB_NAME, "write it as owner/name"),
        clone_url=_clone_url(root, t.str("clone_url", _REQUIRED)),
        branch=t.str("branch", "main"),
        packages=t.strs("packages", _REQUIRED, PACKAGE_NAME, "a Debian package name"),
        path=path,
        upload_to=upload_to,
        workers=workers,
        requirements=t.strs("requirements", ("requirements-dev.txt",), nonempty=False),
        extras=t.strs("extras", (), EXTRA_NAME, "an extra's name", nonempty=False),
        dependency_groups=groups,
        test_runner=t.str(
            "test_runner",
            "pytest",
            re.compile(r"^[A-Za-z_][\w.]*$"),
            "a Python module name, run as python -m MODULE",
        ),
        test_args=t.strs("test_args", (), nonempty=False),
        coverage_threshold=t.number("coverage_threshold", 80, 0, 100),
        coverage_below=coverage_below,
        mail=t.strs("mail", (), EMAIL, "an e-mail address", nonempty=False),
        python=t.str("python", "/usr/bin/python3"),
        pull_requests=t.bool("pull_requests", True),
        install_check=t.bool("install_check", True),
        smoke=t.strs("smoke", None) or (),  # argv, e.g. ["/opt/venvs/myapp/bin/myapp", "--version"]
        lint=t.strs("lint", None) or (),  # argv: ["ruff", "check", "--output-format=json", "."]
        lint_below=lint_below,
        installer=installer,
        targets=targets,
    )
    t.check_unknown()
    return project


def _check_paths(t: _Table, projects: list[Project]) -> None:
    """Projects may share distributions, but then they must agree on the order of the path, and
    on the target releases (a distribution publishes one component per target)."""
    successor: dict[str, tuple[str | None, str]] = {}
    components: dict[str, Project] = {}
    for project in projects:
        for dist in project.path:
            other = components.setdefault(dist, project)
            if set(other.targets) != set(project.targets):
                why = f"{list(project.targets)} disagree with project {other.name!r}'s on {dist!r}"
                raise t.error(f"{why}, which both publish into", f"{project.name}.targets")
        for i, dist in enumerate(project.path):
            nxt = project.path[i + 1] if i + 1 < len(project.path) else None
            known = successor.get(dist)
            if known and known[0] and nxt and known[0] != nxt:
                other = known[1]
                raise t.error(
                    f"path disagrees with project {other!r} on what follows {dist!r}",
                    f"{project.name}.path",
                )
            if nxt or not known:
                successor[dist] = (nxt, project.name)
