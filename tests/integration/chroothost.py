"""A chroot standing in for a host that follows a distribution: its own root (a copy-on-write
overlay of the machine's chroot base, /var/cache/conveyor/chroots/<release>-amd64.root, which
is only read), its own host name (a UTS namespace), and the machine's network, so that it
reaches the repository and the master on 127.0.0.1 and Debian's mirror as a host would.

Each command runs as root in a fresh mount namespace that mounts the overlay, /proc, /dev and
the machine's resolv.conf, then chroots: nothing stays mounted after it, and the host's state
(its dpkg database, its /etc) is the overlay's upper layer, in the host's own directory, removed
at the end. `sudo` is a no-op in its shell (it is root), so a host runs the very lines
`bin/conveyor host-setup` prints.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

from ops import chroots

ROOT = Path(__file__).resolve().parents[2]
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MOUNT_AND_ENTER = """
mount -t overlay overlay -o "lowerdir=$LOWER,upperdir=$UPPER,workdir=$WORK" "$MERGED"
mount -t proc proc "$MERGED/proc"
mount --rbind /dev "$MERGED/dev"
[ -e "$MERGED/etc/resolv.conf" ] || : > "$MERGED/etc/resolv.conf"
mount --bind /etc/resolv.conf "$MERGED/etc/resolv.conf"
hostname "$HOST"
exec chroot "$MERGED" /usr/bin/env -i PATH="$CHROOT_PATH" HOME=/root LANG=C.UTF-8 \\
    DEBIAN_FRONTEND=noninteractive /bin/sh -ec 'sudo() { "$@"; }
'"$1"
"""


def base_tree(release: str | None = None) -> Path:
    """The unpacked chroot base of `release` (the machine's by default), which the trusted side
    keeps (ops/chroots.ensure_tree); a test never writes into it."""
    tree = chroots.CHROOTS / f"{release or chroots.machine_release()}-{chroots.architecture()}.root"
    if not (tree / "usr" / "bin" / "dpkg").exists():
        raise AssertionError(
            f"no chroot base tree at {tree}: `make run` (or ops.chroots.ensure_base) makes it"
        )
    return tree


class ChrootHost:
    def __init__(self, name: str, directory: Path, lower: Path):
        self.name, self.directory = name, directory
        # the base tree as it is now: the trusted side may replace it meanwhile (a rename,
        # ops/chroots.ensure_tree); this host's upper layer stays on the tree it began with
        self.lower_fd = os.open(lower, os.O_RDONLY | os.O_DIRECTORY)
        self.upper, self.work, self.merged = (directory / d for d in ("upper", "work", "root"))
        for path in (self.upper, self.work, self.merged):
            path.mkdir(parents=True, exist_ok=True)

    def run(
        self, script: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess:
        """`script` run by `sh -e` as root on this host; its output, and an AssertionError
        with it when it fails (unless `check` is false)."""
        env = {
            "PATH": PATH,
            "LOWER": self.lower(),
            "UPPER": str(self.upper),
            "WORK": str(self.work),
            "MERGED": str(self.merged),
            "HOST": self.name,
            "CHROOT_PATH": PATH,
        }
        proc = subprocess.run(
            ["unshare", "--mount", "--uts", "--fork", "--", "sh", "-ec", MOUNT_AND_ENTER, "host"]
            + [script],
            input=input or "",
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"on {self.name}: {script!r} failed ({proc.returncode}):\n"
                f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
            )
        return proc

    def lower(self) -> str:
        path = os.readlink(f"/proc/self/fd/{self.lower_fd}")
        if path.endswith(" (deleted)"):
            raise AssertionError(f"{self.name}: its chroot base tree was removed meanwhile")
        return path

    def close(self) -> None:
        os.close(self.lower_fd)
        shutil.rmtree(self.directory, ignore_errors=True)

    def set_up(self, commands: str, token: str | None = None) -> subprocess.CompletedProcess:
        """What a host's operator does: the host's token first (as `bin/conveyor host-token
        add` says), then the lines `bin/conveyor host-setup` printed. The chroot base has no
        curl, which those lines use: it comes from Debian's mirror first."""
        self.run("apt-get update -q && apt-get install -y -q --no-install-recommends curl")
        if token is not None:
            from conveyor import hostsetup

            self.run(hostsetup.token_command().removeprefix("sudo "), input=token + "\n")
        return self.run(commands)

    def installed_version(self, package: str) -> str | None:
        """The version dpkg has installed and configured (`install ok installed`), else None."""
        out = self.run(
            f"dpkg-query -W -f '${{Status}}\\t${{Version}}' {package} || true", check=False
        ).stdout
        status, _, version = out.partition("\t")
        return version if status == "install ok installed" else None

    def candidate(self, package: str) -> str:
        """The version apt would install now (`apt-cache policy`)."""
        out = self.run(f"apt-cache policy {package}").stdout
        for line in out.splitlines():
            if line.strip().startswith("Candidate:"):
                return line.split(":", 1)[1].strip()
        raise AssertionError(f"on {self.name}: apt-cache policy {package} has no candidate:\n{out}")

    def upgrade(self) -> subprocess.CompletedProcess:
        """What a host runs to follow its distribution (the last line of host-setup)."""
        return self.run("apt-get update -q && apt-get upgrade -y --allow-downgrades")


def host_setup_commands(settings, distribution: str) -> str:
    """What `bin/conveyor host-setup DIST` prints for this installation."""
    proc = subprocess.run(
        [str(ROOT / "bin" / "conveyor"), "--settings", str(settings.file), "host-setup"]
        + [distribution],
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout


@contextlib.contextmanager
def chroot_hosts(directory: Path, *names: str, release: str | None = None):
    """Hosts named `names`, each in its own directory below `directory`; removed afterwards."""
    if os.geteuid() != 0:
        raise AssertionError("chroot hosts need root (mount, chroot)")
    lower = base_tree(release)
    hosts = [ChrootHost(name, directory / f"host-{name}", lower) for name in names]
    try:
        yield hosts
    finally:
        for host in hosts:
            host.close()
