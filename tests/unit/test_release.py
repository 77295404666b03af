"""The release model (conveyor/release.py) and the Debian formats (conveyor/debformats.py):
versions, the path rules, rollback targets, users."""

import shutil
import subprocess
from datetime import UTC
from datetime import datetime

import pytest

from conveyor import debformats
from conveyor import release
from conveyor import results
from conveyor import users
from conveyor.release import ReleaseError
from conveyor.settings import SettingsError

PATH = ("snowbird-development", "snowbird-staging", "snowbird")

PAIRS = [
    ("1.0", "1.0"),
    ("1.0~rc1", "1.0"),
    ("1.4.0+ci9.gabc1234", "1.4.0+ci10.gabc1234"),
    ("1:0.1", "2.0"),
    ("1.0-1", "1.0-2"),
    ("1.0a", "1.0"),
    ("1.0", "1.0+b1"),
    ("2.0~~", "2.0~"),
    ("1.10", "1.9"),
    ("0.0.1", "0.0.01"),
    ("1.0+ci100.g1", "1.0+ci99.g9"),
]


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is the oracle")
@pytest.mark.parametrize("a, b", PAIRS)
def test_version_order_is_dpkgs(a, b):
    ours = debformats.compare_versions(a, b)
    for op, holds in (("lt", ours < 0), ("eq", ours == 0), ("gt", ours > 0)):
        dpkg = subprocess.run(["dpkg", "--compare-versions", a, op, b]).returncode == 0
        assert dpkg == holds, (a, op, b)


def test_newest():
    assert debformats.newest({"1.4.0+ci9.g1", "1.4.0+ci10.g2", "1.3.9"}) == "1.4.0+ci10.g2"
    assert debformats.newest(set()) is None


WHEN = datetime(2026, 11, 26, 14, 30, 5, tzinfo=UTC)


def test_ci_version_keeps_epoch_and_drops_revision():
    head = debformats.parse_changelog_head("foo (2:1.4.0-3) unstable; urgency=low\n")
    assert (
        debformats.ci_version(head, 57, "3f2a9c1d5e", WHEN)
        == "2:1.4.0+ci20261126.143005.57.g3f2a9c1"
    )
    with pytest.raises(ReleaseError, match="not a git commit id"):
        debformats.ci_version(head, 57, "main", WHEN)


def dpkg_sorted(versions: list[str]) -> list[str]:
    """The versions in dpkg's order (insertion sort with dpkg --compare-versions as the oracle)."""
    result: list[str] = []
    for v in versions:
        i = len(result)
        while (
            i
            and subprocess.run(["dpkg", "--compare-versions", result[i - 1], "gt", v]).returncode
            == 0
        ):
            i -= 1
        result.insert(i, v)
    return result


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is the oracle")
def test_ci_versions_sort_as_the_pushes_came_across_a_lost_database():
    """Pushes in this order: build numbers 41, 42 on one master database, then the database is
    lost and numbers start at 1 again (even within the same second as the last push), and the
    clock crosses a day, a year, a minute's digit count. dpkg orders them as they came, and
    every one above the old scheme's versions already published (+ci<number>.g<sha>)."""
    head = debformats.parse_changelog_head("snowbird (1.4.0) unstable; urgency=low\n")
    pushes = [
        (41, datetime(2026, 11, 26, 9, 59, 59)),
        (42, datetime(2026, 11, 26, 10, 0, 0)),
        (43, datetime(2026, 11, 26, 10, 0, 0)),  # same second: the number decides
        (1, datetime(2026, 11, 26, 10, 0, 1)),  # database lost: numbers start again
        (2, datetime(2026, 11, 26, 23, 59, 59)),
        (3, datetime(2026, 11, 27, 0, 0, 0)),
        (4, datetime(2026, 12, 31, 23, 59, 59)),
        (5, datetime(2027, 1, 1, 0, 0, 0)),
        (100000, datetime(2027, 1, 1, 0, 0, 1)),
    ]
    made = [
        debformats.ci_version(head, number, f"{i:07x}", when.replace(tzinfo=UTC))
        for i, (number, when) in enumerate(pushes)
    ]
    old_scheme = ["1.4.0", "1.4.0+ci1.g0000000", "1.4.0+ci57.gabcdef0", "1.4.0+ci99999.g1"]
    assert dpkg_sorted(list(reversed(old_scheme + made))) == old_scheme + made
    # and the next upstream release still sorts above every CI build of this one
    assert dpkg_sorted([made[-1], "1.4.1"]) == [made[-1], "1.4.1"]


def test_one_step_at_a_time():
    release.check_step(PATH, "snowbird-staging", "snowbird")
    with pytest.raises(
        ReleaseError,
        match="rule 'one step at a time': from snowbird-development "
        "a version goes to snowbird-staging, not snowbird",
    ):
        release.check_step(PATH, "snowbird-development", "snowbird")
    with pytest.raises(ReleaseError, match="rule 'one step at a time'"):
        release.check_step(PATH, "snowbird-staging", "snowbird-development")
    with pytest.raises(ReleaseError, match="snowbird is the end of the path"):
        release.check_step(PATH, "snowbird", "snowbird")
    with pytest.raises(ReleaseError, match="'elsewhere' is not on the promotion path"):
        release.check_step(PATH, "snowbird-staging", "elsewhere")


def test_plan_takes_the_newest_by_default():
    plan = release.plan_promotion(
        "snowbird",
        "",
        "snowbird-staging",
        "snowbird",
        {"1.0+ci2.ga", "1.0+ci10.gb"},
        {"1.0+ci1.gc"},
    )
    assert (plan.version, plan.previous, plan.noop) == ("1.0+ci10.gb", "1.0+ci1.gc", False)


def test_plan_refuses_a_version_not_in_the_source():
    with pytest.raises(
        ReleaseError,
        match=r"rule 'version must be in the source': snowbird 9.9 "
        r"is not in snowbird-staging \(it has 1.0\+ci2.ga, "
        r"1.0\+ci10.gb\)",
    ):
        release.plan_promotion(
            "snowbird", "9.9", "snowbird-staging", "snowbird", {"1.0+ci10.gb", "1.0+ci2.ga"}, set()
        )
    with pytest.raises(ReleaseError, match="snowbird-staging has no snowbird"):
        release.plan_promotion("snowbird", "", "snowbird-staging", "snowbird", set(), set())


def test_plan_already_there_changes_nothing():
    plan = release.plan_promotion(
        "snowbird",
        "1.0+ci2.ga",
        "snowbird-staging",
        "snowbird",
        {"1.0+ci2.ga"},
        {"1.0+ci2.ga", "1.0+ci1.gx"},
    )
    assert plan.noop


def test_plan_refuses_a_downgrade():
    with pytest.raises(
        ReleaseError,
        match="rule 'no downgrade by promotion': snowbird 1.0\\+ci2"
        ".ga is older than 1.0\\+ci5.gb in snowbird; to go "
        "back, use the rollback builder",
    ):
        release.plan_promotion(
            "snowbird", "1.0+ci2.ga", "snowbird-staging", "snowbird", {"1.0+ci2.ga"}, {"1.0+ci5.gb"}
        )


HISTORY = [
    {"n": i + 1, "snapshot": s, "version": v, "action": "publish"}
    for i, (s, v) in enumerate([("s1", None), ("s2", "1"), ("s3", "2"), ("s2", "1")])
]


def test_rollback_walks_back_one_state_each_time():
    assert release.rollback_target(HISTORY[:3], "s3", None)["snapshot"] == "s2"
    # after rolling back to s2, the previous state is the one before s2, not s3 again
    assert release.rollback_target(HISTORY, "s2", None)["snapshot"] == "s1"
    with pytest.raises(ReleaseError, match="at its first state"):
        release.rollback_target(HISTORY[:1], "s1", None)


def test_the_empty_initial_state_only_when_named():
    # two rollbacks in a row emptied production: the second walked back to the state the
    # distribution was created with
    history = [
        {"n": 1, "snapshot": "s0", "version": None, "action": "create"},
        {"n": 2, "snapshot": "s1", "version": "1", "action": "publish"},
    ]
    with pytest.raises(
        ReleaseError,
        match="the state before is the empty one the distribution "
        "started with \\(state 1\\): to empty it, name",
    ):
        release.rollback_target(history, "s1", None)
    assert release.rollback_target(history, "s1", "1")["snapshot"] == "s0"


def test_rollback_to_a_chosen_state():
    assert release.rollback_target(HISTORY[:3], "s3", "1")["snapshot"] == "s1"
    assert release.rollback_target(HISTORY[:3], "s3", "s2")["version"] == "1"
    with pytest.raises(ReleaseError, match="there is no state 9"):
        release.rollback_target(HISTORY[:3], "s3", "9")
    with pytest.raises(ReleaseError, match="'s7' is not a state"):
        release.rollback_target(HISTORY[:3], "s3", "s7")
    with pytest.raises(ReleaseError, match="is what the distribution publishes now"):
        release.rollback_target(HISTORY[:3], "s3", "3")


def test_packages_index_stanzas_keep_conveyor_fields():
    text = (
        "Package: snowbird\nVersion: 1.0+ci2.ga\nConveyor-Commit: abc\nDescription: x\n"
        " more: Version: 9\n\nPackage: other\nVersion: 3\n"
    )
    stanzas = debformats.parse_packages_stanzas(text)
    assert stanzas[0]["Conveyor-Commit"] == "abc"
    assert debformats.parse_packages_index(text) == {"snowbird": {"1.0+ci2.ga"}, "other": {"3"}}


def test_users_file():
    parsed = users.parse(
        "# demo\nreleaser:s3cret-pass:releasers,developers\ndev:another-pass:developers\n",
        "web-users",
    )
    assert parsed["releaser"].roles == ("releasers", "developers")
    assert users.roles_of(parsed, "dev") == ("developers",)
    assert users.roles_of(parsed, "anonymous") == ()


@pytest.mark.parametrize(
    "text, reason",
    [
        ("releaser:short:releasers", "shorter than 8 characters"),
        ("releaser-pass-releasers", "write name:password:role,role"),
        ("a b:long-enough:releasers", "not a valid user name"),
        ("x:long-enough:Release Team", "not a valid role"),
        ("x:long-enough:r\nx:long-enough:r", "listed twice"),
    ],
)
def test_bad_users_file_says_which_line_and_why(text, reason):
    with pytest.raises(SettingsError, match=reason) as err:
        users.parse(text, "var/secrets/web-users")
    assert str(err.value).startswith("var/secrets/web-users: line ")
    assert "long-enough" not in str(err.value)  # never echo a password


def test_result_names_are_buildbots():
    from buildbot.process import results as buildbot_results

    assert results.NAMES == tuple(name.upper() for name in buildbot_results.Results)
    assert (results.SUCCESS, results.FAILURE, results.CANCELLED) == (
        buildbot_results.SUCCESS,
        buildbot_results.FAILURE,
        buildbot_results.CANCELLED,
    )
    assert results.result_name(None) == "UNKNOWN"


def test_changelog_stanza_is_a_changelog_entry_with_conveyor_fields():
    stanza = debformats.changelog_stanza(
        "snowbird",
        "1.4.0+ci7.g3f2a9c1",
        commit="3f2a9c1d5e",
        build_url="http://ci/#/builders/1/builds/7",
        timestamp=0,
        message="Built by Conveyor.",
    )
    assert stanza.startswith(
        "snowbird (1.4.0+ci7.g3f2a9c1) UNRELEASED; urgency=medium, "
        "XB-Conveyor-Commit=3f2a9c1d5e, "
        "XB-Conveyor-Build=http://ci/#/builders/1/builds/7\n"
    )
    assert " -- Conveyor <conveyor@localhost>  Thu, 01 Jan 1970 00:00:00 +0000\n\n" in stanza
    head = debformats.parse_changelog_head(stanza + "snowbird (1.4.0) unstable; urgency=low\n")
    assert (head.source, head.version) == ("snowbird", "1.4.0+ci7.g3f2a9c1")


@pytest.mark.parametrize("commit", ["--output=/tmp/x", "HEAD", "main", "3f2a9c", "g3f2a9c1"])
def test_a_commit_id_is_only_hex(commit):
    with pytest.raises(ReleaseError, match="is not a git commit id"):
        debformats.check_commit(commit)
    with pytest.raises(ReleaseError, match="is not a git commit id"):
        debformats.changelog_stanza(
            "snowbird", "1.0", commit=commit, build_url="u", timestamp=0, message="m"
        )


def test_a_changelog_that_does_not_start_with_an_entry_is_refused():
    with pytest.raises(ReleaseError, match="does not start with an entry header"):
        debformats.parse_changelog_head("Not a changelog\n")
    with pytest.raises(ReleaseError, match="is empty"):
        debformats.parse_changelog_head("\n\n")


def test_a_frozen_distribution_says_who_why_and_how_to_undo_it():
    state = release.parse_freeze(
        '{"frozen": true, "reason": "release weekend", "who": "ada", '
        '"when": "2026-12-04T18:00:00+00:00"}\n'
    )
    assert release.freeze_refusal("snowbird", state) == (
        "snowbird is frozen (by ada at 2026-12-04T18:00:00+00:00: release weekend): no "
        "promotion into it until `bin/conveyor unfreeze snowbird`; a rollback stays possible"
    )
    assert release.freeze_refusal("snowbird", {**state, "frozen": False}) is None
    assert release.freeze_refusal("snowbird", release.parse_freeze(None)) is None
    assert release.parse_freeze("") is None
