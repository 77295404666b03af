"""Every place where Conveyor works around a bug or a limit of the parts it is built on.

Each entry says where the workaround lives, why it is there, and where upstream stands. Each
has a canary in tests/unit/test_compat.py (`test_canary_<key>`): it asserts that upstream
still behaves the way the workaround assumes, on the pinned versions, so an upgrade that fixes
(or changes) the behaviour fails that test, and whoever upgrades knows which workaround to drop
or revisit. The file named in `where` carries the marker `compat: <key>` at the workaround.

A guard that cannot put itself in place stops the master's start with a message rather than
running without it (master/site.py: the web site's limits, master/limits.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Workaround:
    key: str
    where: str
    why: str
    upstream: str


WORKAROUNDS = (
    Workaround(
        key="github_sha1_only",
        where="master/changes.py",
        why="Buildbot's GitHubEventHandler verifies only X-Hub-Signature (HMAC-SHA1), which "
        "GitHub sends for legacy reasons only; Conveyor verifies X-Hub-Signature-256 itself "
        "(_verify_signature) and never falls back to SHA1.",
        upstream="Buildbot 4.3: buildbot/www/hooks/github.py, _HEADER_SIGNATURE = "
        "b'X-Hub-Signature', `hash_type != 'sha1'` refused. No upstream issue found "
        "(2026-12-05); GitHub's advice: https://docs.github.com/en/webhooks/"
        "using-webhooks/validating-webhook-deliveries",
    ),
    Workaround(
        key="change_hook_answers_itself",
        where="master/changes.py",
        why="ChangeHookResource answers 202 '<n> change found', 400 or 500 only; the hook must "
        "also answer 200 'already received', 405, 409, 413 and 415 with a text that says "
        "what is wrong, so the handler's process() answers the request itself and returns a "
        "Deferred that never fires (ChangeHookResource then writes nothing more).",
        upstream="Buildbot 4.3: buildbot/www/change_hook.py, render_POST/getAndSubmitChanges "
        "write the answer after getChanges; no hook for other status codes.",
    ),
    Workaround(
        key="simplemq_skips_consumer",
        where="steps/beside.py",
        why="SimpleMQ.produce iterates over its list of consumers while a consumer that stops "
        "consuming removes itself from that list: the next consumer then misses the "
        "message. RequestWatch therefore also reads its build request every RECHECK "
        "seconds instead of relying on the `complete` event alone.",
        upstream="Buildbot 4.3: buildbot/mq/simple.py, SimpleMQ.produce (`for qref in "
        "self.qrefs`). Not reported upstream yet (2026-12-05).",
    ),
    Workaround(
        key="trigger_waits_for_results",
        where="steps/beside.py",
        why="Trigger.run calls its private _add_results(brid) for every build request it makes, "
        "also with waitForFinish=False: a consumer of the request's `complete` event that "
        "updates the finished step's summary later, and a second consumer of the event "
        "RequestWatch waits for (see simplemq_skips_consumer). StartBeside, a Trigger that "
        "does not wait, overrides _add_results with a no-op; AwaitBeside tells the results.",
        upstream="Buildbot 4.3: buildbot/steps/trigger.py, Trigger.run (`self._add_results"
        "(brid)`, 'No yield since we let this happen as the builds complete'). Trigger has no "
        "public way to start builds without following them.",
    ),
    Workaround(
        key="set_priority_fails",
        where="master/authz.py",
        why="The data API's buildrequests set_priority control fails inside Buildbot with "
        "SQLAlchemy 2 (conn.execute(q, priority=…) takes no keyword arguments): a 500. The "
        "authz refuses it to everyone with a 403 that says so.",
        upstream="Buildbot 4.3: buildbot/db/buildrequests.py, set_build_requests_priority; the "
        "action came with https://github.com/buildbot/buildbot/pull/7010. Not reported "
        "upstream yet (2026-12-05).",
    ),
    Workaround(
        key="twisted_ssl_deprecation",
        where="tests/conftest.py",
        why="buildbot.util.ssl star-imports twisted.internet.ssl and so touches "
        "ProtocolNegotiationSupport, deprecated in Twisted 26.10; under buildbot.test's "
        "warnings-as-errors the first import of Buildbot's mail reporter fails. The tests "
        "import it first with that warning ignored (pytest.ini ignores it too).",
        upstream="Buildbot 4.3: buildbot/util/ssl.py, `from twisted.internet.ssl import *`.",
    ),
    Workaround(
        key="piuparts_chroot_methods",
        where="worker/bin/conveyor-install-check",
        why="piuparts needs real root for its chroot: /dev nodes (mknod), a full unpack of the "
        "base each run, and `lsof +D` over the whole root. The install check runs it in a "
        "user namespace and replaces four Chroot methods (mount_proc, unpack_from_tgz, "
        "check_for_no_processes, terminate_running_processes); it checks their signatures "
        "first and refuses to run on a piuparts whose methods differ (REPLACED).",
        upstream="piuparts 1.1.7 (Debian 12): /usr/sbin/piuparts, class Chroot. Rootless "
        "operation is not a piuparts feature.",
    ),
)
