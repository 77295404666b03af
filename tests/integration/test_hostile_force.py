"""Hostile force requests against a running master: wrong types, bad grammar, unknown names and
other builders' ids, sent by a releaser with the production role to `promote`, `rollback` and
`snowbird-force`. Every one is refused with HTTP 400 and a message that names the field (or the
builder); none is a 5xx; no build set, build request or build is created; the published tree
(dists/, pool/, history/) stays byte-identical. Then the requests real clients send (the React
form's, the CLI's) still pass.

No push is needed: nothing is published, so an accepted request would fail in its first step.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from conveyor.results import NAMES
from ops import api
from tests.integration.helpers import running_installation
from tests.integration.helpers import users_file

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="starts the services as root like make run"),
]

USERS = {"releaser": ("releaser-password", "releasers,release-managers")}
STAGING, PRODUCTION, DEVELOPMENT = "snowbird-staging", "snowbird", "snowbird-development"
CI_FORCE = "snowbird-force"
OWN = {"promote": "promote", "rollback": "rollback", CI_FORCE: "snowbird-ci"}
VALID = {  # a request each scheduler accepts (never sent here but with one field spoilt)
    "promote": {
        "package": "snowbird",
        "version": "",
        "from_dist": STAGING,
        "to_dist": PRODUCTION,
        "reason": "hostile",
    },
    "rollback": {"distribution": PRODUCTION, "state": "", "reason": "hostile"},
    CI_FORCE: {"reason": "hostile"},
}
FIELDS = {
    "promote": ["package", "version", "from_dist", "to_dist", "reason", "username"],
    "rollback": ["distribution", "state", "reason", "username"],
    CI_FORCE: ["reason", "username"],
}
WRONG_TYPES = [
    0,
    7,
    -1,
    2.5,
    10**30,
    True,
    False,
    None,
    {},
    {"a": "b"},
    [],
    [""],
    ["snowbird"],
    [1],
    [None],
    ["a", "b"],
    [[]],
    [{}],
]
BAD_DISTRIBUTIONS = [
    "x;rm",
    "../etc",
    "SNOWBIRD",
    "snowbird\n",
    " snowbird",
    "snowbird/x",
    "-x",
    "a b",
    "$(id)",
    "\ud800",
]
BAD_GRAMMAR = {
    "package": [
        "../x",
        "snow;bird",
        "Snowbird",
        "snowbird\n",
        " snowbird",
        "x",
        "-snowbird",
        "snowbird/..",
        "$(id)",
        "s" * 300,
        " ",
    ],
    "version": [
        "1.0 (>= 0)",
        "1.0; rm -rf /",
        "1.0\n",
        " 1.0",
        "v1.0",
        "1.0|x",
        "../1.0",
        "1.0 1",
        "$(id)",
        "1.0`id`",
        "-1.0",
        "1.0&&x",
        " ",
    ],
    "from_dist": BAD_DISTRIBUTIONS,
    "to_dist": BAD_DISTRIBUTIONS,
    "distribution": BAD_DISTRIBUTIONS,
    "state": ["-1", "1; rm", "../x", " 1", "1\n", "1 2", "Snap", "x/y", " ", "1.5e3 "],
    "reason": [
        "x" * 201,
        "a\x00b",
        "line\nbreak",
        "\x1b[31mred",
        "tab\there",
        "\u202eevil",
        "\ud800",
        " ",
    ],
}
UNKNOWN_NAMES = {
    "package": ["nosuch", "snowbird-other"],
    "from_dist": ["nosuch", "snowbird-production"],
    "to_dist": ["nosuch"],
    "distribution": ["nosuch", "other-dist"],
}
BAD_IDS = [
    "abc",
    "1.5",
    "",
    " 1",
    -1,
    2.5,
    True,
    False,
    None,
    [],
    [1],
    {},
    10**30,
    0,
    9999,
    123456789,
]


def cases(ids: dict[str, int]) -> list[tuple[str, dict, str]]:
    """(scheduler, params, the field the refusal must name), every one invalid."""
    found = []

    def add(scheduler, field, **changes):
        params = {"builderid": ids[OWN[scheduler]], **VALID[scheduler], **changes}
        found.append((scheduler, {k: v for k, v in params.items() if v is not DROP}, field))

    for scheduler, fields in FIELDS.items():
        for field in fields:
            for value in WRONG_TYPES:
                add(scheduler, field, **{field: value})
            for value in BAD_GRAMMAR.get(field, []) + UNKNOWN_NAMES.get(field, []):
                add(scheduler, field, **{field: value})
        # another builder (by id or by name), an unknown one, a malformed one
        for name, builderid in ids.items():
            if name != OWN[scheduler]:
                add(scheduler, name, builderid=builderid)
                add(scheduler, name, builderid=DROP, builderNames=[name])
                add(scheduler, name, builderNames=[OWN[scheduler], name])
        for value in BAD_IDS:
            add(scheduler, "builderid", builderid=value)
        for value in ("promote", [], [1], None, {}, ["nosuch"], [None], 5):
            add(scheduler, "builderNames", builderid=DROP, builderNames=value)
        # parameters it does not have, and the other fields Buildbot's form carries
        for name in ("versoin", "evil", "self", "properties", "__init__", "builderName"):
            add(scheduler, name, **{name: "1.0"})
        for value in (None, "abc", 10**30, [1], {}, 2.5, True, "1e5", " 1"):
            add(scheduler, "priority", priority=value)
        for name in ("branch", "revision", "repository", "project"):
            for value in ("evil", 1, None, [], ["main"]):
                add(scheduler, name, **{name: value})
    # the rules the promote scheduler checks before any build
    add("promote", "to_dist", from_dist=DEVELOPMENT, to_dist=PRODUCTION)
    add("promote", "to_dist", from_dist=PRODUCTION, to_dist="")
    add("promote", "to_dist", from_dist=STAGING, to_dist=DEVELOPMENT)
    return found


DROP = object()  # a parameter left out of the request


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    with running_installation(
        "hostile-force",
        extra='[auth]\nproduction = ["release-managers"]\n',
        before_start=users_file(USERS),
    ) as settings:
        yield settings


@pytest.fixture(scope="module")
def releaser(installation) -> api.Master:
    master = api.Master(installation.web_url)
    master.login("releaser", USERS["releaser"][0])
    return master


def published(settings) -> dict[str, str]:
    """sha256 of every file of the published tree and the histories."""
    www = settings.repository.www_root
    return {
        str(path): hashlib.sha256(path.read_bytes()).hexdigest()
        for root in (www / "dists", www / "pool", settings.history_dir)
        if root.exists()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def counts(master: api.Master) -> dict[str, int]:
    return {what: len(master.get(what)[what]) for what in ("buildsets", "buildrequests", "builds")}


def force(master: api.Master, scheduler: str, params: dict) -> tuple[int, str]:
    """(HTTP status, message); 200 and the result for an accepted request."""
    try:
        reply = master.request(
            f"api/v2/forceschedulers/{scheduler}",
            {"jsonrpc": "2.0", "method": "force", "id": 1, "params": params},
        )
    except api.ApiError as exc:
        status, _, message = str(exc).partition(": ")
        return int(status), message
    return 200, str(reply)


def test_every_hostile_force_is_a_clear_400_and_changes_nothing(installation, releaser):
    ids = {b["name"]: b["builderid"] for b in releaser.get("builders")["builders"]}
    assert set(OWN.values()) <= set(ids), ids
    tree, before = published(installation), counts(releaser)
    assert tree, "the installation publishes its distributions"
    hostile = cases(ids)
    assert len(hostile) >= 300

    wrong = []
    for scheduler, params, field in hostile:
        status, message = force(releaser, scheduler, params)
        if status != 400 or field not in message:
            wrong.append(f"{scheduler} {params!r}: {status} {message[:300]}")
    assert not wrong, f"{len(wrong)} of {len(hostile)} not refused as they should:\n" + "\n".join(
        wrong
    )

    assert counts(releaser) == before, "a refused request created a build"
    assert published(installation) == tree


def test_the_requests_clients_send_still_pass(installation, releaser):
    """The React form sends every field as its value (a string; the priority a number; the
    builder id a string); the CLI sends strings with an integer builder id."""
    ids = {b["name"]: b["builderid"] for b in releaser.get("builders")["builders"]}
    tree, before = published(installation), counts(releaser)
    form = {
        "builderid": str(ids["promote"]),
        "username": "",
        "reason": "promotion",
        "priority": 0,
        "branch": "",
        "project": "",
        "repository": "",
        "revision": "",
        "package": "snowbird",
        "version": "",
        "from_dist": DEVELOPMENT,
        "to_dist": "",
    }
    # "the newest" of a distribution that has none: refused when asked (master/basis.py)
    status, message = force(releaser, "promote", form)
    assert status == 400 and f"refused: {DEVELOPMENT} serves no snowbird" in message, message
    assert counts(releaser) == before

    reply = releaser.request(
        "api/v2/forceschedulers/promote",
        {
            "jsonrpc": "2.0",
            "method": "force",
            "id": 1,
            "params": {**form, "version": "1.4.0+ci1.g24b95e0"},
        },
    )
    _bsid, brids = reply["result"]
    build = releaser.follow(int(brids[str(ids["promote"])]), timeout=120)
    assert NAMES[build["results"]] == "FAILURE"  # no such version: refused by its rules
    assert any(f"{DEVELOPMENT} has no snowbird" in s["state_string"] for s in build["steps"])

    build = releaser.follow(
        releaser.force(
            "promote",
            "promote",
            package="snowbird",
            version="1.4.0+ci1.g24b95e0",
            from_dist=STAGING,
            to_dist=PRODUCTION,
            reason="cli",
        ),
        timeout=120,
    )
    assert NAMES[build["results"]] == "FAILURE"
    assert published(installation) == tree
