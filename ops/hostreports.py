"""What runs where, from a terminal: the hosts' tokens (`bin/conveyor host-token`, on the
master's machine, as root or the master's user) and the hosts' versions (`bin/conveyor status`,
read from the master's `GET <web url>hosts`, conveyor/hostreports.py).

    conveyor host-token add HOST      a new token for HOST, printed once (only its hash is kept)
    conveyor host-token revoke HOST   HOST's reports are refused from now on (no restart)
    conveyor host-token list          every host with a token: when added, whether revoked
"""

from __future__ import annotations

import sys

from conveyor import hostsetup
from conveyor import hosttokens
from conveyor.settings import Settings
from ops.api import FORBIDDEN
from ops.api import OK
from ops.api import REFUSED
from ops.api import UNREACHABLE
from ops.api import ApiError
from ops.api import Master
from ops.api import reader


def host_token(settings: Settings, action: str, host: str | None) -> int:
    path = hosttokens.tokens_file(settings.state_dir)
    try:
        if action == "list":
            hosts = hosttokens.load(path)
            for name, entry in sorted(hosts.items()):
                state = f"revoked {entry['revoked']}" if entry.get("revoked") else "valid"
                print(f"{name}  added {entry.get('added')}  {state}")
            if not hosts:
                print(f"no host has a token ({path})")
            return OK
        if not host:
            print(f"conveyor: host-token {action} needs the host's name", file=sys.stderr)
            return REFUSED
        if action == "revoke":
            hosttokens.revoke(path, host)
            print(f"{host}: token revoked; its reports are refused from now on")
            return OK
        token = hosttokens.add(path, host)
    except hosttokens.TokenError as exc:
        print(f"conveyor: {exc}", file=sys.stderr)
        return REFUSED
    except PermissionError as exc:
        print(
            f"conveyor: {exc.filename}: permission denied: run this as root or as the "
            "master's user, on the master's machine",
            file=sys.stderr,
        )
        return FORBIDDEN
    print(f"token of {host} (shown this once; the master keeps only its hash):\n\n  {token}\n")
    print(f"on {host}, as root: paste it after this command, then Enter and Ctrl-D:\n")
    print(f"  {hostsetup.token_command()}\n")
    print("then `sudo conveyor-report` reports at once (apt's hook does after each dpkg run)")
    return OK


def read_view(settings: Settings, master: Master | None = None) -> dict | None:
    """The master's view of what runs where (GET hosts), logging in when it must; None (said
    on stderr) when the master cannot be reached."""
    master = master or reader(settings)
    try:
        try:
            return master.request("hosts")
        except ApiError as exc:
            if exc.code != FORBIDDEN or master.credentials is None:
                raise
        master.login(*master.credentials)
        return master.request("hosts")
    except ApiError as exc:
        if exc.code != UNREACHABLE:
            raise
        print(f"conveyor: no hosts listed: {exc}", file=sys.stderr)
        return None


def print_hosts(view: dict | None) -> None:
    """Per distribution with reports: each host's versions, and which lag behind."""
    for dist in (view or {}).get("distributions") or []:
        if not dist["hosts"]:
            continue
        print(f"\nhosts of {dist['distribution']}:")
        for host in dist["hosts"]:
            for row in host["packages"]:
                if not row["running"]:
                    state = f"not running ({row['status']})"
                elif row["lags"]:
                    serves = ", ".join(row["served"]) or "none"
                    state = f"LAGS: {dist['distribution']} serves {serves}"
                elif row["lags"] is None:
                    state = "(what the distribution serves is unknown)"
                else:
                    state = "current"
                revoked = "  [token revoked]" if host["revoked"] else ""
                print(
                    f"  {host['host']}  {row['name']} {row['version'] or '-'}  {state}  "
                    f"(reported {host['received']}){revoked}"
                )
