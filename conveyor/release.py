"""The release model: versions, changelog stamps, snapshots, the `Packages` index, the promotion
path's rules, the history and rollback targets.

Plain functions with no Buildbot inside, shared by the steps, `ops/` and the tests. Debian's
formats are read and written with python-debian: `Version` orders versions as dpkg does,
`Changelog` reads and writes debian/changelog, `deb822.Packages` reads an index.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from email.utils import format_datetime

from debian import deb822
from debian.changelog import ChangeBlock
from debian.changelog import Changelog
from debian.changelog import ChangelogParseError
from debian.changelog import topline as changelog_topline
from debian.debian_support import Version

from conveyor.grammar import COMMIT_ID
from conveyor.grammar import DEBIAN_VERSION


class ReleaseError(ValueError):
    """A release operation that cannot be done; the message says why."""


@dataclass(frozen=True)
class ChangelogHead:
    source: str
    version: str

    @property
    def epoch(self) -> str | None:
        return Version(self.version).epoch

    @property
    def upstream(self) -> str:
        return Version(self.version).upstream_version


def check_version(version: str) -> Version:
    """The version, parsed; ReleaseError unless it is a Debian version (deb-version(7))."""
    if not isinstance(version, str) or not DEBIAN_VERSION.match(version):
        raise ReleaseError(f"{version!r} is not a Debian version (deb-version(7))")
    return Version(version)


def check_commit(commit: str) -> str:
    """The commit id, if it is one (7-40 hex digits): never an option or a ref name for git."""
    if not isinstance(commit, str) or not COMMIT_ID.match(commit):
        raise ReleaseError(f"{commit!r} is not a git commit id")
    return commit


def parse_changelog_head(text: str) -> ChangelogHead:
    """The source name and version of the newest entry of a debian/changelog."""
    if not text.strip():
        raise ReleaseError("debian/changelog is empty")
    first = next(line for line in text.splitlines() if line.strip())
    if not changelog_topline.match(first):
        raise ReleaseError(f"debian/changelog does not start with an entry header: {first!r}")
    try:
        changelog = Changelog(text, max_blocks=1, strict=False)
    except (ChangelogParseError, ValueError) as exc:
        raise ReleaseError(f"debian/changelog: {exc}") from None
    version = str(changelog.version)
    check_version(version)
    return ChangelogHead(changelog.package, version)


def ci_version(head: ChangelogHead, build_number: int, revision: str,
               submitted: datetime) -> str:
    """`<upstream>+ci<YYYYMMDD>.<HHMMSS>.<build number>.g<short sha>`: unique per build and
    newer than the last, across a lost, reset or migrated master database.

    `submitted` is when the push reached the master (its build request, UTC, the master's
    clock); the build number breaks ties within a second. dpkg compares the date, then the
    time, then the build number as numbers, so versions sort as the pushes came, and above
    every version of the old scheme `+ci<build number>.g<sha>` (a date is a larger number than
    any build number). The epoch is kept (dropping it would sort below released versions); the
    Debian revision is dropped, so the result is a native version, as built from a CI checkout.
    """
    check_commit(revision or "")
    stamp = submitted.astimezone(UTC).strftime("%Y%m%d.%H%M%S")
    version = f"{head.upstream}+ci{stamp}.{int(build_number)}.g{revision[:7]}"
    return f"{head.epoch}:{version}" if head.epoch else version


def changelog_stanza(source: str, version: str, *, commit: str, build_url: str,
                     timestamp: int, message: str) -> str:
    """A debian/changelog entry for a CI build.

    The XB- keywords of the header become `Conveyor-Commit` and `Conveyor-Build` fields in the
    binary package's control file (deb-changelog(5)), so an installed package says where it came
    from. The date is the commit's, which makes the build reproducible (SOURCE_DATE_EPOCH).
    """
    block = ChangeBlock(
        package=source, version=version, distributions="UNRELEASED", urgency="medium",
        urgency_comment="",
        changes=["", f"  * {message}", ""],
        author="Conveyor <conveyor@localhost>",
        date=format_datetime(datetime.fromtimestamp(timestamp, tz=UTC)),
        other_pairs={"XB-Conveyor-Commit": check_commit(commit),
                     "XB-Conveyor-Build": build_url.replace(",", "%2C").replace(" ", "%20")},
    )
    return str(block).rstrip("\n") + "\n\n"


def deb_filename_version(version: str) -> str:
    """The version as it appears in a .deb's file name (dpkg drops the epoch)."""
    return version.split(":", 1)[1] if ":" in version else version


def snapshot_name(distribution: str, when: datetime, builder: str, number: int) -> str:
    """One immutable snapshot per change to a distribution, sortable by time."""
    stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{distribution}@{stamp}@{builder}-{number}"


def parse_packages_stanzas(text: str) -> list[dict[str, str]]:
    """The stanzas of a `Packages` index that name a package and a version, each as
    {field: value}."""
    return [dict(stanza) for stanza in deb822.Packages.iter_paragraphs(text or "",
                                                                      use_apt_pkg=False)
            if stanza.get("Package") and stanza.get("Version")]


def parse_packages_index(text: str) -> dict[str, set[str]]:
    """Package name -> versions listed in a `Packages` index."""
    found: dict[str, set[str]] = {}
    for fields in parse_packages_stanzas(text):
        found.setdefault(fields["Package"], set()).add(fields["Version"])
    return found


def compare_versions(a: str, b: str) -> int:
    """<0, 0, >0 as Debian orders versions a and b (dpkg --compare-versions)."""
    va, vb = check_version(a), check_version(b)
    return (va > vb) - (va < vb)


def newest(versions) -> str | None:
    return max(versions, key=check_version, default=None)


def oldest_first(versions) -> list[str]:
    return sorted(versions, key=check_version)


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
        raise ReleaseError(f"rule 'one step at a time': {source} is the end of the path "
                           f"{' → '.join(path)}; nothing follows it")
    if target != following:
        raise ReleaseError(f"rule 'one step at a time': from {source} a version goes to "
                           f"{following}, not {target} (path: {' → '.join(path)})")


@dataclass(frozen=True)
class Plan:
    """What a promotion will do, decided from what the two distributions publish."""
    package: str
    version: str
    source: str
    target: str
    previous: str | None      # the newest version of the package in target before
    noop: bool                # the version is already in target


def plan_promotion(package: str, version: str | None, source: str, target: str,
                   source_versions: set[str], target_versions: set[str]) -> Plan:
    """Apply the rules; raise ReleaseError naming the rule that refuses."""
    if not source_versions:
        raise ReleaseError(f"rule 'version must be in the source': {source} has no {package}")
    if not version:
        version = newest(source_versions)
    elif version not in source_versions:
        raise ReleaseError(
            f"rule 'version must be in the source': {package} {version} is not in {source} "
            f"(it has {', '.join(oldest_first(source_versions))})")
    previous = newest(target_versions)
    if version in target_versions:
        return Plan(package, version, source, target, previous, True)
    if previous is not None and compare_versions(version, previous) < 0:
        raise ReleaseError(
            f"rule 'no downgrade by promotion': {package} {version} is older than {previous} "
            f"in {target}; to go back, use the rollback builder")
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
    return (f"{dist} is frozen (by {state.get('who') or '?'} at {state.get('when') or '?'}: "
            f"{state.get('reason') or 'no reason given'}): no promotion into it until "
            f"`bin/conveyor unfreeze {dist}`; a rollback stays possible")


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
                raise ReleaseError(f"there is no state {number}: the history has "
                                   f"{len(history)} entries")
            entry = history[number - 1]
        else:
            matches = [entry for entry in history if entry["snapshot"] == state]
            if not matches:
                raise ReleaseError(f"{state!r} is not a state of this distribution "
                                   "(see its history)")
            entry = matches[-1]
        if entry["snapshot"] == current:
            raise ReleaseError(f"{state} is what the distribution publishes now")
        return entry
    # "previous" walks back: from the state's first appearance, so that rolling back twice
    # goes two states back rather than undoing the first rollback
    index = snapshots.index(current)
    if index == 0:
        raise ReleaseError("the distribution is at its first state: there is nothing to roll "
                           "back to")
    previous = history[index - 1]
    if previous.get("action") == "create":
        raise ReleaseError(f"the state before is the empty one the distribution started with "
                           f"(state {previous['n']}): to empty it, name that state")
    return previous
