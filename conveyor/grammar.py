"""The grammar of every name Conveyor takes from a person or a file: one pattern per kind, used
by the settings, the users file, the release model and the web forms alike."""

import re

# deb-policy 5.6.1: package names are lower case letters, digits, + - . ; at least two
# characters, starting with an alphanumeric.
PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
# Distribution names are aptly snapshot names and URL parts: a conservative subset.
DISTRIBUTION_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
# deb-version(7): [epoch:]upstream[-revision]; upstream starts with a digit.
DEBIAN_VERSION = re.compile(
    r"^(?:(?P<epoch>[0-9]+):)?(?P<upstream>[0-9][A-Za-z0-9.+~:-]*?)"
    r"(?:-(?P<revision>[A-Za-z0-9.+~]+))?$"
)
# a git commit id as Conveyor records it (Conveyor-Commit, got_revision): 7 to 40 hex digits
COMMIT_ID = re.compile(r"^[0-9a-f]{7,40}$")
# a state of a distribution's history: its number, or its snapshot's name
# what a rollback request names: a state's number, or its snapshot's name as
# release.snapshot_name makes it, with the UTC time's upper-case T and Z
ROLLBACK_STATE = re.compile(r"^[0-9]+$|^[a-z0-9][A-Za-z0-9.+@-]*$")
# a promotion request's number (its promote build's), for the approve button
REQUEST_NUMBER = re.compile(r"^[1-9][0-9]{0,9}$")
GITHUB_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
GITHUB_ORG_OR_TEAM = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?$")
IDENTIFIER = re.compile(r"^[a-z][a-z0-9-]*$")
# an extra's or a dependency group's name (PEP 685, PEP 735: normalized or not)
EXTRA_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
USERNAME = re.compile(r"^[A-Za-z0-9_.@-]+$")
ROLE = re.compile(r"^[a-z][a-z0-9_-]*$")
# a host that reports what it runs: a host name as hostname(7) allows (labels of letters, digits
# and hyphens, joined by dots), at most 253 characters
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST_NAME = re.compile(rf"^(?=.{{1,253}}\Z){_LABEL}(\.{_LABEL})*\Z")
# one line a person types (the reason of a forced build): 1 to 200 characters, not all blank,
# none of them a control, format, line or paragraph separator, private-use, non-character or
# lone surrogate
ONE_LINE = re.compile(
    "^(?!\\s*$)[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e"
    "\u2060-\u206f\ud800-\uf8ff\ufdd0-\ufdef\ufeff\ufff0-\uffff]{1,200}$"
)


def optional(pattern: re.Pattern) -> str:
    """The pattern as a form field's regex that also accepts an empty value (the default)."""
    return r"^$|" + pattern.pattern
