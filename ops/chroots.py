"""The clean-build chroots' bases: one tarball per target release, made by the trusted side.

A package build (worker/bin/conveyor-chroot-build) builds in a throwaway copy-on-write overlay of
its release's base (unpacked once per base, in the build user's cache); the base itself is made
here, by the operator's setup (`make run`, `python -m ops build-worker`), never by a build:

- with mmdebstrap's `buildd` variant from Debian's archive (the release, its -updates and its
  security suite), plus BASE_PACKAGES: what Python packages build with, so that most builds
  install few Build-Depends of their own;
- as root, into CHROOTS (`/var/cache/conveyor/chroots`, root's, read-only to the build user);
  without root, into the state directory (a developer's installation, one user anyway);
- written to a temporary name and renamed into place, under a machine-wide lock, so that a
  build never reads half a base;
- made again when older than MAX_AGE_DAYS, so builds get the release's security updates (a
  build runs `apt-get update` in its chroot when it installs Build-Depends the base lacks);
- unpacked beside it, once per base (`RELEASE-ARCH.root`, ensure_tree): the system a project's
  tests see on that release (worker/bin/conveyor-sandbox --release), read-only to them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

from ops import setup

CHROOTS = Path("/var/cache/conveyor/chroots")
MAX_AGE_DAYS = 7
BASE_PACKAGES = (
    "fakeroot",
    "debhelper",
    "dh-python",
    "python3-all",
    "python3-setuptools",
    "pybuild-plugin-pyproject",
    "python3-venv",
    "dh-virtualenv",
    "python3-wheel-whl",  # dh-virtualenv's --preinstall wheel (the demo's Build-Depends)
)
# what conveyor-sandbox --network lays over the tree's /etc from the host (the resolver, the
# trusted certificates, pip's index): bwrap binds onto paths that exist, in a read-only /etc
MOUNT_POINTS = ("etc/resolv.conf", "etc/hosts", "etc/pip.conf", "etc/ssl/certs/", "etc/xdg/pip/")
DEFAULTS = {"etc/hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"}
TREE_LAYOUT = 1  # made again by a Conveyor whose trees differ (e.g. more mount points)
OLD_TREE_DAYS = 1  # a replaced tree stays that long for the sandboxes still running on it
MIRROR = "http://deb.debian.org/debian"
SECURITY = "http://deb.debian.org/debian-security"


def machine_release() -> str:
    """This machine's Debian release (its codename), the default target."""
    fields = dict(
        line.split("=", 1)
        for line in Path("/etc/os-release").read_text().splitlines()
        if "=" in line
    )
    codename = fields.get("VERSION_CODENAME", "").strip('"')
    if not codename:
        raise RuntimeError(
            "/etc/os-release names no VERSION_CODENAME: the release to build for is unknown"
        )
    return codename


def releases(settings) -> list[str]:
    """The releases whose bases the clean builds need: every project's `targets`, and this
    machine's own for a project without (conveyor/targets.py)."""
    wanted: dict[str, None] = {}
    for project in settings.projects:
        for release in project.targets or (machine_release(),):
            wanted.setdefault(release, None)
    return list(wanted)


def architecture() -> str:
    return setup.run(["dpkg", "--print-architecture"]).stdout.strip()


def chroots_dir(state_dir: Path) -> Path:
    return CHROOTS if os.geteuid() == 0 else state_dir / "chroots"


def base_path(directory: Path, release: str, arch: str) -> Path:
    """Where conveyor-chroot-build looks for a release's base (its naming, kept in step)."""
    return directory / f"{release}-{arch}.tar.zst"


def archive_lines(release: str) -> list[str]:
    return [
        f"deb {MIRROR} {release} main",
        f"deb {MIRROR} {release}-updates main",
        f"deb {SECURITY} {release}-security main",
    ]


def ensure_base(directory: Path, release: str, *, refresh: bool = False) -> Path:
    """The base of `release` for this machine's architecture: made when missing, too old, or
    asked for (`refresh`)."""
    base = base_path(directory, release, architecture())
    with setup.machine_lock(f"chroot-{release}"):
        fresh = base.exists() and time.time() - base.stat().st_mtime < MAX_AGE_DAYS * 86400
        if fresh and not refresh:
            ensure_digest(base)
            ensure_tree(base)
            return base
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o755)
        partial = directory / f"partial-{base.name}"  # mmdebstrap compresses by the name's end
        partial.unlink(missing_ok=True)
        setup.say(f"making the {release} chroot base (mmdebstrap, about a minute): {base}")
        started = time.monotonic()
        setup.run(
            [
                "mmdebstrap",
                "--quiet",
                "--variant=buildd",
                f"--include={','.join(BASE_PACKAGES)}",
                '--aptopt=Acquire::Languages "none"',
                release,
                str(partial),
                *archive_lines(release),
            ]
        )
        os.chmod(partial, 0o644)
        partial.replace(base)
        setup.say(
            f"made the {release} chroot base in {time.monotonic() - started:.0f} s "
            f"({base.stat().st_size // 2**20} MiB)"
        )
        ensure_digest(base, again=True)
        ensure_tree(base)
        return base


def ensure_digest(base: Path, again: bool = False) -> str:
    """The base's sha256, written beside it (`<base>.sha256`) by the trusted side: what a
    package's provenance names as the chroot it was built in (worker/bin/conveyor-chroot-build
    --digest)."""
    written = base.with_name(base.name + ".sha256")
    if written.is_file() and not again:
        return written.read_text().strip()
    digest = hashlib.sha256()
    with open(base, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    written.with_name(written.name + ".partial").write_text(digest.hexdigest() + "\n")
    os.chmod(written.with_name(written.name + ".partial"), 0o644)
    written.with_name(written.name + ".partial").replace(written)
    return digest.hexdigest()


def tree_path(base: Path) -> Path:
    """Where conveyor-sandbox --release looks for a release's system (its naming, in step)."""
    return base.with_name(base.name.removesuffix(".tar.zst") + ".root")


def ensure_tree(base: Path) -> Path:
    """The base unpacked (as root: its owners and modes kept), when it is missing or older than
    the base. A tree made again replaces the old one by a rename: a sandbox running on the old
    one keeps it until OLD_TREE_DAYS later, when the next replacement removes it. Called under
    the release's machine lock (ensure_base)."""
    tree = tree_path(base)
    stamp = f"{TREE_LAYOUT} {int(base.stat().st_mtime)} {base.stat().st_size}\n"
    made = tree / ".conveyor-base"
    if made.is_file() and made.read_text() == stamp:
        return tree
    started = time.monotonic()
    partial = tree.with_name(f"partial-{tree.name}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(mode=0o755)
    # without /dev: the sandbox makes its own (and a user cannot make device nodes)
    setup.run(["tar", "--zstd", "--exclude=./dev/*", "-xf", str(base), "-C", str(partial)])
    for point in MOUNT_POINTS:
        path = partial / point.rstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        if point.endswith("/"):
            path.mkdir(exist_ok=True)
        elif path.is_symlink() or not path.exists() or not path.stat().st_size:
            path.unlink(missing_ok=True)
            path.write_text(DEFAULTS.get(point, ""))
    (partial / ".conveyor-base").write_text(stamp)
    os.chmod(partial, 0o755)
    for old in tree.parent.glob(f"old-{tree.name}-*"):
        if time.time() - int(old.name.rsplit("-", 1)[1]) > OLD_TREE_DAYS * 86400:
            shutil.rmtree(old, ignore_errors=True)
    if tree.exists():
        tree.rename(tree.with_name(f"old-{tree.name}-{int(time.time())}"))
    partial.rename(tree)
    setup.say(f"unpacked it for the tests' sandbox in {time.monotonic() - started:.0f} s: {tree}")
    return tree
