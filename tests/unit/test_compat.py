"""Canaries of master/compat.py: each asserts that upstream still behaves as its workaround
assumes (so upgrading past the behaviour fails here, naming the workaround to revisit), and a
second test patches upstream into the fixed behaviour to show that the canary notices."""

from __future__ import annotations

import hashlib
import hmac
import importlib.machinery
import importlib.util
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
from twisted.internet import defer
from twisted.trial import unittest

from buildbot.mq import simple
from buildbot.test import fakedb
from buildbot.test.fake import fakemaster
from buildbot.test.fake.web import FakeRequest
from buildbot.test.reactor import TestReactorMixin
from buildbot.www import change_hook
from buildbot.www.hooks import github as buildbot_github

from master import compat

ROOT = Path(__file__).resolve().parents[2]
PIUPARTS = Path("/usr/sbin/piuparts")


def test_every_workaround_is_marked_where_it_lives_and_has_a_canary():
    canaries = {name for name in globals() if name.startswith("test_canary_")} | {
        name for cls in (SetPriorityCanary,) for name in dir(cls) if name.startswith("test_canary_")
    }
    for workaround in compat.WORKAROUNDS:
        text = (ROOT / workaround.where).read_text()
        assert f"compat: {workaround.key}" in text, workaround.where
        assert f"test_canary_{workaround.key}" in canaries, workaround.key
        assert workaround.why and workaround.upstream


# --- github_sha1_only ---------------------------------------------------------------------


def github_request(headers: dict[bytes, bytes], body: bytes) -> FakeRequest:
    request = FakeRequest(content=body)
    request.received_headers = headers
    return request


def upstream_refuses_sha256(handler_class=buildbot_github.GitHubEventHandler) -> bool:
    """Whether Buildbot's handler refuses a request GitHub signed with SHA-256 only."""
    body = b'{"zen": "ok"}'
    signature = "sha256=" + hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    handler = handler_class("secret", True, master=None)
    d = handler._get_payload(
        github_request(
            {b"X-Hub-Signature-256": signature.encode(), b"Content-Type": b"application/json"}, body
        )
    )
    failures = []
    d.addErrback(failures.append)
    return bool(failures) and failures[0].check(ValueError) is not None


def test_canary_github_sha1_only():
    assert upstream_refuses_sha256()


def test_the_github_canary_notices_a_handler_that_takes_sha256():
    class Fixed(buildbot_github.GitHubEventHandler):
        def _get_payload(self, request):
            return defer.succeed({})

    assert not upstream_refuses_sha256(Fixed)


# --- change_hook_answers_itself -----------------------------------------------------------


def upstream_answers_only_202_400_500(resource=change_hook.ChangeHookResource) -> bool:
    source = inspect.getsource(resource.render_POST) + inspect.getsource(
        resource.getAndSubmitChanges
    )
    codes = set(re.findall(r"\b([1-5][0-9][0-9])\b", source))
    return codes == {"202", "400", "500"}


def test_canary_change_hook_answers_itself():
    assert upstream_answers_only_202_400_500()


def test_the_change_hook_canary_notices_a_resource_with_other_codes():
    class Fixed(change_hook.ChangeHookResource):
        def render_POST(self, request):
            request.setResponseCode(409)  # a handler's own answer
            return super().render_POST(request)

    assert not upstream_answers_only_202_400_500(Fixed)


# --- simplemq_skips_consumer --------------------------------------------------------------


def mq_skips_a_consumer(produce=None) -> bool:
    """Two consumers of a topic; the first stops consuming when the message comes: does the
    second miss it?"""
    mq = simple.SimpleMQ()
    if produce is not None:
        mq.produce = produce.__get__(mq)
    got = []
    first = []

    def stop_first(key, message):
        got.append("first")
        first[0].stopConsuming()

    first.append(mq.startConsuming(stop_first, ("thing", None, "complete")).result)
    mq.startConsuming(lambda key, message: got.append("second"), ("thing", None, "complete"))
    mq.produce(("thing", "1", "complete"), {})
    return got == ["first"]


def test_canary_simplemq_skips_consumer():
    assert mq_skips_a_consumer()


def test_the_simplemq_canary_notices_a_fixed_produce():
    def produce(self, routingKey, data):  # iterating over a copy
        for qref in list(self.qrefs):
            if simple.tuplematch.matchTuple(routingKey, qref.filter):
                self.invokeQref(qref, routingKey, data)

    assert not mq_skips_a_consumer(produce)


# --- trigger_waits_for_results -----------------------------------------------------------


def trigger_adds_results(run=None) -> bool:
    """Does Trigger.run (or `run`) still follow each build request it makes through
    _add_results(brid), the private method StartBeside replaces?"""
    from buildbot.steps.trigger import Trigger

    source = inspect.getsource(run or Trigger.run)
    method = getattr(Trigger, "_add_results", None)
    return (
        method is not None
        and list(inspect.signature(method).parameters) == ["self", "brid"]
        and "self._add_results(brid)" in source
    )


def test_canary_trigger_waits_for_results():
    assert trigger_adds_results()


def test_the_trigger_canary_notices_a_trigger_that_no_longer_follows_its_requests():
    def run(self):  # a Trigger that follows a request only when it waits for it
        if self.waitForFinish:
            for brid in self.brids:
                self._follow(brid)

    assert not trigger_adds_results(run)


# --- set_priority_fails -------------------------------------------------------------------


class SetPriorityCanary(TestReactorMixin, unittest.TestCase):
    """On Buildbot's real database layer (SQLite in memory), as the data API calls it."""

    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        self.master = yield fakemaster.make_master(self, wantDb=True, wantData=True)
        yield self.master.db.insert_test_data(
            [
                fakedb.Builder(id=1, name="b"),
                fakedb.Buildset(id=1),
                fakedb.BuildRequest(id=5, buildsetid=1, builderid=1),
            ]
        )

    @defer.inlineCallbacks
    def fails(self) -> object:
        try:
            yield self.master.db.buildrequests.set_build_requests_priority(brids=[5], priority=3)
        except TypeError:
            self.flushLoggedErrors(TypeError)  # (the database layer logs it too)
            return True
        return False

    @defer.inlineCallbacks
    def test_canary_set_priority_fails(self):
        self.assertTrue((yield self.fails()))

    @defer.inlineCallbacks
    def test_the_set_priority_canary_notices_a_fixed_database_layer(self):
        def fixed(brids, priority):
            return defer.succeed(None)

        self.master.db.buildrequests.set_build_requests_priority = fixed
        self.assertFalse((yield self.fails()))


# --- piuparts_chroot_methods --------------------------------------------------------------


def load(name: str, path: Path):
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


TOOL = load("conveyor_install_check", ROOT / "worker" / "bin" / "conveyor-install-check")


@pytest.mark.skipif(not PIUPARTS.exists(), reason="needs piuparts (make system)")
def test_canary_piuparts_chroot_methods():
    # piuparts runs on the system's Python (it needs python3-apt), as the install check does
    proc = subprocess.run(
        [
            "/usr/bin/python3",
            "-W",
            "ignore",
            "-c",
            (
                "import importlib.machinery as m, importlib.util as u, sys\n"
                "def load(name, path):\n"
                "    loader = m.SourceFileLoader(name, path)\n"
                "    module = u.module_from_spec(u.spec_from_loader(name, loader))\n"
                "    loader.exec_module(module)\n"
                "    return module\n"
                "tool = load('tool', sys.argv[1])\n"
                "print(tool.unfit(load('piuparts', sys.argv[2]).Chroot))\n"
            ),
            str(ROOT / "worker" / "bin" / "conveyor-install-check"),
            str(PIUPARTS),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "None"


def test_the_piuparts_canary_notices_a_changed_chroot():
    class Chroot:
        def mount_proc(self):
            pass

        def unpack_from_tgz(self, tarball, compression):
            pass

        def check_for_no_processes(self, fail=None):
            pass

    assert TOOL.unfit(Chroot) == (
        "piuparts' Chroot.unpack_from_tgz(self, tarball, "
        "compression) is not unpack_from_tgz(self, tarball)"
    )
    Chroot.unpack_from_tgz = lambda self, tarball: None
    assert TOOL.unfit(Chroot) == "piuparts' Chroot has no terminate_running_processes()"


# --- twisted_ssl_deprecation --------------------------------------------------------------


def importing_buildbot_ssl_warns(python_flags: tuple[str, ...] = ()) -> bool:
    """Whether a fresh interpreter that turns DeprecationWarnings into errors fails to import
    buildbot.util.ssl."""
    proc = subprocess.run(
        [
            sys.executable,
            "-W",
            "error::DeprecationWarning",
            *python_flags,
            "-c",
            "import buildbot.util.ssl",
        ],
        capture_output=True,
        text=True,
    )
    return proc.returncode != 0 and "ProtocolNegotiationSupport" in proc.stderr


def test_canary_twisted_ssl_deprecation():
    assert importing_buildbot_ssl_warns()


def test_the_ssl_canary_notices_an_import_that_no_longer_warns():
    # what an upstream fix looks like from here: the import passes with warnings as errors
    assert not importing_buildbot_ssl_warns(("-W", "ignore::DeprecationWarning"))
