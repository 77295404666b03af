"""Debian's formats as Conveyor reads and writes them, with python-debian: versions and their
order (`Version`, as dpkg compares them), the CI entry of debian/changelog (`Changelog`,
`ChangeBlock`), and the `Packages` index (`deb822.Packages`). Errors are ReleaseErrors that say
what is wrong.
"""

from __future__ import annotations

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

from conveyor.errors import ReleaseError
from conveyor.grammar import COMMIT_ID
from conveyor.grammar import DEBIAN_VERSION


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


def ci_version(head: ChangelogHead, build_number: int, revision: str, submitted: datetime) -> str:
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


def changelog_stanza(
    source: str, version: str, *, commit: str, build_url: str, timestamp: int, message: str
) -> str:
    """A debian/changelog entry for a CI build.

    The XB- keywords of the header become `Conveyor-Commit` and `Conveyor-Build` fields in the
    binary package's control file (deb-changelog(5)), so an installed package says where it came
    from. The date is the commit's, which makes the build reproducible (SOURCE_DATE_EPOCH).
    """
    block = ChangeBlock(
        package=source,
        version=version,
        distributions="UNRELEASED",
        urgency="medium",
        urgency_comment="",
        changes=["", f"  * {message}", ""],
        author="Conveyor <conveyor@localhost>",
        date=format_datetime(datetime.fromtimestamp(timestamp, tz=UTC)),
        other_pairs={
            "XB-Conveyor-Commit": check_commit(commit),
            "XB-Conveyor-Build": build_url.replace(",", "%2C").replace(" ", "%20"),
        },
    )
    return str(block).rstrip("\n") + "\n\n"


def packages_of(debs) -> set[str]:
    """The package names of .deb file names (`<package>_<version>_<arch>.deb`)."""
    return {deb.split("_", 1)[0] for deb in debs or []}


def deb_filename_version(version: str) -> str:
    """The version as it appears in a .deb's file name (dpkg drops the epoch)."""
    return version.split(":", 1)[1] if ":" in version else version


def parse_packages_stanzas(text: str) -> list[dict[str, str]]:
    """The stanzas of a `Packages` index that name a package and a version, each as
    {field: value}."""
    return [
        dict(stanza)
        for stanza in deb822.Packages.iter_paragraphs(text or "", use_apt_pkg=False)
        if stanza.get("Package") and stanza.get("Version")
    ]


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
