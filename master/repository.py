"""The release model: versions, changelog stamps, snapshots, the Packages index.

Plain functions with no Buildbot inside, shared by the steps, `ops/` and the tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone
from email.utils import format_datetime

# deb-policy 5.6.1: package names; what a promote request may name
PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
# deb-version(7): [epoch:]upstream[-revision]; upstream starts with a digit.
DEBIAN_VERSION = re.compile(
    r"^(?:(?P<epoch>[0-9]+):)?(?P<upstream>[0-9][A-Za-z0-9.+~:-]*?)(?:-(?P<revision>[A-Za-z0-9.+~]+))?$"
)
CHANGELOG_HEAD = re.compile(
    r"^(?P<source>[a-z0-9][a-z0-9+.-]+) \((?P<version>[^()\s]+)\) (?P<dists>[^;]+);(?P<rest>.*)$"
)


class ReleaseError(ValueError):
    """A release operation that cannot be done; the message says why."""


@dataclass(frozen=True)
class ChangelogHead:
    source: str
    version: str

    @property
    def epoch(self) -> str | None:
        return split_version(self.version)[0]

    @property
    def upstream(self) -> str:
        return split_version(self.version)[1]


def split_version(version: str) -> tuple[str | None, str, str | None]:
    match = DEBIAN_VERSION.match(version)
    if not match:
        raise ReleaseError(f"{version!r} is not a Debian version (deb-version(7))")
    return match.group("epoch"), match.group("upstream"), match.group("revision")


def parse_changelog_head(text: str) -> ChangelogHead:
    """The source name and version of the newest entry of a debian/changelog."""
    for line in text.splitlines():
        if not line.strip():
            continue
        match = CHANGELOG_HEAD.match(line)
        if not match:
            raise ReleaseError(f"debian/changelog does not start with an entry header: {line!r}")
        split_version(match.group("version"))
        return ChangelogHead(match.group("source"), match.group("version"))
    raise ReleaseError("debian/changelog is empty")


def ci_version(head: ChangelogHead, build_number: int, revision: str) -> str:
    """`<upstream>+ci<build number>.g<short sha>`: unique per build and newer than the last.

    The epoch is kept (dropping it would sort below released versions); the Debian revision is
    dropped, so the result is a native version, as built from a CI checkout.
    """
    if not re.fullmatch(r"[0-9a-f]{7,40}", revision or ""):
        raise ReleaseError(f"{revision!r} is not a git commit id")
    version = f"{head.upstream}+ci{int(build_number)}.g{revision[:7]}"
    return f"{head.epoch}:{version}" if head.epoch else version


def changelog_stanza(source: str, version: str, *, commit: str, build_url: str,
                     timestamp: int, message: str) -> str:
    """A debian/changelog entry for a CI build.

    The XB- keywords of the header become `Conveyor-Commit` and `Conveyor-Build` fields in the
    binary package's control file (deb-changelog(5)), so an installed package says where it came
    from. The date is the commit's, which makes the build reproducible (SOURCE_DATE_EPOCH).
    """
    when = format_datetime(datetime.fromtimestamp(timestamp, tz=timezone.utc))
    build_url = build_url.replace(",", "%2C").replace(" ", "%20")
    return (
        f"{source} ({version}) UNRELEASED; urgency=medium, "
        f"XB-Conveyor-Commit={commit}, XB-Conveyor-Build={build_url}\n"
        f"\n"
        f"  * {message}\n"
        f"\n"
        f" -- Conveyor <conveyor@localhost>  {when}\n"
        f"\n"
    )


def deb_filename_version(version: str) -> str:
    """The version as it appears in a .deb's file name (dpkg drops the epoch)."""
    return version.split(":", 1)[1] if ":" in version else version


def snapshot_name(distribution: str, when: datetime, builder: str, number: int) -> str:
    """One immutable snapshot per change to a distribution, sortable by time."""
    stamp = when.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{distribution}@{stamp}@{builder}-{number}"


def parse_packages_stanzas(text: str) -> list[dict[str, str]]:
    """The stanzas of a `Packages` index, each as {field: value} (continuation lines dropped)."""
    stanzas = []
    for stanza in re.split(r"\n\s*\n", text):
        fields = {
            key.strip(): value.strip()
            for key, value in (line.split(":", 1) for line in stanza.splitlines()
                               if line and not line.startswith((" ", "\t")) and ":" in line)
        }
        if fields.get("Package") and fields.get("Version"):
            stanzas.append(fields)
    return stanzas


def parse_packages_index(text: str) -> dict[str, set[str]]:
    """Package name -> versions listed in a `Packages` index."""
    found: dict[str, set[str]] = {}
    for fields in parse_packages_stanzas(text):
        found.setdefault(fields["Package"], set()).add(fields["Version"])
    return found


# --- Debian version order (deb-version(7)), for "newest" and "older than" ---------------------

def _order(char: str) -> int:
    if char == "~":
        return -1
    if char.isdigit():
        return 0
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _compare_part(a: str, b: str) -> int:
    """dpkg's verrevcmp: alternate non-digit runs (char order, ~ first) and digit runs."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def compare_versions(a: str, b: str) -> int:
    """<0, 0, >0 as Debian orders versions a and b (dpkg --compare-versions)."""
    ea, ua, ra = split_version(a)
    eb, ub, rb = split_version(b)
    return ((int(ea or 0) > int(eb or 0)) - (int(ea or 0) < int(eb or 0))
            or _compare_part(ua, ub) or _compare_part(ra or "", rb or ""))


def newest(versions) -> str | None:
    from functools import cmp_to_key
    ordered = sorted(versions, key=cmp_to_key(compare_versions))
    return ordered[-1] if ordered else None


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
            f"(it has {', '.join(sorted(source_versions, key=_sort_key))})")
    previous = newest(target_versions)
    if version in target_versions:
        return Plan(package, version, source, target, previous, True)
    if previous is not None and compare_versions(version, previous) < 0:
        raise ReleaseError(
            f"rule 'no downgrade by promotion': {package} {version} is older than {previous} "
            f"in {target}; to go back, use the rollback builder")
    return Plan(package, version, source, target, previous, False)


def _sort_key(version: str):
    from functools import cmp_to_key
    return cmp_to_key(compare_versions)(version)


# --- History: one JSON line per change of a distribution ---------------------------------------

def parse_history(text: str) -> list[dict]:
    import json
    return [json.loads(line) for line in (text or "").splitlines() if line.strip()]


def history_line(entry: dict) -> str:
    import json
    return json.dumps(entry, sort_keys=True) + "\n"


def rollback_target(history: list[dict], current: str, state: str | None) -> dict:
    """The history entry a rollback returns to: the one before `current`, or `state`, which
    may be a snapshot name or an entry number (1 = the first)."""
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
    return history[index - 1]
