"""The release board's data (conveyor/board.py): cells, waiting commits, failing since, the
coverage trend, and collect() over a fake source."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

from conveyor import board
from conveyor.approvals import Approvals

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
A, B, C, D = ("a" * 40, "b" * 40, "c" * 40, "d" * 40)

PROJECT = SimpleNamespace(
    name="snowbird",
    github="sprintly/snowbird",
    branch="main",
    packages=("snowbird",),
    ci_builder="snowbird-ci",
    path=("snowbird-development", "snowbird-staging", "snowbird"),
)
REPO = SimpleNamespace(url="http://repo.test/", component="main", architectures=("amd64", "all"))
SETTINGS = SimpleNamespace(
    projects=(PROJECT,),
    repository=REPO,
    distributions=PROJECT.path,
    approvals=Approvals(),
    targets_of=lambda dist: (),  # one component (see test_targets for target releases)
)


def stanza(version, commit, number):
    return (
        f"Package: snowbird\nVersion: {version}\nArchitecture: amd64\n"
        f"Conveyor-Commit: {commit}\n"
        f"Conveyor-Build: http://ci.test/#/builders/1/builds/{number}\n"
    )


def change(
    changeid,
    revision,
    author="Ann <ann@x>",
    comments="a commit\n\nbody",
    branch="main",
    category=None,
):
    return {
        "changeid": changeid,
        "revision": revision,
        "author": author,
        "comments": comments,
        "branch": branch,
        "category": category,
    }


CHANGES = [
    change(1, A, comments="first"),
    change(2, B, "Bob <bob@x>", "second\nmore"),
    change(3, "e" * 40, category="pull", branch="refs/pull/1/head"),
    change(4, C, "Cy <cy@x>", "third"),
    change(5, D, branch="other"),
]


def test_waiting_commits_are_those_after_the_older_up_to_the_newer():
    waiting = board.waiting_commits(CHANGES, "sprintly/snowbird", "main", A, C)
    assert [(c["short"], c["author"], c["subject"]) for c in waiting["commits"]] == [
        ("bbbbbbb", "Bob <bob@x>", "second"),
        ("ccccccc", "Cy <cy@x>", "third"),
    ]
    assert waiting["commits"][0]["url"] == f"https://github.com/sprintly/snowbird/commit/{B}"
    assert waiting["known"]


def test_nothing_waits_when_both_hold_the_same_commit_or_the_source_none():
    assert board.waiting_commits(CHANGES, "o/n", "main", C, C)["commits"] == []
    assert board.waiting_commits(CHANGES, "o/n", "main", C, None)["commits"] == []


def test_an_empty_target_lists_the_last_commits_up_to_the_newer():
    waiting = board.waiting_commits(CHANGES, "o/n", "main", None, B)
    assert [c["revision"] for c in waiting["commits"]] == [A, B]


def test_a_commit_the_master_does_not_know_is_said_so():
    waiting = board.waiting_commits(CHANGES, "o/n", "main", A, "f" * 40)
    assert waiting == {**waiting, "known": False, "commits": []}
    # other branches and pull requests are never waiting commits
    assert board.waiting_commits(CHANGES, "o/n", "main", A, D)["known"] is False


def test_a_redelivered_commit_is_listed_once():
    changes = CHANGES + [change(6, C, comments="third")]
    waiting = board.waiting_commits(changes, "o/n", "main", A, C)
    assert [c["revision"] for c in waiting["commits"]] == [B, C]


def failing(number, names):
    return {"number": number, "failing_tests": names}


def test_failing_since_is_the_first_build_of_the_current_run():
    builds = [
        failing(9, ["t1", "t2"]),
        failing(8, None),
        failing(7, ["t1"]),
        failing(6, ["t1", "t2"]),
        failing(5, []),
    ]
    assert board.failing_since(builds, "t1") == 6
    assert board.failing_since(builds, "t2") == 9  # passed in 7: the run starts at 9
    assert board.failing_since([failing(3, ["t"]), failing(2, ["t"]), failing(1, ["t"])], "t") == 1


def test_trend_svg_draws_each_known_point_and_the_threshold():
    svg = board.trend_svg([(1, 80.0), (2, None), (3, 90.5), (4, 100)], threshold=85)
    root = ET.fromstring(svg)  # well-formed XML
    ns = "{http://www.w3.org/2000/svg}"
    circles = root.findall(f"{ns}circle")
    assert [c.find(f"{ns}title").text for c in circles] == ["#1: 80%", "#3: 90.5%", "#4: 100%"]
    (line,) = root.findall(f"{ns}polyline")
    ys = [float(p.split(",")[1]) for p in line.get("points").split()]
    assert ys[0] > ys[1] > ys[2]  # higher coverage is drawn higher
    assert root.find(f"{ns}line").get("stroke-dasharray")
    assert "no coverage yet" in board.trend_svg([(1, None)])


def test_ago():
    assert board.ago(datetime(2026, 11, 26, 11, 59, 30, tzinfo=UTC), NOW) == "just now"
    assert board.ago(datetime(2026, 11, 26, 11, 55, tzinfo=UTC), NOW) == "5 min ago"
    assert board.ago(datetime(2026, 11, 24, 10, 0, tzinfo=UTC), NOW) == "2 days ago"
    assert board.ago(None, NOW) == ""


class FakeSource:
    def __init__(self, texts, builds=(), others=None):
        self.texts, self._builds = texts, list(builds)
        self.others = others or {}  # builder name: builds

    def text(self, url):
        return self.texts.get(url)

    def changes(self, project):
        return CHANGES

    def builds(self, project, limit):
        return self._builds[:limit]

    def recent(self, builder, limit):
        if builder == "snowbird-ci":
            return self._builds[:limit]
        return self.others.get(builder, [])[:limit]


def index(dist):
    return f"http://repo.test/dists/{dist}/main/binary-amd64/Packages"


def history(dist):
    return f"http://repo.test/history/{dist}.jsonl"


STAGING = stanza("1.4.0+ci1.gaaaaaaa", A, 1) + "\n" + stanza("1.4.0+ci4.gccccccc", C, 4)
TEXTS = {
    index("snowbird-development"): "",
    index("snowbird-staging"): STAGING,
    index("snowbird"): stanza("1.4.0+ci1.gaaaaaaa", A, 1),
    history("snowbird-staging"): '{"n": 1, "action": "create", "snapshot": "s1", "version": null}\n'
    '{"n": 2, "action": "publish", "snapshot": "s2", "package": "snowbird", '
    '"version": "1.4.0+ci1.gaaaaaaa", "who": "ann", "when": "2026-11-26T10:00:00+00:00", '
    '"build": "http://ci.test/#/builders/2/builds/1"}\n'
    '{"n": 3, "action": "publish", "snapshot": "s3", "package": "snowbird", '
    '"version": "1.4.0+ci4.gccccccc", "who": "cy", "when": "2026-11-26T11:00:00+00:00", '
    '"build": "http://ci.test/#/builders/2/builds/2"}\n',
    history("snowbird"): '{"n": 1, "action": "promote", "snapshot": "p1", "package": "snowbird", '
    '"version": "1.4.0+ci1.gaaaaaaa", "from": "snowbird-staging", "who": "releaser", '
    '"when": "2026-11-26T11:30:00+00:00", "build": "http://ci.test/#/builders/3/builds/1", '
    '"provenance": "verified"}\n',
}


def build(number, results, failing_tests, coverage=None, failures=()):
    return {
        "number": number,
        "builderid": 1,
        "results": results,
        "complete": True,
        "failing_tests": failing_tests,
        "properties": {
            "coverage_percent": coverage,
            "coverage_threshold": 80.0,
            "tests_passed": 10,
            "tests_failed": len(failing_tests or []),
            "tests_failures": [{"name": n, "text": t} for n, t in failures],
        },
    }


def test_collect_gives_cells_waiting_commits_history_and_ci():
    builds = [
        build(4, 0, [], 91.0),
        build(3, 2, ["t::x"], 90.0, [("t::x", "assert 1 == 2\nE  boom")]),
        build(2, 2, ["t::x"], 89.0),
        build(1, 0, [], 88.0),
    ]
    data = board.collect(
        SETTINGS,
        FakeSource(TEXTS, builds),
        lambda b: f"http://ci.test/#/builders/1/builds/{b['number']}",
        NOW,
    )
    (path,) = data.paths
    development, staging, production = path["cells"]
    assert development["version"] is None and development["reachable"]
    assert staging["version"] == "1.4.0+ci4.gccccccc"
    assert staging["commit_url"] == f"https://github.com/sprintly/snowbird/commit/{C}"
    assert staging["build_url"] == "http://ci.test/#/builders/1/builds/4"
    assert staging["build_number"] == 4
    assert (staging["who"], staging["action"], staging["ago"]) == ("cy", "publish", "1 h ago")
    assert (production["who"], production["action"]) == ("releaser", "promote")
    # the promotion into production checked the package's signed provenance; staging's
    # publish predates provenance: no claim
    assert (production["provenance"], staging["provenance"]) == ("verified", None)
    step = path["steps"][1]
    assert (step["source"], step["target"], step["promotable"], step["production"]) == (
        "snowbird-staging",
        "snowbird",
        True,
        True,
    )
    assert [c["subject"] for c in step["commits"]] == ["second", "third"]
    assert not path["steps"][0]["promotable"]  # development holds nothing
    (ci,) = data.ci
    assert ci["red_build"] == 3
    assert ci["failing"] == [
        {
            "name": "t::x",
            "text": "assert 1 == 2\nE  boom",
            "since": 2,
            "since_url": "http://ci.test/#/builders/1/builds/2",
        }
    ]
    assert "<svg" in ci["trend_svg"] and ci["latest_coverage"] == 91.0
    as_json = data.as_json()
    assert as_json["histories"]["snowbird"][0]["ago"] == "30 min ago"
    assert "trend_svg" not in as_json["ci"][0]


def test_an_unreachable_repository_is_said_so_per_cell():
    data = board.collect(SETTINGS, FakeSource({}), lambda b: "", NOW, with_builds=False)
    assert [c["reachable"] for c in data.paths[0]["cells"]] == [False, False, False]
    assert data.ci == []


def publish(
    number, results, version, *, project="snowbird", dist="snowbird-staging", state="done", **props
):
    return {
        "number": number,
        "builderid": 9,
        "results": results,
        "complete": True,
        "complete_at": 1_780_000_000 + number,
        "state_string": state,
        "properties": {
            "project": project,
            "distribution": dist,
            "package_version": version,
            **props,
        },
    }


def test_a_publish_failed_for_good_needs_attention_until_a_later_one_makes_it_good():
    publishes = [  # newest first
        publish(5, 2, "1.5+ci5", state="failed switch"),
        publish(4, 0, "1.5+ci4", project="other", dist="other-staging"),
        publish(3, 0, "1.5+ci3"),
        publish(2, 4, "1.5+ci2", state="exception"),
    ]
    data = board.collect(
        SETTINGS,
        FakeSource(TEXTS, others={"publish": publishes}),
        lambda b: f"http://ci.test/#/builders/{b['builderid']}/builds/{b['number']}",
        NOW,
        with_builds=False,
    )
    # 5 failed and nothing of snowbird came into snowbird-staging since (4 is another
    # project's); 2 failed too, but 3 published snowbird into staging after it
    assert data.attention == [
        {
            "kind": "publish failed",
            "when": "2026-05-28T20:26:45+00:00",
            "url": "http://ci.test/#/builders/9/builds/5",
            "text": "snowbird 1.5+ci5 was not published into snowbird-staging: failed switch",
        }
    ]
    assert data.as_json()["attention"] == data.attention


def test_a_mail_that_could_not_be_sent_needs_attention():
    promote = {**publish(7, 0, "1.5+ci3"), "builderid": 10}
    promote["properties"]["mail_failed"] = "[conveyor] snowbird released: 550 no such user"
    ci = build(4, 2, ["t::x"], 90.0)
    ci["properties"]["mail_failed"] = "[conveyor] FAILED: 421 try later"
    ci["complete_at"] = 1_700_000_000
    data = board.collect(
        SETTINGS,
        FakeSource(TEXTS, [ci], others={"promote": [promote]}),
        lambda b: f"#{b['builderid']}/{b['number']}",
        NOW,
    )
    assert [(a["kind"], a["text"], a["url"]) for a in data.attention] == [
        ("mail not sent", "[conveyor] snowbird released: 550 no such user", "#10/7"),
        ("mail not sent", "[conveyor] FAILED: 421 try later", "#1/4"),
    ]


# --- bin/conveyor status ----------------------------------------------------------------------


def run_status(monkeypatch, capsys, *args, others=None):
    import json

    import ops.board
    from conveyor import settings as settings_module
    from ops import cli

    settings = SimpleNamespace(
        **vars(SETTINGS), web_url="http://ci.test/", secrets_dir=Path("/nonexistent")
    )
    builds = [build(2, 2, ["t::x"], 90.0, [("t::x", "assert 1 == 2")]), build(1, 0, [], 88.0)]
    monkeypatch.setattr(ops.board, "RestSource", lambda master: FakeSource(TEXTS, builds, others))
    monkeypatch.setattr(settings_module, "load", lambda path: settings)
    assert cli.main(["status", *args]) == 0
    out = capsys.readouterr().out
    return json.loads(out) if "--json" in args else out


def test_status_prints_the_grid_and_the_commits_waiting_per_step(monkeypatch, capsys):
    out = run_status(monkeypatch, capsys)
    rows = [line.split() for line in out.splitlines()]
    assert [
        "snowbird",
        "snowbird-staging",
        "1.4.0+ci4.gccccccc",
        "ccccccc",
        "#4",
        "publish",
        "by",
        "cy",
        "1",
        "h",
        "ago",
    ] in rows or any(
        r[:8]
        == [
            "snowbird",
            "snowbird-staging",
            "1.4.0+ci4.gccccccc",
            "ccccccc",
            "#4",
            "publish",
            "by",
            "cy",
        ]
        for r in rows
    )
    assert (
        "snowbird: snowbird-staging → snowbird: 1.4.0+ci4.gccccccc waits, 2 commit(s)\n"
        "  bbbbbbb  second  (Bob <bob@x>)\n  ccccccc  third  (Cy <cy@x>)\n"
    ) in out
    assert (
        "snowbird: snowbird-development → snowbird-staging: nothing in snowbird-development" in out
    )


def test_status_json_gives_the_same_grid_and_waiting_commits(monkeypatch, capsys):
    data = run_status(monkeypatch, capsys, "--json")
    (path,) = data["paths"]
    assert [c["version"] for c in path["cells"]] == [
        None,
        "1.4.0+ci4.gccccccc",
        "1.4.0+ci1.gaaaaaaa",
    ]
    step = path["steps"][1]
    assert (step["source"], step["target"], step["version"], step["previous"]) == (
        "snowbird-staging",
        "snowbird",
        "1.4.0+ci4.gccccccc",
        "1.4.0+ci1.gaaaaaaa",
    )
    assert [(c["short"], c["author"], c["subject"]) for c in step["commits"]] == [
        ("bbbbbbb", "Bob <bob@x>", "second"),
        ("ccccccc", "Cy <cy@x>", "third"),
    ]
    assert data["histories"]["snowbird"][0]["who"] == "releaser"
    (ci,) = data["ci"]
    assert ci["failing"] == [
        {
            "name": "t::x",
            "text": "assert 1 == 2",
            "since": 2,
            "since_url": "http://ci.test/#/builders/1/builds/2",
        }
    ]


def test_status_without_the_master_still_shows_the_versions(monkeypatch, capsys):
    """The repository answers, the master does not: the grid, and a word on stderr."""
    import ops.board
    from conveyor import settings as settings_module
    from ops import cli
    from ops.api import UNREACHABLE
    from ops.api import ApiError

    class Down:
        def get(self, path):
            raise ApiError("cannot reach http://ci.test/: refused", UNREACHABLE)

    source = ops.board.RestSource(Down())
    monkeypatch.setattr(source, "text", lambda url: TEXTS.get(url))
    monkeypatch.setattr(ops.board, "RestSource", lambda master: source)
    monkeypatch.setattr(
        settings_module,
        "load",
        lambda path: SimpleNamespace(
            **vars(SETTINGS), web_url="http://ci.test/", secrets_dir=Path("/nonexistent")
        ),
    )
    assert cli.main(["status"]) == 0
    out, err = capsys.readouterr()
    assert "1.4.0+ci4.gccccccc waits, 0 commit(s) (as far as the master's changes go)" in out
    assert "no commits listed: cannot reach http://ci.test/" in err


def test_a_frozen_distribution_is_shown_on_its_cell_its_step_and_in_status(monkeypatch, capsys):
    frozen = (
        '{"frozen": true, "reason": "release weekend", "who": "ada", '
        '"when": "2026-11-26T11:45:00+00:00"}'
    )
    texts = {
        **TEXTS,
        "http://repo.test/history/snowbird.freeze.json": frozen,
        "http://repo.test/history/snowbird-staging.freeze.json": '{"frozen": false}',
    }
    data = board.collect(SETTINGS, FakeSource(texts), lambda b: "", NOW, with_builds=False)
    (path,) = data.paths
    assert [bool(c["frozen"]) for c in path["cells"]] == [False, False, True]
    assert path["steps"][1]["frozen"]["reason"] == "release weekend"
    assert not path["steps"][0]["frozen"]
    assert list(data.as_json()["frozen"]) == ["snowbird"]
    before = dict(TEXTS)
    TEXTS.update(texts)
    try:
        out = run_status(monkeypatch, capsys)
    finally:
        TEXTS.clear()
        TEXTS.update(before)
    assert (
        "snowbird is FROZEN: release weekend (by ada, 2026-11-26T11:45:00+00:00): no "
        "promotion into it; rollback still works"
    ) in out
    assert "snowbird: snowbird-staging → snowbird: snowbird is frozen" in out


def test_status_says_what_needs_attention(monkeypatch, capsys):
    out = run_status(
        monkeypatch,
        capsys,
        others={"publish": [publish(5, 2, "1.5+ci5", state="GnuPG could not sign")]},
    )
    assert (
        "PUBLISH FAILED (2026-05-28T20:26:45+00:00): snowbird 1.5+ci5 was not published "
        "into snowbird-staging: GnuPG could not sign\n  http://ci.test/#/builders/9/builds/5"
    ) in out
