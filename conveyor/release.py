"""The release model: snapshots, the promotion path's rules and plan, freezes, the history and
rollback targets. Plain functions with no Buildbot inside and no file format but Conveyor's own
(the history's JSON lines); the Debian formats (versions and their order, debian/changelog, the
`Packages` index) are conveyor/debformats.py's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime

from conveyor.debformats import compare_versions
from conveyor.debformats import newest
from conveyor.debformats import oldest_first
from conveyor.errors import ReleaseError


def snapshot_name(distribution: str, when: datetime, builder: str, number: int) -> str:
    """One immutable snapshot per change to a distribution, sortable by time."""
    stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{distribution}@{stamp}@{builder}-{number}"


# --- The promotion path -----------------------------------------------------------------------


def next_step(path: tuple[str, ...] | list[str], distribution: str) -> str | None:
    """The distribution after `distribution` on the path, or None at its end."""
    path = list(path)
    if distribution not in path:
        raise ReleaseError(f"{distribution!r} is not on the promotion path {' → '.join(path)}")
    i = path.index(distribution)
    return path[i + 1] if i + 1 < len(path) else None


def check_step(path, source: str, target: str) -> None:
    """Rule: a promotion moves one step along the path, from `source` to the next."""
    following = next_step(path, source)
    if target not in path:
        raise ReleaseError(f"{target!r} is not on the promotion path {' → '.join(path)}")
    if following is None:
        raise ReleaseError(
            f"rule 'one step at a time': {source} is the end of the path "
            f"{' → '.join(path)}; nothing follows it"
        )
    if target != following:
        raise ReleaseError(
            f"rule 'one step at a time': from {source} a version goes to "
            f"{following}, not {target} (path: {' → '.join(path)})"
        )


@dataclass(frozen=True)
class Plan:
    """What a promotion will do, decided from what the two distributions publish."""

    package: str
    version: str
    source: str
    target: str
    previous: str | None  # the newest version of the package in target before
    noop: bool  # the version is already in target


def plan_promotion(
    package: str,
    version: str | None,
    source: str,
    target: str,
    source_versions: set[str],
    target_versions: set[str],
) -> Plan:
    """Apply the rules; raise ReleaseError naming the rule that refuses."""
    if not source_versions:
        raise ReleaseError(f"rule 'version must be in the source': {source} has no {package}")
    if not version:
        version = newest(source_versions)
    elif version not in source_versions:
        raise ReleaseError(
            f"rule 'version must be in the source': {package} {version} is not in {source} "
            f"(it has {', '.join(oldest_first(source_versions))})"
        )
    previous = newest(target_versions)
    if version in target_versions:
        return Plan(package, version, source, target, previous, True)
    if previous is not None and compare_versions(version, previous) < 0:
        raise ReleaseError(
            f"rule 'no downgrade by promotion': {package} {version} is older than {previous} "
            f"in {target}; to go back, use the rollback builder"
        )
    return Plan(package, version, source, target, previous, False)


# --- Freeze: a distribution that takes no promotion ---------------------------------------------


def parse_freeze(text: str | None) -> dict | None:
    """A distribution's freeze file (`<history>/<dist>.freeze.json`, written by the `freeze`
    builder): {"frozen", "reason", "who", "when", "build"}; None when there is none."""
    if not (text or "").strip():
        return None
    state = json.loads(text)
    return state if isinstance(state, dict) else None


def freeze_refusal(dist: str, state: dict | None) -> str | None:
    """Why a promotion into `dist` is refused while it is frozen; None when it is not."""
    if not state or not state.get("frozen"):
        return None
    return (
        f"{dist} is frozen (by {state.get('who') or '?'} at {state.get('when') or '?'}: "
        f"{state.get('reason') or 'no reason given'}): no promotion into it until "
        f"`bin/conveyor unfreeze {dist}`; a rollback stays possible"
    )


# --- History: one JSON line per change of a distribution ---------------------------------------


def parse_history(text: str) -> list[dict]:
    return [json.loads(line) for line in (text or "").splitlines() if line.strip()]


def history_line(entry: dict) -> str:
    return json.dumps(entry, sort_keys=True) + "\n"


def rollback_target(history: list[dict], current: str, state: str | None) -> dict:
    """The history entry a rollback returns to: the one before `current` (never the empty
    state a distribution starts with: that one only when named), or `state`, which may be a
    snapshot name or an entry number (1 = the first)."""
    snapshots = [entry["snapshot"] for entry in history]
    if current not in snapshots:
        raise ReleaseError(f"the published snapshot {current} is not in the history")
    if state:
        if state.isdigit():
            number = int(state)
            if not 1 <= number <= len(history):
                raise ReleaseError(
                    f"there is no state {number}: the history has {len(history)} entries"
                )
            entry = history[number - 1]
        else:
            matches = [entry for entry in history if entry["snapshot"] == state]
            if not matches:
                raise ReleaseError(
                    f"{state!r} is not a state of this distribution (see its history)"
                )
            entry = matches[-1]
        if entry["snapshot"] == current:
            raise ReleaseError(f"{state} is what the distribution publishes now")
        return entry
    # "previous" walks back: from the state's first appearance, so that rolling back twice
    # goes two states back rather than undoing the first rollback
    index = snapshots.index(current)
    if index == 0:
        raise ReleaseError(
            "the distribution is at its first state: there is nothing to roll back to"
        )
    previous = history[index - 1]
    if previous.get("action") == "create":
        raise ReleaseError(
            f"the state before is the empty one the distribution started with "
            f"(state {previous['n']}): to empty it, name that state"
        )
    return previous
