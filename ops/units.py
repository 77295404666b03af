"""systemd units of the hosts' set-up (ops/hosts.py): the shipped ones (ops/systemd/) with a
host's paths and user filled in, installed; and, on machines without systemd as PID 1 (a
container, the tests), each unit's ExecStart run the way systemd would, and stopped."""

from __future__ import annotations

import ctypes
import grp
import os
import pwd
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

from ops import services
from ops import setup
from ops.setup import ROOT
from ops.setup import run
from ops.setup import say

UNITS = ROOT / "ops" / "systemd"
SYSTEM_PATH = setup.SYSTEM_PATH
PR_SET_NO_NEW_PRIVS = 38  # prctl(2)
# $1 1 for PrivateTmp=, $2 how many ReadWritePaths= follow, then the command (setpriv …)
PROTECT = r"""set -e
private=$1 n=$2
shift 2
mount -o remount,bind,ro /
while [ "$n" -gt 0 ]; do
    mount --bind "$1" "$1"
    mount -o remount,bind,rw "$1"
    shift
    n=$((n - 1))
done
if [ "$private" = 1 ]; then
    mount -t tmpfs -o mode=1777 tmpfs /tmp
    mount -t tmpfs -o mode=1777 tmpfs /var/tmp
fi
exec "$@"
"""


def render_unit(
    name: str, paths: dict[str, str], user: str | None, exec_start: str | None = None
) -> str:
    """A shipped unit (ops/systemd/NAME) with this host's paths (longest first), user and
    ExecStart filled in."""
    text = (UNITS / name).read_text()
    for default in sorted(paths, key=len, reverse=True):
        text = text.replace(default, paths[default])
    if user:
        text = re.sub(r"(?m)^User=.*$", f"User={user}", text)
        text = re.sub(r"(?m)^Group=.*$", f"Group={user}", text)
    if exec_start:
        text = re.sub(r"(?m)^ExecStart=.*$", lambda _: f"ExecStart={exec_start}", text)
    return text


def install_units(unit_dir: Path, units: dict[str, str], enable: list[str]) -> None:
    """Write the units; with systemd running, reload it and enable and start `enable`."""
    unit_dir.mkdir(parents=True, exist_ok=True)
    for name, text in units.items():
        (unit_dir / name).write_text(text)
        say(f"wrote {unit_dir / name}")
    if systemd_running() and unit_dir == Path("/etc/systemd/system"):
        run(["systemctl", "daemon-reload"])
        run(["systemctl", "enable", "--now", *enable])
        say(f"enabled and started {', '.join(enable)}")


def systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir()


def start_unit(unit: Path, instance: str = "", pidfile: Path | None = None) -> int:
    """Run a unit's ExecStart as systemd would (User=, WorkingDirectory=, Environment=,
    EnvironmentFile=, UMask=, NoNewPrivileges=, ProtectSystem=strict with ReadWritePaths= and
    PrivateTmp=, after ExecStartPre=), in the background; its pid, also written to `pidfile`
    (what --stop reads). For machines without systemd as PID 1."""
    fields: dict[str, list[str]] = {}
    for line in unit.read_text().replace("%i", instance).splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith(("#", ";", "[")):
            fields.setdefault(key.strip(), []).append(value.strip())
    env = {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"}
    for assignment in fields.get("Environment", []):
        for word in shlex.split(assignment):
            key, _, value = word.partition("=")
            env[key] = value
    for file in fields.get("EnvironmentFile", []):
        for line in Path(file.lstrip("-")).read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not line.startswith("#"):
                env[key.strip()] = value.strip()
    user = fields.get("User", [None])[-1]
    entry = pwd.getpwnam(user) if user else None
    if entry:
        env.update({"HOME": env.get("HOME", entry.pw_dir), "USER": user, "LOGNAME": user})
    workdir = fields.get("WorkingDirectory", ["/"])[-1]
    umask = int(fields.get("UMask", ["0022"])[-1], 8)
    log = open(Path(workdir) / f"{unit.name.replace('@', '-')}.start.log", "ab")

    def says(key: str) -> bool:  # a boolean setting of the unit, as systemd reads "yes"
        return fields.get(key, ["no"])[-1] in ("yes", "true", "1")

    no_new_privs = says("NoNewPrivileges")
    # ProtectSystem=strict (as root: a mount namespace needs it): the file system read-only but
    # ReadWritePaths=, /dev, /proc and /sys, with PrivateTmp='s own /tmp and /var/tmp; then
    # User= (setpriv). Not ProtectHome=: a virtualenv's Python may live in /root (pyenv).
    protect = fields.get("ProtectSystem", ["no"])[-1] == "strict" and os.geteuid() == 0

    def enter():
        os.umask(umask)
        if no_new_privs and not protect:  # as systemd sets it: set-uid programs gain nothing
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)

    def command(line: str) -> list[str]:
        if not protect:
            return shlex.split(line)
        writable = [
            path.lstrip("-")
            for value in fields.get("ReadWritePaths", [])
            for path in shlex.split(value)
            if not path.startswith("-") or Path(path[1:]).exists()
        ]
        become = ["setpriv"]
        if entry:
            become += ["--clear-groups", f"--reuid={user}", f"--regid={entry.pw_gid}"]
        if no_new_privs:
            become.append("--no-new-privs")
        return [
            *("unshare", "--mount", "--propagation", "slave", "sh", "-c", PROTECT, "protect"),
            "1" if says("PrivateTmp") else "0",
            str(len(writable)),
            *writable,
            *become,
            "--",
            *shlex.split(line),
        ]

    as_user = {
        "cwd": workdir,
        "env": env,
        "stdin": subprocess.DEVNULL,
        "stdout": log,
        "stderr": subprocess.STDOUT,
        "preexec_fn": enter,
    }
    if entry and not protect:
        group = grp.getgrgid(entry.pw_gid).gr_name
        as_user.update({"user": user, "group": group, "extra_groups": []})
    for line in fields.get("ExecStartPre", []):
        if subprocess.run(command(line), **as_user).returncode != 0:
            log.close()
            raise RuntimeError(f"{unit.name}: ExecStartPre={line} failed: see {log.name}")
    proc = subprocess.Popen(command(fields["ExecStart"][-1]), start_new_session=True, **as_user)
    log.close()
    if pidfile:  # `buildbot start --nodaemon` writes none
        pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def stop_pids(pidfiles: list[Path], pids: list[int] = ()) -> None:
    """Stop each process named by a pid file (or pid), waiting up to 20 s each."""
    for pid in [*(services.read_pid(p) for p in pidfiles), *pids]:
        if not pid:
            continue
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + 20
        while services.alive(pid):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.2)
    for path in pidfiles:
        path.unlink(missing_ok=True)


def running(pidfile: Path) -> bool:
    """What --start started before is still running: it is left alone."""
    return services.read_pid(pidfile) is not None
