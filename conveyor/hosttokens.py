"""The hosts' report tokens: one per host, revocable, kept on the master's machine only.

`bin/conveyor host-token add HOST` makes a random token, prints it once and keeps only its
SHA-256 with the host's name and the time, in `<state_dir>/hosts/tokens.json` (mode 0600, owned
as the state directory, written whole and renamed into place). The master reads that file at each
report (master/hostreports.py), so `host-token revoke HOST` takes effect at the next report,
without a restart. A revoked host keeps its entry (when, and that it is revoked) until it gets a
new token.

No token is ever written anywhere but the operator's terminal and the host's own
/etc/conveyor/report.token; what is kept cannot be turned back into one.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from datetime import UTC
from datetime import datetime
from pathlib import Path

from conveyor.grammar import HOST_NAME

TOKEN_BYTES = 32  # 256 bits of randomness, as URL-safe base64 (43 characters)
MAX_TOKEN = 200  # characters: longer is not one of ours, refused before hashing


class TokenError(Exception):
    """A request about a token that cannot be done as asked (the message says why)."""


def hosts_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "hosts"


def tokens_file(state_dir: Path) -> Path:
    return hosts_dir(state_dir) / "tokens.json"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_host(host: str) -> str:
    if not isinstance(host, str) or not HOST_NAME.match(host):
        raise TokenError(
            f"{host!r} is not a host name (letters, digits and hyphens, labels joined by dots)"
        )
    return host


def load(path: Path) -> dict[str, dict]:
    """host -> {"sha256", "added", "revoked"} (revoked: the time, or None); {} if no file."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise TokenError(f"{path} cannot be read: {exc}") from None
    hosts = data.get("hosts") if isinstance(data, dict) else None
    if not isinstance(hosts, dict):
        raise TokenError(f"{path} is not a token file (no 'hosts' table)")
    return hosts


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` whole (a new file renamed over the old), mode 0600, owned as its
    directory's parent (the state directory: the master's user reads it)."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    owner = path.parent.parent.stat()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        if os.geteuid() == 0:
            for made in (tmp, path.parent):
                os.chown(made, owner.st_uid, owner.st_gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save(path: Path, hosts: dict[str, dict]) -> None:
    write_private(path, json.dumps({"hosts": hosts}, indent=1, sort_keys=True) + "\n")


def now_text(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).isoformat(timespec="seconds")


def add(path: Path, host: str, now: datetime | None = None) -> str:
    """A new token for `host` (returned, never kept); refused while the host has one."""
    check_host(host)
    hosts = load(path)
    entry = hosts.get(host)
    if entry and not entry.get("revoked"):
        raise TokenError(
            f"{host} has a token already (added {entry.get('added')}): revoke it first "
            f"(host-token revoke {host}), then add a new one"
        )
    token = secrets.token_urlsafe(TOKEN_BYTES)
    hosts[host] = {"sha256": digest(token), "added": now_text(now), "revoked": None}
    save(path, hosts)
    return token


def revoke(path: Path, host: str, now: datetime | None = None) -> None:
    check_host(host)
    hosts = load(path)
    entry = hosts.get(host)
    if entry is None:
        raise TokenError(f"{host} has no token (known: {', '.join(sorted(hosts)) or 'none'})")
    if entry.get("revoked"):
        raise TokenError(f"{host}'s token was revoked already ({entry['revoked']})")
    entry["revoked"] = now_text(now)
    save(path, hosts)


def host_of(hosts: dict[str, dict], token: str | None) -> str | None:
    """The host whose valid (not revoked) token this is, or None. Every entry is compared in
    constant time, so the answer's time says nothing about which hashes are near."""
    if not token or len(token) > MAX_TOKEN:
        return None
    wanted = digest(token).encode()
    found = None
    for host, entry in sorted(hosts.items()):
        stored = str(entry.get("sha256") or "").encode()
        if hmac.compare_digest(stored, wanted) and not entry.get("revoked"):
            found = host
    return found


def revoked(hosts: dict[str, dict]) -> set[str]:
    return {host for host, entry in hosts.items() if entry.get("revoked")}
