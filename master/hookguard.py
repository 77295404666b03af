"""What the GitHub change hook checks before it believes a request, cheapest first.

1. the method (POST, else 405), the content type (exactly application/json, else 415), the
   headers X-GitHub-Event, X-Hub-Signature-256 (exactly `sha256=` + 64 lower-case hex digits)
   and X-GitHub-Delivery (400); 2. the size: at most MAX_BODY bytes (GitHub's limit), else 413,
   on Content-Length before reading, and `limits.LimitedRequest` keeps no more than that;
3. (the HMAC: master/changes.py); 4. JSON nested at most MAX_DEPTH deep, checked without
recursion, then parsed; 5. the shape: every field the handler (and Buildbot's
GitHubEventHandler) reads has the right type, else 400 naming it ("commits must be a list").
"""

from __future__ import annotations

import json
import re
from typing import Any

from dateutil.parser import parse as dateparse
from twisted.python import log
from twisted.web import http_headers

MAX_BODY = 25 * 1024 * 1024  # bytes; GitHub caps webhook payloads at 25 MB
MAX_DEPTH = 64
MAX_COMMITS = 2048  # GitHub lists at most 2048 commits in a push event
SIGNATURE = re.compile(rb"sha256=[0-9a-f]{64}")
EVENT = re.compile(rb"[a-z_]{1,64}")
DELIVERY = re.compile(rb"[A-Za-z0-9._:-]{1,100}")
SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_PAIR = re.compile(rb"\[\]|\{\}")
_TOO_DEEP = re.compile(rb"[\[{]{%d}" % (MAX_DEPTH + 1))
TOO_LARGE = f"the payload is larger than {MAX_BODY >> 20} MB"


class Refused(ValueError):
    """A request the hook refuses: `code` is the HTTP status, the message is the body."""

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.code = code


def answer(request: Any, code: int, message: str) -> None:
    """Answer `code` with `message` as text (not as the reason phrase: it may quote input)."""
    request.setResponseCode(code)
    request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
    if code == 405:
        request.setHeader(b"Allow", b"POST")
    try:
        request.write(message.encode("utf-8", "replace"))
        request.finish()
    except RuntimeError:  # the sender has gone away meanwhile
        log.msg(f"GitHub change hook: could not answer {code}: the connection is closed")


def _header(request: Any, name: bytes) -> bytes | None:
    """The header's one value, or None; a header sent twice is refused."""
    headers = getattr(request, "requestHeaders", None)
    if isinstance(headers, http_headers.Headers):
        values = headers.getRawHeaders(name) or []
        if len(values) > 1:
            raise Refused(f"the {name.decode()} header is sent {len(values)} times")
    return request.getHeader(name)


def check_headers(request: Any) -> tuple[str, bytes, str | None]:
    """Steps 1 and 2 without the body: (event, signature header, delivery id or None)."""
    if request.method != b"POST":
        raise Refused("the GitHub change hook only accepts POST", 405)
    if _header(request, b"Content-Type") != b"application/json":
        raise Refused(
            "unsupported Content-Type: set the webhook's content type to application/json", 415
        )
    event = _header(request, b"X-GitHub-Event")
    if not EVENT.fullmatch(event or b""):
        raise Refused(f"{'malformed' if event else 'missing'} X-GitHub-Event header")
    signature = _header(request, b"X-Hub-Signature-256")
    if not signature:
        raise Refused(
            "missing X-Hub-Signature-256 header: the request is not signed with the webhook secret"
        )
    if not SIGNATURE.fullmatch(signature):
        raise Refused(
            "malformed X-Hub-Signature-256 header: expected sha256=<64 lower-case hex digits>"
        )
    delivery = _header(request, b"X-GitHub-Delivery")
    if delivery is not None and not DELIVERY.fullmatch(delivery):
        raise Refused("malformed X-GitHub-Delivery header")
    length = _header(request, b"Content-Length") or b"0"
    if not length.isdigit():
        raise Refused("malformed Content-Length header")
    if int(length) > MAX_BODY or getattr(request, "body_too_large", False) is True:
        raise Refused(TOO_LARGE, 413)
    return event.decode(), signature, delivery.decode() if delivery else None


def read_body(request: Any) -> bytes:
    """At most MAX_BODY bytes of the body (one bounded read), or 413."""
    request.content.seek(0)
    body = request.content.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise Refused(TOO_LARGE, 413)
    return body


def check_depth(body: bytes) -> None:
    """Refuse JSON nested deeper than MAX_DEPTH, looking at the brackets outside strings only:
    no recursion, whatever the body."""
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKET)
    if len(brackets) <= MAX_DEPTH:
        return
    if _TOO_DEEP.search(brackets) is None:
        for _ in range(MAX_DEPTH):
            brackets, found = _PAIR.subn(b"", brackets)
            if not brackets or not found:
                break
        if not brackets:
            return
    raise Refused(
        f"the payload is nested deeper than {MAX_DEPTH} levels (or its brackets do not match)"
    )


def parse(body: bytes) -> dict[str, Any]:
    check_depth(body)
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise Refused(f"the payload is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise Refused("the payload is not a JSON object")
    return payload


# --- the shape ---------------------------------------------------------------------------
OBJECT, LIST, STR, BOOL, INT, NULL = dict, list, str, bool, int, type(None)
_NAMES = {
    dict: "an object",
    list: "a list",
    str: "a string",
    bool: "true or false",
    int: "a number",
    type(None): "null",
}


def get(
    data: dict[str, Any], path: str, *kinds: type, required: bool = True, limit: int = 0
) -> Any:
    """data[a][b]… for path "a.b…", of one of `kinds` (a str at most `limit` long), or None."""
    value: Any = data
    where = ""
    for part in path.split("."):
        if not isinstance(value, dict):
            raise Refused(f"{where} must be an object")
        where = f"{where}.{part}" if where else part
        if part not in value:
            if required:
                raise Refused(f"{where} is missing")
            return None
        value = value[part]
    return check(value, path, *kinds, limit=limit)


def check(value: Any, where: str, *kinds: type, limit: int = 0) -> Any:
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        raise Refused(f"{where} must be {' or '.join(_NAMES[k] for k in kinds)}")
    if isinstance(value, str):
        if limit and len(value) > limit:
            raise Refused(f"{where} is longer than {limit} characters")
        if "\x00" in value:
            raise Refused(f"{where} contains a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Refused(f"{where} is not valid Unicode") from None
    return value


def _date(data: dict[str, Any], path: str) -> None:
    value = get(data, path, STR, limit=64)
    try:
        dateparse(value)
    except (ValueError, OverflowError):
        raise Refused(f"{path} is not a date") from None


def _commit(commit: Any, where: str) -> None:
    check(commit, where, OBJECT)
    try:
        if not SHA.fullmatch(get(commit, "id", STR, limit=64)):
            raise Refused("id must be a commit id (40 or 64 lower-case hex digits)")
        for field, limit in (
            ("message", 0),
            ("url", 256),
            ("author.name", 100),
            ("author.email", 150),
            ("committer.name", 100),
            ("committer.email", 150),
        ):
            get(commit, field, STR, limit=limit)
        _date(commit, "timestamp")
        get(commit, "distinct", BOOL, required=False)
        for kind in ("added", "modified", "removed"):
            for i, name in enumerate(get(commit, kind, LIST, required=False) or []):
                check(name, f"{kind}[{i}]", STR, limit=1024)
    except Refused as exc:
        raise Refused(f"{where}.{exc}") from None


def check_push(payload: dict[str, Any]) -> None:
    get(payload, "repository.full_name", STR, limit=200)
    get(payload, "repository.name", STR, limit=200)
    get(payload, "repository.html_url", STR, limit=512)
    get(payload, "ref", STR, limit=255)
    get(payload, "after", STR, required=False, limit=64)
    deleted = get(payload, "deleted", BOOL, NULL, required=False)
    get(payload, "created", BOOL, NULL, required=False)
    commits = get(payload, "commits", LIST, required=not deleted) or []
    if len(commits) > MAX_COMMITS:
        raise Refused(f"commits has {len(commits)} entries: GitHub lists at most {MAX_COMMITS}")
    head = get(
        payload, "head_commit", OBJECT, *(() if not deleted else (NULL,)), required=not deleted
    )
    if head is not None:
        _commit(head, "head_commit")
    for i, commit in enumerate(commits):
        _commit(commit, f"commits[{i}]")


_PULL_FIELDS = (
    ("action", 64),
    ("repository.full_name", 200),
    ("repository.html_url", 512),
    ("pull_request.base.ref", 255),
    ("pull_request.base.repo.full_name", 200),
    ("pull_request.title", 0),
    ("pull_request._links.html.href", 256),
    ("sender.login", 100),
)


def check_pull_request(payload: dict[str, Any]) -> None:
    get(payload, "number", INT)
    get(payload, "pull_request.commits", INT)
    for path, limit in _PULL_FIELDS:
        get(payload, path, STR, limit=limit)
    if not SHA.fullmatch(get(payload, "pull_request.head.sha", STR, limit=64)):
        raise Refused("pull_request.head.sha must be a commit id")
    if get(payload, "pull_request.head.repo", OBJECT, NULL) is not None:
        get(payload, "pull_request.head.repo.full_name", STR, limit=200)
    get(payload, "pull_request.body", STR, NULL, required=False)
    _date(payload, "pull_request.created_at")


SHAPES = {"push": check_push, "pull_request": check_pull_request}
