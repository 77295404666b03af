"""A real PostgreSQL server for the integration tests: Debian's `postgresql` (15), started from a
fresh `initdb` in a directory under the test's own base, on a free port, as the unprivileged
`postgres` user, and stopped and removed afterwards whatever happens.

    with postgres_server(base) as pg:                  # or postgres_server(base, host="10.77.0.1",
        pg.url           # postgresql://conveyor@127.0.0.1:PORT/conveyor     netns="conveyor-db")
        pg.password      # the role's password (TCP needs it: scram-sha-256)
        host, port, user, password, dbname = pg
        pg.psql("SELECT count(*) FROM builds")         # as the superuser, over the unix socket

Connections over TCP authenticate with scram-sha-256, so a wrong or missing password is refused;
the superuser reaches the server over its unix socket only (trust, the socket is in a 0700
directory of the `postgres` user)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

BIN = Path("/usr/lib/postgresql/15/bin")
OS_USER = "postgres"


@dataclasses.dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    dbname: str
    data_dir: Path
    socket_dir: Path
    netns: str | None = None

    def __iter__(self):
        return iter((self.host, self.port, self.user, self.password, self.dbname))

    @property
    def url(self) -> str:
        """The db_url for pipeline.toml: no password in it (that is a secret file)."""
        return f"postgresql://{self.user}@{self._netloc()}/{self.dbname}"

    def url_with_password(self) -> str:
        """For tools that take one URL only (buildbot copy-db); never write it into a file."""
        return f"postgresql://{self.user}:{self.password}@{self._netloc()}/{self.dbname}"

    def _netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def psql(self, sql: str, dbname: str | None = None) -> str:
        """Run SQL as the superuser over the unix socket; the unaligned, tuples-only output."""
        return _as_postgres(
            [
                str(BIN / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                OS_USER,
                "-d",
                dbname or self.dbname,
                "-c",
                sql,
            ],
            cwd=self.data_dir,
        ).stdout.strip()


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family) as sock:
            sock.bind((host, 0))
            return sock.getsockname()[1]
    except OSError:  # an address of another network namespace: any port free here will do
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]


def _as_postgres(
    argv: list[str], cwd: Path, netns: str | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    proc = subprocess.run(
        [*prefix, "runuser", "-u", OS_USER, "--", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def _reachable_by_postgres(path: Path) -> None:
    """mkdtemp's directories are 0700: let the postgres user pass through (o+x, not o+r)."""
    for parent in [path, *path.parents]:
        if parent == Path("/"):
            break
        mode = parent.stat().st_mode
        if not mode & 0o001:
            os.chmod(parent, mode | 0o111)


@contextlib.contextmanager
def postgres_server(
    base: Path,
    host: str = "127.0.0.1",
    user: str = "conveyor",
    dbname: str = "conveyor",
    netns: str | None = None,
):
    """Start a PostgreSQL server for one test (module); yield a PostgresServer.

    host: the address it listens on (the only one); netns: a network namespace (ip netns) to
    start it in, for tests that put hosts in namespaces (the port is then picked in the
    default namespace, which is free there too as a fresh namespace has no listeners)."""
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="postgres-", dir=base))
    data_dir, socket_dir = root / "data", root / "run"
    password = secrets.token_urlsafe(18)  # [A-Za-z0-9_-]: safe inside an SQL literal
    started = False
    try:
        _reachable_by_postgres(root)
        socket_dir.mkdir(mode=0o700)
        shutil.chown(root, OS_USER, OS_USER)
        shutil.chown(socket_dir, OS_USER, OS_USER)
        os.chmod(root, 0o711)  # the postgres user owns it; others may only pass
        _as_postgres(
            [
                str(BIN / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                OS_USER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
            cwd=root,
        )
        with open(data_dir / "pg_hba.conf", "a") as hba:
            # any client address may try (the server listens on `host` only), with the password
            hba.write("host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n")
        port = _free_port(host)
        options = (
            f"-p {port} -k {socket_dir} -c listen_addresses={host} "
            "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        )
        started = True
        _as_postgres(
            [
                str(BIN / "pg_ctl"),
                "-D",
                str(data_dir),
                "-l",
                str(root / "server.log"),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            cwd=root,
            netns=netns,
        )
        server = PostgresServer(
            host=host,
            port=port,
            user=user,
            password=password,
            dbname=dbname,
            data_dir=data_dir,
            socket_dir=socket_dir,
            netns=netns,
        )
        server.psql(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'", dbname="postgres")
        server.psql(f"CREATE DATABASE {dbname} OWNER {user}", dbname="postgres")
        yield server
    except RuntimeError as exc:
        log = root / "server.log"
        if log.exists():
            raise RuntimeError(f"{exc}\nserver.log:\n{log.read_text()[-3000:]}") from exc
        raise
    finally:
        if started:
            _stop(data_dir, root)
        shutil.rmtree(root, ignore_errors=True)


def _stop(data_dir: Path, root: Path) -> None:
    proc = _as_postgres(
        [str(BIN / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "-t", "30", "stop"],
        cwd=root,
        check=False,
    )
    if proc.returncode == 0:
        return
    pid_file = data_dir / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError, IndexError):
        os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
