"""The release model: versions, changelog stamps, snapshots, the Packages index.

Plain functions with no Buildbot inside, shared by the steps, `ops/` and the tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone
from email.utils import format_datetime

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


def parse_packages_index(text: str) -> dict[str, set[str]]:
    """Package name -> versions listed in a `Packages` index."""
    found: dict[str, set[str]] = {}
    for stanza in re.split(r"\n\s*\n", text):
        fields = dict(
            line.split(":", 1) for line in stanza.splitlines()
            if line and not line.startswith((" ", "\t")) and ":" in line
        )
        name, version = fields.get("Package", "").strip(), fields.get("Version", "").strip()
        if name and version:
            found.setdefault(name, set()).add(version)
    return found
