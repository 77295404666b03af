"""Hostile webhooks against a real master: more than 1,000 generated requests (seeded, so a
failure replays), none answered 5xx, none recording a change or a build, the served repository
byte-identical; a 30 MB body refused with 413 without the master growing; then a 50-commit push
is one build with its 50 changes, and a replayed or redelivered push builds nothing; a push
while its scheduler is off is refused (409) and built when redelivered; a force-push back is
built again, as a new version that staging serves; 500 slow clients are cut off with 408 after
the receive deadline, and the hook answers meanwhile.

Needs root (the installation builds and publishes a Debian package) and `make system`.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import http.client
import json
import os
import random
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conveyor.results import result_name
from conveyor.settings import WEBHOOK_SECRET
from master.limits import RECEIVE_DEADLINE
from ops import api
from ops import demo
from ops import github
from tests.integration.helpers import running_installation
from tests.integration.helpers import session
from tests.integration.helpers import version_gt

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds a Debian package: needs root"),
]

SEED = 20240611
MB = 1024 * 1024


@pytest.fixture(scope="module")
def installation():
    with running_installation("hostile-webhooks") as settings:
        yield settings


@pytest.fixture(scope="module")
def checkout(installation):
    return demo.ensure_demo_repo(installation, installation.projects[0])


class Hook:
    """Raw HTTP to /change_hook/github: any method, any headers (also twice), any body."""

    def __init__(self, settings) -> None:
        url = urlsplit(settings.web_url)
        self.host, self.port = url.hostname, url.port
        self.secret = (settings.read_secret(WEBHOOK_SECRET) or "").encode()

    def sign(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()

    def headers(self, body: bytes, event: str = "push", **extra: str | None) -> list:
        base = {
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": self.sign(body),
        }
        base.update(extra)
        return [(k, v) for k, v in base.items() if v is not None]

    def send(
        self, body: bytes | None, headers: list, method: str = "POST", chunked: bool = False
    ) -> tuple[int, str]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.putrequest(method, "/change_hook/github", skip_accept_encoding=True)
            for name, value in headers:
                conn.putheader(name, value)
            if chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            elif body is not None and not any(k.lower() == "content-length" for k, _ in headers):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders()
            if body is not None:
                if chunked:
                    for start in range(0, len(body), MB):
                        piece = body[start : start + MB]
                        conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
                    conn.send(b"0\r\n\r\n")
                else:
                    conn.send(body)
            response = conn.getresponse()
            return response.status, response.read().decode(errors="replace")
        finally:
            conn.close()


def tree_hash(settings) -> str:
    digest = hashlib.sha256()
    for root in (
        settings.repository.www_root / "dists",
        settings.repository.www_root / "pool",
        settings.history_dir,
    ):
        for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
            digest.update(str(path).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def master_rss_kb(settings) -> int:
    pid = int((settings.master_dir / "twistd.pid").read_text().strip())
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


# --- the generated requests ------------------------------------------------------------------

WRONG = [None, 0, -1, 1.5, True, "", "x", "0" * 40, [], [1], {}, {"a": 1}, "\u0000", "9" * 30]
PUSH_FIELDS = [
    "repository",
    "repository.full_name",
    "repository.name",
    "repository.html_url",
    "ref",
    "after",
    "deleted",
    "created",
    "commits",
    "head_commit",
    "head_commit.id",
    "head_commit.message",
    "head_commit.timestamp",
    "head_commit.url",
    "head_commit.author",
    "head_commit.author.name",
    "head_commit.author.email",
    "head_commit.committer",
    "head_commit.committer.email",
    "head_commit.added",
    "head_commit.distinct",
    "commits.0",
    "commits.0.id",
    "commits.0.message",
    "commits.0.timestamp",
    "commits.0.author",
    "commits.0.author.name",
    "commits.0.committer",
    "commits.0.modified",
    "commits.0.removed",
    "commits.0.url",
]
PR_FIELDS = [
    "action",
    "number",
    "repository",
    "repository.full_name",
    "repository.html_url",
    "pull_request",
    "pull_request.base",
    "pull_request.base.ref",
    "pull_request.base.repo",
    "pull_request.head",
    "pull_request.head.sha",
    "pull_request.head.repo",
    "pull_request.commits",
    "pull_request.title",
    "pull_request.created_at",
    "pull_request._links",
    "sender",
    "sender.login",
]


def set_path(data, path: str, value) -> None:
    *parents, last = path.split(".")
    for part in parents:
        data = data[int(part)] if isinstance(data, list) else data[part]
    data[int(last) if isinstance(data, list) else last] = value


def generate(hook: Hook, push: dict, pull: dict, rng: random.Random) -> list[tuple]:
    """(class, expected statuses, send arguments) for every generated request."""
    cases: list[tuple] = []
    good = json.dumps(push).encode()

    # bad bodies, validly signed
    bodies = [
        b"",
        b"not json",
        b"{",
        b"[]",
        b"null",
        b"42",
        b'"x"',
        b"\xff\xfe{}",
        b'{"a": NaN}',
        b'{"a": 1e999999}',
        b"{" + b'"a":1,' * 5000 + b"}",
        b'{"a": "\\ud800"}',
        b'{"a":' + b"1" * 20000 + b"}",
        good[:-1],
        good + b"x",
    ]
    for _ in range(200):
        body = (
            rng.choice(bodies)
            if rng.random() < 0.5
            else bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
        )
        cases.append(("bad body", {400}, (body, hook.headers(body))))

    # bad headers and signatures
    sig = hook.sign(good)
    variants = [
        {"X-Hub-Signature-256": None},
        {"X-Hub-Signature-256": sig.upper()},
        {"X-Hub-Signature-256": sig.replace("sha256=", "sha1=")},
        {"X-Hub-Signature-256": sig[:-1] + ("0" if sig[-1] != "0" else "1")},
        {"X-Hub-Signature-256": "sha256=" + hmac.new(b"guess", good, "sha256").hexdigest()},
        {"X-Hub-Signature-256": "sha256="},
        {"X-Hub-Signature-256": sig + sig[7:]},
        {"Content-Type": None},
        {"Content-Type": "application/json; charset=utf-8"},
        {"Content-Type": "application/x-www-form-urlencoded"},
        {"Content-Type": "text/plain"},
        {"X-GitHub-Event": None},
        {"X-GitHub-Event": "PUSH"},
        {"X-GitHub-Event": "issues"},
        {"X-GitHub-Event": "push push"},
        {"X-GitHub-Delivery": "a b"},
        {"X-GitHub-Delivery": "x" * 300},
    ]
    for _ in range(220):
        extra = rng.choice(variants)
        cases.append(("bad header", {400, 415}, (good, hook.headers(good, **extra))))
    # blanks around a header's value are not part of it (RFC 9110 5.5): the HMAC decides
    for padded in (" " + sig, sig + " ", "\t" + sig):
        cases.append(
            (
                "padded signature",
                {202},
                (good, hook.headers(good, **{"X-Hub-Signature-256": padded})),
            )
        )
    for _ in range(20):
        cases.append(("twice", {400}, (good, hook.headers(good) + [("X-Hub-Signature-256", sig)])))
    for method, expected in (
        ("GET", {405}),
        ("PUT", {405}),
        ("DELETE", {405}),
        ("HEAD", {405}),
        ("PATCH", {405}),
    ):
        for _ in range(4):
            cases.append(("method", expected, (good, hook.headers(good), method)))

    # deep nesting, signed
    for _ in range(100):
        depth = rng.choice([65, 66, 100, 1000, 10_000, 100_000])
        open_, close = rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
        body = b'{"ref": ' + open_ * depth + b"1" + close * depth + b"}"
        cases.append(("deep", {400}, (body, hook.headers(body))))

    # wrong types in each field, signed
    for _ in range(300):
        event, payload, fields = rng.choice(
            [("push", push, PUSH_FIELDS), ("pull_request", pull, PR_FIELDS)]
        )
        data = json.loads(json.dumps(payload))
        field = rng.choice(fields)
        value = rng.choice(WRONG)
        try:
            set_path(data, field, value)
        except (KeyError, IndexError, TypeError):
            continue
        body = json.dumps(data).encode()
        # a wrong value may still be a valid one (an empty list of commits, "" for a title):
        # then the push is simply not for a configured repository and branch
        cases.append(("wrong type", {400, 202, 200}, (body, hook.headers(body, event=event))))

    # well-formed, but for repositories and branches that are not configured
    for _ in range(160):
        data = json.loads(good)
        kind = rng.randrange(4)
        if kind == 0:
            data["repository"]["full_name"] = rng.choice(["mallory/snowbird", "sprintly/other"])
        elif kind == 1:
            data["ref"] = rng.choice(["refs/heads/feature", "refs/tags/v9", "refs/notes/x"])
        elif kind == 2:
            data.update(deleted=True, head_commit=None, commits=[])
        else:
            data["repository"]["full_name"] = "sprintly/snowbird-" + str(rng.randrange(1000))
        body = json.dumps(data).encode()
        cases.append(("not configured", {202}, (body, hook.headers(body))))
    return cases


def test_hostile_requests_get_4xx_and_change_nothing(installation, checkout):
    hook = Hook(installation)
    project = installation.projects[0]
    head = github.git(checkout, "rev-parse", "HEAD")
    # a branch no project builds, a closed pull request: a request that is valid after all
    # (a mutation may give a valid value) records nothing either
    push = dict(
        github.push_payload(checkout, project, github.ZERO, head), ref="refs/heads/not-built"
    )
    pull = github.pull_request_payload(checkout, project, 7, head, action="closed")
    tree_before = tree_hash(installation)
    started = time.monotonic()

    cases = generate(hook, push, pull, random.Random(SEED))
    assert len(cases) >= 1000

    def run(case):
        kind, expected, args = case
        status, text = hook.send(*args)
        return kind, expected, status, text

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, cases))
    server_errors = [(k, s, t) for k, _, s, t in results if s >= 500]
    assert server_errors == []
    unexpected = [
        (k, s, t[:120], c[2][1])
        for c, (k, e, s, t) in zip(cases, results, strict=True)
        if s not in e
    ]
    assert unexpected == []
    # every refusal says what is wrong (a HEAD request's answer has no body)
    assert [k for k, _, s, t in results if s >= 400 and not t.strip() and s != 405] == []

    # one real oversize body, declared and then chunked (no Content-Length): 413, no growth
    rss_before = master_rss_kb(installation)
    big = b'{"a": "' + b"x" * (30 * MB) + b'"}'
    status, text = hook.send(big, hook.headers(big))
    assert (status, text) == (413, "the payload is larger than 25 MB")
    status, text = hook.send(big, hook.headers(big), chunked=True)
    assert (status, text) == (413, "the payload is larger than 25 MB")
    grown_mb = (master_rss_kb(installation) - rss_before) / 1024
    assert grown_mb < 50, f"the master grew by {grown_mb:.0f} MB"
    assert (
        "bodies of the change hook larger than"
        in (installation.master_dir / "twistd.log").read_text()
    )

    time.sleep(2)
    assert api.api(installation, "changes")["changes"] == []
    assert api.last_build_number(installation, project.ci_builder) == 0
    assert requests_of_pushes(installation) == []
    assert tree_hash(installation) == tree_before
    print(f"\n{len(results)} hostile requests + 2 x 30 MB in {time.monotonic() - started:.1f} s")


def test_a_50_commit_push_is_one_build_and_a_replay_builds_nothing(installation, checkout):
    project = installation.projects[0]
    hook = Hook(installation)
    before = github.git(checkout, "rev-parse", "HEAD")
    shas = [
        github.commit_file(checkout, f"notes/{i}.txt", f"note {i}\n", f"Add note {i}")
        for i in range(50)
    ]
    github.push_branch(checkout, project)
    payload = github.push_payload(checkout, project, before, shas[-1])
    payload["commits"] = [github.commit_dict(checkout, sha, project.github) for sha in shas]
    payload["head_commit"] = payload["commits"][-1]
    body = json.dumps(payload).encode()
    delivery = str(uuid.uuid4())
    last = api.last_build_number(installation, project.ci_builder)

    status, text = hook.send(body, hook.headers(body, **{"X-GitHub-Delivery": delivery}))
    assert (status, text) == (202, "50 change found")
    build = api.wait_for_build(installation, project.ci_builder, last, timeout=300)
    assert result_name(build["results"]) == "SUCCESS", api.describe(build)
    assert build["properties"]["got_revision"][0] == shas[-1]
    changes = api.api(installation, f"builds/{build['buildid']}/changes")["changes"]
    assert sorted(c["revision"] for c in changes) == sorted(shas)

    # the same delivery again, and GitHub's "redeliver" (a new id, the same body)
    for headers in (hook.headers(body, **{"X-GitHub-Delivery": delivery}), hook.headers(body)):
        status, text = hook.send(body, headers)
        assert status == 200 and text.startswith("already received"), (status, text)
    time.sleep(3)
    assert api.last_build_number(installation, project.ci_builder) == build["number"]
    assert len(api.api(installation, "changes")["changes"]) == 50
    assert requests_of_pushes(installation, "?complete=false") == []


def requests_of_pushes(installation, query: str = "") -> list[dict]:
    """The build requests of every builder but `retention` (which runs at each master start)."""
    retention = api.builder_id(installation, "retention")
    return [
        r
        for r in api.api(installation, f"buildrequests{query}")["buildrequests"]
        if r["builderid"] != retention
    ]


def turn(admin, scheduler: dict, on: bool) -> None:
    """Turn a scheduler on or off as an admin does in the web UI (Schedulers page)."""
    reply = admin.request(
        f"api/v2/schedulers/{scheduler['schedulerid']}",
        {"jsonrpc": "2.0", "method": "enable", "id": 1, "params": {"enabled": on}},
    )
    assert "error" not in reply, reply


def changes_of(installation, revision: str) -> list[dict]:
    return api.api(installation, f"changes?revision={revision}")["changes"]


def staging_serves(installation, version: str, timeout: float = 300) -> list[str]:
    """Wait until the upload distribution's newest snowbird is `version`; its versions."""
    project = installation.projects[0]
    deadline = time.monotonic() + timeout
    while True:
        listed = api.listed_versions(installation, project.upload_to, project.packages[0])
        if listed and max(listed, key=functools.cmp_to_key(version_compare)) == version:
            return listed
        assert time.monotonic() < deadline, f"{project.upload_to} lists {listed}, not {version}"
        time.sleep(1)


def version_compare(a: str, b: str) -> int:
    return -1 if version_gt(b, a) else int(a != b)


def test_a_push_while_its_scheduler_is_off_is_refused_and_its_redelivery_built(
    installation, checkout
):
    project = installation.projects[0]
    admin = session(installation, "admin")
    (scheduler,) = admin.get(f"schedulers?name={project.push_scheduler}")["schedulers"]
    before = github.git(checkout, "rev-parse", "HEAD")
    sha = github.commit_file(checkout, "notes/off.txt", "pushed while off\n", "Push while off")
    github.push_branch(checkout, project)
    body = json.dumps(github.push_payload(checkout, project, before, sha)).encode()
    delivery = {"X-GitHub-Delivery": str(uuid.uuid4())}
    last = api.last_build_number(installation, project.ci_builder)

    turn(admin, scheduler, False)
    try:
        status, text = github.deliver(installation, "push", body, headers=delivery)
    finally:
        turn(admin, scheduler, True)
    assert status == 409, (status, text)
    assert text.startswith(
        f"the {project.push_scheduler} scheduler is turned off: nothing "
        "recorded. Redeliver this push"
    ), text
    assert changes_of(installation, sha) == []

    # GitHub's "redeliver": the same delivery, once the scheduler is on again
    status, text = github.deliver(installation, "push", body, headers=delivery)
    assert (status, text) == (202, "1 change found")
    build = api.wait_for_build(installation, project.ci_builder, last, timeout=300)
    assert result_name(build["results"]) == "SUCCESS", api.describe(build)
    assert build["properties"]["got_revision"][0] == sha
    status, text = github.deliver(installation, "push", body, headers=delivery)
    assert (status, text) == (
        200,
        f"already received: delivery {delivery['X-GitHub-Delivery']}; nothing recorded",
    )


def test_a_force_push_back_is_built_again_as_a_new_version_in_staging(installation, checkout):
    project = installation.projects[0]
    target = github.git(checkout, "rev-parse", "HEAD")
    if not changes_of(installation, target):  # the commit to go back to was built before
        build = github.push_and_wait(installation, project, checkout)
        assert result_name(build["results"]) == "SUCCESS", api.describe(build)
    newer = github.commit_file(checkout, "notes/newer.txt", "to be undone\n", "Undo me")
    github.push_branch(checkout, project)
    last = api.last_build_number(installation, project.ci_builder)
    status, _ = github.deliver(
        installation, "push", github.push_payload(checkout, project, target, newer)
    )
    assert status == 202
    build = api.wait_for_build(installation, project.ci_builder, last, timeout=300)
    undone = build["properties"]["package_version"][0]
    staging_serves(installation, undone)

    # force-push main back to the earlier commit: GitHub lists no commit, its head is target
    github.git(checkout, "reset", "--quiet", "--hard", target)
    github.push_branch(checkout, project)
    payload = github.push_payload(checkout, project, newer, target)
    payload.update(
        forced=True, commits=[], head_commit=github.commit_dict(checkout, target, project.github)
    )
    status, text = github.deliver(installation, "push", payload)
    assert (status, text) == (202, "1 change found")
    build = api.wait_for_build(installation, project.ci_builder, build["number"], timeout=300)
    assert result_name(build["results"]) == "SUCCESS", api.describe(build)
    assert build["properties"]["got_revision"][0] == target
    again = build["properties"]["package_version"][0]
    assert again.endswith(f".g{target[:7]}") and version_gt(again, undone), (again, undone)
    staging_serves(installation, again)
    # the same force-push delivered again builds nothing more
    status, text = github.deliver(installation, "push", payload)
    assert status == 200 and text.startswith("already received"), (status, text)


def test_500_slow_clients_are_cut_off_and_the_hook_answers_meanwhile(installation):
    """Slowloris: 500 connections send a request's headers, then its body a byte a second. The
    master answers each 408 and closes it once it is RECEIVE_DEADLINE s old, and answers a
    well-formed request at once meanwhile."""
    hook = Hook(installation)
    head = (
        b"POST /change_hook/github HTTP/1.1\r\nHost: ci\r\nContent-Type: application/json"
        b"\r\nContent-Length: 100000\r\n\r\n"
    )
    clients = []
    first = time.monotonic()  # no client's first byte is older
    for _ in range(500):
        client = socket.create_connection((hook.host, hook.port), timeout=10)
        client.sendall(head)
        client.setblocking(False)
        clients.append(client)
    started = time.monotonic()  # every client has sent its first bytes
    body = b'{"zen": "Keep it logically awesome."}'
    assert hook.send(body, hook.headers(body, event="ping"))[0] < 500  # answered meanwhile
    timed_out, closed = set(), {}
    while len(closed) < len(clients) and time.monotonic() - started < RECEIVE_DEADLINE + 30:
        for client in clients:
            if client in closed:
                continue
            # what the master sent first, then the next byte: a byte sent after the master's
            # 408 and close would be answered by a reset that discards the unread 408
            try:
                answer = client.recv(4096)
            except (BlockingIOError, InterruptedError):
                try:
                    client.send(b"x")
                    continue
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:  # reset: closed
                    answer = b""
            except OSError:  # reset: closed
                answer = b""
            if answer.startswith(b"HTTP/1.1 408"):
                timed_out.add(client)
            if not answer or answer.startswith(b"HTTP/1.1 408"):
                closed.setdefault(client, time.monotonic() - first)
        time.sleep(1)
    for client in clients:
        client.close()
    assert len(closed) == 500, f"{500 - len(closed)} slow clients still connected"
    assert len(timed_out) >= 490, len(timed_out)  # a reset may come before the answer is read
    # seconds since the first client's first byte: none cut before its deadline, all soon after
    assert RECEIVE_DEADLINE - 1 <= min(closed.values()), min(closed.values())
    assert max(closed.values()) <= (started - first) + RECEIVE_DEADLINE + 15, (
        started - first,
        max(closed.values()),
    )
