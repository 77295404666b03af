"""What Conveyor adds to the master's site (master/site.py): the artifacts and Buildbot's /sse are
for users with a role that may read (master/authz.readers), or for anyone when public."""

from __future__ import annotations

from types import SimpleNamespace

from twisted.web import resource
from twisted.web.test.requesthelper import DummyRequest

from buildbot.www.authz.authz import Authz
from buildbot.www.authz.roles import RolesFromUsername

from master import site

READERS = ("developers", "releasers")


def master():
    authz = Authz(roleMatchers=[RolesFromUsername(roles=["developers"], usernames=["dev"])])
    return SimpleNamespace(www=SimpleNamespace(authz=authz))


def request(user_info: dict | None) -> DummyRequest:
    req = DummyRequest([b"listen"])
    req.getSession = lambda: SimpleNamespace(user_info=user_info)
    return req


class Events(resource.Resource):
    isLeaf = True

    def render(self, request):
        return b"event: handshake\n"


def test_only_a_user_with_a_reading_role_reads():
    m = master()
    assert site.reader(m, request({"username": "dev"}), READERS)
    assert not site.reader(m, request({"username": "nobody"}), READERS)  # logged in, no role
    assert not site.reader(m, request({"anonymous": True}), READERS)
    assert not site.reader(m, request(None), READERS)


def test_the_event_stream_refuses_anonymous_users_with_a_401():
    guarded = site.GuardedEvents(master(), Events(), False, READERS)
    anonymous = request({"anonymous": True})
    result = guarded.render(anonymous)
    body = result if isinstance(result, bytes) else b"".join(anonymous.written)
    assert anonymous.responseCode == 401 and b"log in" in body
    assert b"handshake" not in body
    assert guarded.render(request({"username": "dev"})) == b"event: handshake\n"


def test_a_public_event_stream_is_for_anyone_and_public_artifacts_are_their_own_setting():
    events = site.GuardedEvents(master(), Events(), True, READERS)
    assert events.render(request({"anonymous": True})) == b"event: handshake\n"
    artifacts = site.ArtifactsResource(master(), "/nonexistent", False, READERS)
    assert not artifacts.allowed(request({"anonymous": True}))
    assert artifacts.allowed(request({"username": "dev"}))
    assert site.ArtifactsResource(master(), "/nonexistent", True, READERS).allowed(
        request({"anonymous": True})
    )
