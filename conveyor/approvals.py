"""Two-person rule for production: a promotion into a path's last distribution that needs
approvals waits for them ([approvals] in pipeline.toml; docs/releasing.md: Approvals).

    [approvals]
    snowbird = 2              # a promotion into snowbird waits for 2 approvals
    expire_after_hours = 72   # a request nobody approved in time expires (the default)

A request is a promote build into such a distribution: it records the request and ends at
once (a pending request holds no lock and blocks no queue). Each approval is an `approve`
build by a user with a production role who is not the requester; the one that completes the
count promotes exactly what was requested, against the state the requester saw. A newer
request into the same distribution supersedes the pending one. A rollback needs no approval.

Every request's life is an append-only log beside the distribution's history,
`<history>/<dist>.requests.jsonl`, served with it: one JSON line per event.

    {"event": "requested", "request": 42, "who": "alice", "package", "version", "from", "to",
     "needed": 2, "expires": ISO, "basis_snapshot", "basis_state", "when", "build"}
    {"event": "approved", "request": 42, "who": "carol", "when", "build"}
    {"event": "superseded", "request": 42, "by": 43, "when"}
    {"event": "expired", "request": 42, "when"}
    {"event": "promoted" | "refused", "request": 42, "when", "build", "why"?}

A request's number is its promote build's number. Pure: no Buildbot, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import Any

from conveyor import release
from conveyor.release import ReleaseError

EXPIRE_KEY = "expire_after_hours"
DEFAULT_EXPIRY_HOURS = 72
CLOSING = ("superseded", "expired", "promoted", "refused")


@dataclass(frozen=True)
class Approvals:
    """[approvals]: {distribution: approvals a promotion into it needs}, and the expiry."""

    needed: dict[str, int] = field(default_factory=dict)
    expire_after_hours: int = DEFAULT_EXPIRY_HOURS

    def of(self, distribution: str) -> int:
        return self.needed.get(distribution, 0)


def from_table(t: Any, ends: set[str]) -> Approvals:
    """Read [approvals] (`t`: conveyor.settings' table reader): every key but the expiry is a
    distribution that ends a path; its value, 1 to 10 approvals."""
    hours = t.int(EXPIRE_KEY, DEFAULT_EXPIRY_HOURS, high=24 * 365)
    needed = {}
    for dist in sorted(k for k in t.data if k != EXPIRE_KEY):
        if dist not in ends:
            raise t.error(
                "approvals are set on the last distribution of a path (known: "
                f"{', '.join(sorted(ends))}), not {dist!r}",
                dist,
            )
        needed[dist] = t.int(dist, None, low=0, high=10)
    return Approvals({d: n for d, n in needed.items() if n}, hours)


# --- The log ------------------------------------------------------------------------------------


# the log is JSON lines, as a distribution's history is (conveyor/release.py)
parse_log = release.parse_history
log_line = release.history_line


@dataclass
class Request:
    number: int
    who: str
    package: str
    version: str
    source: str
    target: str
    needed: int
    expires: str
    when: str
    build: str = ""
    basis_snapshot: str | None = None
    basis_state: Any = None
    approvals: list[dict] = field(default_factory=list)  # [{"who", "when", "build"}]
    closed: dict | None = None  # the closing event

    @property
    def approvers(self) -> list[str]:
        return [a["who"] for a in self.approvals]

    def expired(self, now: datetime) -> bool:
        return self.closed is None and now >= datetime.fromisoformat(self.expires)

    def state(self, now: datetime) -> str:
        """pending, expired (not yet recorded), or the closing event's name."""
        if self.closed is not None:
            return self.closed["event"]
        return "expired" if self.expired(now) else "pending"

    def missing(self) -> int:
        return max(self.needed - len(self.approvals), 0)

    def as_json(self, now: datetime) -> dict:
        return {
            "request": self.number,
            "state": self.state(now),
            "requested_by": self.who,
            "package": self.package,
            "version": self.version,
            "from": self.source,
            "to": self.target,
            "needed": self.needed,
            "approved_by": self.approvers,
            "approvals": list(self.approvals),
            "missing": self.missing(),
            "requested_at": self.when,
            "expires": self.expires,
            "build": self.build,
            "closed": self.closed,
        }


def requests(events: list[dict]) -> dict[int, Request]:
    """Every request of a log by number, with its approvals and how it ended."""
    found: dict[int, Request] = {}
    for event in events:
        number = event.get("request")
        if event.get("event") == "requested":
            found[number] = Request(
                number=number,
                who=event["who"],
                package=event["package"],
                version=event["version"],
                source=event["from"],
                target=event["to"],
                needed=event["needed"],
                expires=event["expires"],
                when=event["when"],
                build=event.get("build", ""),
                basis_snapshot=event.get("basis_snapshot"),
                basis_state=event.get("basis_state"),
            )
        elif number in found and event.get("event") == "approved":
            found[number].approvals.append({k: event.get(k) for k in ("who", "when", "build")})
        elif number in found and event.get("event") in CLOSING:
            found[number].closed = event
    return found


def open_request(events: list[dict]) -> Request | None:
    """The newest request that has not ended (it may have expired unrecorded)."""
    return next((r for r in reversed(requests(events).values()) if r.closed is None), None)


def new_request(
    number: int, who: str, plan: dict, needed: int, hours: int, now: datetime, build: str
) -> dict:
    """The `requested` event; `plan`: package, version, from, to, basis_snapshot, basis_state."""
    return {
        "event": "requested",
        "request": number,
        "who": who,
        "needed": needed,
        "when": now.isoformat(timespec="seconds"),
        "expires": (now + timedelta(hours=hours)).isoformat(timespec="seconds"),
        "build": build,
        **plan,
    }


def closing_before(events: list[dict], number: int, now: datetime) -> list[dict]:
    """The events a new request `number` adds before its own: the open one it supersedes (or,
    when that one has expired, its expiry)."""
    old = open_request(events)
    if old is None:
        return []
    when = now.isoformat(timespec="seconds")
    if old.expired(now):
        return [{"event": "expired", "request": old.number, "when": when}]
    return [{"event": "superseded", "request": old.number, "by": number, "when": when}]


def check_approval(events: list[dict], number: int, who: str, now: datetime) -> Request:
    """The request `number` that `who` may approve now; ReleaseError saying why not."""
    request = requests(events).get(number)
    if request is None:
        raise ReleaseError(f"there is no request {number} (see bin/conveyor approvals)")
    state = request.state(now)
    if state == "superseded":
        raise ReleaseError(
            f"request {number} was superseded by request {request.closed.get('by')}: "
            "approve that one, if it is what you mean"
        )
    if state == "expired":
        raise ReleaseError(
            f"request {number} expired at {request.expires}: nobody approved it in time; "
            "ask again with bin/conveyor promote"
        )
    if state != "pending":
        raise ReleaseError(f"request {number} is no longer pending: it was {state}")
    if who == request.who:
        raise ReleaseError(
            f"{who} asked for request {number}: the requester cannot approve their own "
            "request; another person with a production role must"
        )
    if who in request.approvers:
        raise ReleaseError(f"{who} has approved request {number} already")
    return request


def still_needed(request: Request) -> str:
    """Who is still needed, in words: '1 more (a production role; not alice, carol)'."""
    if not request.missing():
        return "none"
    others = ", ".join([request.who, *request.approvers])
    return f"{request.missing()} more (a production role; not {others})"


def summary(request: Request) -> str:
    """One line: request 42: snowbird 1.2 snowbird-staging → snowbird, by alice; approved by
    carol (1 of 2); still needed: 1 more (…); expires …"""
    approved = ", ".join(request.approvers) or "nobody yet"
    return (
        f"request {request.number}: {request.package} {request.version} {request.source} → "
        f"{request.target}, asked by {request.who}; approved by {approved} "
        f"({len(request.approvals)} of {request.needed}); still needed: "
        f"{still_needed(request)}; expires {request.expires}"
    )


def view(events: list[dict], now: datetime, recent: int = 5) -> dict:
    """What the board and `status --json` show of a distribution's requests: the open one
    (pending, or expired unrecorded) and the last `recent` that ended, newest first."""
    found = list(requests(events).values())
    current = open_request(events)
    return {
        "pending": current.as_json(now) if current else None,
        "recent": [r.as_json(now) for r in reversed(found) if r.closed is not None][:recent],
    }


def identity(user: dict) -> str:
    """The name a build records as its owner for a logged-in user (Buildbot's REST API takes
    the first of email, username, full name): what a request's `who` and an approval's are."""
    return next((user[k] for k in ("email", "username", "full_name") if user.get(k)), "")
