"""Benchmark: the extra cost of a clean build. Prints figures.

    .venv/bin/python bench/chroot_build.py [--rounds 3] [--package examples/snowbird]

The same source package (the demo's by default: dh-virtualenv), built alternately, round by
round, two ways (three with --sbuild):
- host: `dpkg-buildpackage -b` in the checkout, with the Build-Depends installed on this host
  (the way Conveyor built before its clean builds; the baseline);
- chroot: worker/bin/conveyor-chroot-build, as the deb step runs it: a throwaway overlay of the base
  of this machine's release (unpacked once, in the build user's cache, as the build workers
  have it: the first build of a base unpacks it, timed apart), the Build-Depends the base lacks
  installed there, dpkg-buildpackage without network;
- with --sbuild: what the clean build ran until 2026-12-06, `sbuild --chroot-mode=unshare` with
  the same base (unpacked for every build) and its settings then (needs sbuild installed).
All as the build user. Prints each median, and each ratio to the host's and difference.
Needs root (the build user and its subordinate ids), the base (made when missing:
ops/chroots.py) and, for the baseline, the package's Build-Depends on this host
(dpkg-checkbuilddeps says which are missing).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ops import chroots  # noqa: E402
from ops import setup  # noqa: E402

SBUILD = ROOT / "worker" / "bin" / "conveyor-chroot-build"
# sbuild's settings as conveyor-chroot-build had them (--sbuild)
SBUILDRC = """$purge_build_directory = 'always'; $purge_session = 'always';
$purge_build_deps = 'always'; $run_lintian = 0; $run_piuparts = 0; $run_autopkgtest = 0;
$apt_upgrade = 0; $apt_distupgrade = 0; $build_arch_all = 1; $build_arch_any = 1;
$build_source = 0; 1;
"""


def as_build_user(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.monotonic()
    proc = subprocess.run(
        [
            "runuser",
            "-u",
            setup.BUILD_USER,
            "--",
            "env",
            *(f"{k}={v}" for k, v in env.items()),
            *argv,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--package", type=Path, default=ROOT / "examples" / "snowbird")
    parser.add_argument(
        "--sbuild", action="store_true", help="also sbuild --chroot-mode=unshare, as before"
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the builds run as the build user, with its subordinate ids")
    missing = subprocess.run(
        ["dpkg-checkbuilddeps"], cwd=args.package, capture_output=True, text=True
    )
    if missing.returncode != 0:
        sys.exit(f"the baseline builds on this host: {missing.stderr.strip()}")
    setup.ensure_build_user()
    release = chroots.machine_release()
    base = chroots.ensure_base(chroots.CHROOTS, release)
    work = Path(tempfile.mkdtemp(prefix="chroot-bench-", dir="/srv"))
    os.chmod(work, 0o755)
    try:
        source = work / "src"
        shutil.copytree(
            args.package,
            source,
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache"),
        )
        subprocess.run(["dpkg-source", "--build", "."], cwd=source, check=True, capture_output=True)
        subprocess.run(
            ["chown", "-R", f"{setup.BUILD_USER}:{setup.BUILD_USER}", str(work)], check=True
        )
        (dsc,) = work.glob("*.dsc")
        env = {
            "HOME": str(work),
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "CONVEYOR_CHROOTS": str(base.parent),
            "XDG_CACHE_HOME": str(setup.BUILD_CACHE),  # as the build workers have it
            "LANG": "C.UTF-8",
        }
        rc = work / "sbuildrc"
        rc.write_text(f"$unshare_tmpdir_template = '/dev/shm/chroot-bench.XXXXXXXXXX';\n{SBUILDRC}")
        old = [
            "sbuild",
            "--chroot-mode=unshare",
            f"--chroot={base}",
            f"--dist={release}",
            "--nolog",
            "--build-dir=.",
            dsc.name,
        ]
        # the first build of this base: unpacks it into the cache when it is not there yet
        first = as_build_user([str(SBUILD), release, str(dsc)], work, env)
        host, chroot, sbuild = [], [], []
        for _ in range(args.rounds):
            host.append(
                as_build_user(
                    ["dpkg-buildpackage", "-b", "-us", "-uc"],
                    source,
                    {**env, "DEB_BUILD_OPTIONS": "nocheck"},
                )
            )
            chroot.append(as_build_user([str(SBUILD), release, str(dsc)], work, env))
            if args.sbuild:
                sbuild.append(
                    as_build_user(
                        old, work, {**env, "SBUILD_CONFIG": str(rc), "DEB_BUILD_OPTIONS": "nocheck"}
                    )
                )
        print(
            f"package: {args.package.name}, release {release}, base {base} "
            f"({base.stat().st_size // 2**20} MiB), {args.rounds} rounds, alternating"
        )
        print(f"{'the first build of the base (unpacked if not yet)':<56} {first:6.1f} s")
        for name, seconds in (
            ("host: dpkg-buildpackage (Build-Depends on the host)", host),
            ("chroot: conveyor-chroot-build (an overlay of the base)", chroot),
            ("chroot: sbuild --chroot-mode=unshare (as before)", sbuild),
        ):
            if not seconds:
                continue
            print(
                f"{name:<56} median {statistics.median(seconds):6.1f} s  "
                f"min {min(seconds):5.1f}  max {max(seconds):5.1f}"
            )
        for name, seconds in (("conveyor-chroot-build", chroot), ("sbuild", sbuild)):
            if seconds:
                ratio = statistics.median(seconds) / statistics.median(host)
                extra = statistics.median(seconds) - statistics.median(host)
                print(f"{name + ' / host':<56} {ratio:6.2f}x  ({extra:+.1f} s a build)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
