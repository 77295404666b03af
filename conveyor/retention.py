"""What retention keeps: the aptly snapshots still in use, the artifacts still young.

Plain functions (no Buildbot inside), used by steps/retention.py and tested on their own.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from conveyor import targets
from conveyor.release import ReleaseError
from conveyor.release import rollback_target


def snapshots_in_use(
    histories: dict[str, list[dict]], keep_states: int, published: dict[str, str]
) -> set[str]:
    """The snapshots that must stay: of each distribution, the states of its last
    `keep_states` history entries, what it publishes now and what a one-step rollback from
    there returns to (after rollbacks that may be an older state)."""
    keep = set(published.values())
    for dist, entries in histories.items():
        for entry in entries[-keep_states:] if keep_states > 0 else []:
            if entry.get("snapshot"):
                keep.add(entry["snapshot"])
        current = published.get(dist)
        if current:
            try:
                keep.add(rollback_target(entries, current, None)["snapshot"])
            except (ReleaseError, KeyError):
                pass  # the first state, or a current state the history does not know
    return keep


def snapshots_to_drop(existing: list[str], in_use: set[str]) -> list[str]:
    """Every existing snapshot not in use, oldest name first (names sort by time). What a
    component of a distribution with target releases publishes (`<state>~<target>`,
    conveyor/targets.py) is in use while its state is."""
    return sorted(
        name for name in existing if name and name.split(targets.DERIVED, 1)[0] not in in_use
    )


def expired_build_dirs(root: Path, older_than: float) -> list[Path]:
    """The build directories of an artifact store (`<root>/<builder>/<number>/`: packages,
    coverage report) in which nothing changed since `older_than` (seconds since the epoch)."""
    found = []
    if not root.is_dir():
        return found
    for builder in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        for build in sorted(p for p in builder.iterdir() if p.is_dir() and not p.is_symlink()):
            if _newest_mtime(build) < older_than:
                found.append(build)
    return found


def _newest_mtime(path: Path) -> float:
    newest = path.lstat().st_mtime
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            try:
                newest = max(newest, os.lstat(os.path.join(dirpath, name)).st_mtime)
            except FileNotFoundError:
                pass
    return newest


def remove_tree(path: Path) -> int:
    """Remove a directory; the bytes it held."""
    size = sum(os.lstat(os.path.join(d, f)).st_size for d, _, files in os.walk(path) for f in files)
    shutil.rmtree(path)
    return size
