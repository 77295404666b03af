"""The force buttons' strict parameters (master/schedulers.py): each field of `promote`,
`rollback` and `<project>-force` is a string of its grammar or absent ("" is the default);
every other type, a parameter the button does not have and another button's builder are refused
with {field: message} before Buildbot reads the request. Buildbot's own force is stubbed: a
refused request never reaches it. tests/integration/test_hostile_force.py sends the same kinds
of request to a running master."""

from __future__ import annotations

import itertools
import random
import types

import pytest
from twisted.internet import defer

from buildbot.schedulers import forcesched
from buildbot.schedulers.forcesched import CollectedValidationError
from buildbot.www.authz.authz import Forbidden

from master import forms
from master import schedulers
from master.forms import FieldError
from master.forms import form_value
from tests.unit.test_authz import D as DEV
from tests.unit.test_authz import M as MANAGER
from tests.unit.test_authz import R as RELEASER
from tests.unit.test_authz import load
from tests.unit.test_authz import the_authz

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
    ["app"],
    [1],
    [None],
    ["a", "b"],
    [[]],
    [{}],
]
GOOD = {
    "package": ["app", "python3-app", "lib.x+y"],
    "version": ["1.4.0", "1.4.0+ci1.g24b95e0", "2:1.0~rc1-3", "0"],
    "from_dist": ["app-dev", "app"],
    "to_dist": ["app-staging"],
    "distribution": ["app", "a.b-c"],
    "state": ["3", "app@20240101T000000Z@promote-4", "app@20240101T000000Z@setup-0"],
    "reason": ["promotion", "a" * 200, "Ünïcode ✓ 日本 😀", "  why not "],
    "username": ["Alice <alice@example.com>"],
    "branch": ["main"],
}
BAD = {
    "package": [
        "../x",
        "snow;bird",
        "App",
        "app\n",
        " app",
        "x",
        "-app",
        "app/..",
        "$(id)",
        " ",
        "app\x00",
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
        " ",
    ],
    "from_dist": ["x;rm", "../etc", "APP", "app\n", " app", "app/x", "-x", "a b", "\ud800"],
    "state": ["-1", "1; rm", "../x", " 1", "1\n", "1 2", "Snap", "x/y", " "],
    "reason": [
        "a" * 201,
        "a\x00b",
        "line\nbreak",
        "\x1b[31mred",
        "tab\there",
        "\u202eevil",
        "\ud800",
        "\x7f",
        "\u2028",
        "\ufeffbom",
        " ",
        "\t",
    ],
}
BAD["to_dist"] = BAD["distribution"] = BAD["from_dist"]
BAD["username"] = BAD["reason"]


# --- form_value: one field, every type and grammar ----------------------------------------------


@pytest.mark.parametrize("field, value", list(itertools.product(GOOD, WRONG_TYPES)))
def test_every_wrong_type_is_refused_naming_the_field(field, value):
    with pytest.raises(FieldError) as err:
        form_value({field: value}, field)
    assert err.value.field == field and str(err.value).startswith(f"{field}: must be a string")


@pytest.mark.parametrize("field, value", [(f, v) for f, vs in BAD.items() for v in vs])
def test_every_string_off_the_grammar_is_refused_naming_the_field(field, value):
    with pytest.raises(FieldError) as err:
        form_value({field: value}, field)
    assert err.value.field == field and str(err.value).startswith(f"{field}: ")
    assert len(str(err.value)) < 200  # the value is quoted, shortened


@pytest.mark.parametrize("field, value", [(f, v) for f, vs in GOOD.items() for v in vs])
def test_strings_of_the_grammar_pass_as_they_are(field, value):
    assert form_value({field: value}, field) == value


@pytest.mark.parametrize("field", list(GOOD))
def test_only_the_empty_string_or_absence_means_the_default(field):
    assert form_value({}, field) == "" and form_value({field: ""}, field) == ""
    for value in ([], [""], None, False, 0, {}):
        with pytest.raises(FieldError):
            form_value({field: value}, field)


def random_json(rng: random.Random, depth: int = 0):
    kinds = ["null", "bool", "int", "float", "str"] + (["list", "dict"] if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "list":
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if kind == "dict":
        return {
            str(rng.randint(0, 9)): random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))
        }
    return {
        "null": None,
        "bool": rng.random() < 0.5,
        "int": rng.randint(-(2**70), 2**70),
        "float": rng.uniform(-1e9, 1e9),
        "str": "".join(
            chr(rng.choice([rng.randint(0, 127), rng.randint(0, 0x10FFFF)]))
            for _ in range(rng.randint(0, 12))
        ),
    }[kind]


def test_any_json_value_is_a_string_of_the_grammar_or_a_field_error():
    rng = random.Random(20240607)
    for _ in range(3000):
        field, value = rng.choice(list(GOOD)), random_json(rng)
        try:
            assert form_value({field: value}, field) == value and isinstance(value, str)
        except FieldError as exc:
            assert exc.field == field


# --- the schedulers: the whole request ---------------------------------------------------------

BUILDERS = {1: "app-ci", 2: "app-pr", 3: "promote", 4: "rollback", 5: "publish", 6: "freeze"}
IDS = {name: builderid for builderid, name in BUILDERS.items()}
OWN = {"promote": "promote", "rollback": "rollback", "app-force": "app-ci", "freeze": "freeze"}
VALID = {
    "promote": {
        "package": "app",
        "version": "",
        "from_dist": "app-staging",
        "to_dist": "app",
        "reason": "test",
    },
    "rollback": {"distribution": "app", "state": "", "reason": "test"},
    "app-force": {"reason": "test"},
    "freeze": {"distribution": "app", "action": "freeze", "reason": "test"},
}


class FakeData:
    def get(self, path):
        assert path == ("builders",)
        return defer.succeed([{"builderid": i, "name": n} for i, n in BUILDERS.items()])


@pytest.fixture
def forced(monkeypatch):
    """Buildbot's own force, stubbed: the calls that reach it."""
    calls = []

    def force(self, owner, builderNames=None, builderid=None, **kwargs):
        calls.append((self.name, owner, builderNames, builderid, kwargs))
        return defer.succeed((1, {IDS[builderNames[0]]: 1}))

    monkeypatch.setattr(forcesched.ForceScheduler, "force", force)
    return calls


@pytest.fixture
def buttons(tmp_path) -> dict:
    """The force buttons of a three-step path, configured as the master configures them."""
    result = {}
    for scheduler in schedulers.schedulers_for(load(tmp_path)):
        if isinstance(scheduler, forcesched.ForceScheduler):
            assert isinstance(scheduler, schedulers.StrictForceScheduler), scheduler.name
            scheduler.reconfigService(**scheduler._config_kwargs)
            scheduler.parent = types.SimpleNamespace(master=types.SimpleNamespace(data=FakeData()))
            result[scheduler.name] = scheduler
    assert set(result) == set(OWN)
    return result


def outcome(d):
    """The result of a Deferred that has fired: a value, or the exception it failed with."""
    found = []
    d.addCallbacks(found.append, lambda f: found.append(f.value))
    assert found, "no answer at once"
    return found[0]


def refused(button, **params) -> dict[str, str]:
    result = outcome(button.force("alice", **params))
    assert isinstance(result, CollectedValidationError), result
    return result.errors


@pytest.mark.parametrize("name", list(OWN))
def test_a_valid_request_reaches_buildbot_for_the_own_builder_only(buttons, forced, name):
    for where in (
        {"builderid": IDS[OWN[name]]},
        {"builderid": str(IDS[OWN[name]])},
        {"builderNames": [OWN[name]]},
        {},
    ):
        assert outcome(buttons[name].force("alice", **where, **VALID[name])) == (
            1,
            {IDS[OWN[name]]: 1},
        )
    assert [(c[0], c[2], c[4]) for c in forced] == [(name, [OWN[name]], VALID[name])] * 4


def test_what_the_react_form_sends_passes(buttons, forced):
    form = {
        "builderid": "3",
        "username": "",
        "reason": "promotion",
        "priority": 0,
        "branch": "",
        "project": "",
        "repository": "",
        "revision": "",
        "package": "app",
        "version": "",
        "from_dist": "app-dev",
        "to_dist": "",
    }
    assert outcome(buttons["promote"].force("alice", **form)) == (1, {3: 1})
    form = {
        "builderid": "1",
        "username": "",
        "reason": "force build",
        "priority": "5",
        "branch": "main",
        "project": "acme/app",
        "repository": "",
        "revision": "",
    }
    assert outcome(buttons["app-force"].force("alice", **form)) == (1, {1: 1})
    assert len(forced) == 2


@pytest.mark.parametrize("name", list(OWN))
def test_every_wrong_type_of_every_field_is_refused(buttons, forced, name):
    button = buttons[name]
    fields = [p.fullName for p in forms.leaves(button.all_fields)]
    assert {"reason", "username", "priority", "branch"} <= set(fields)
    for field, value in itertools.product(fields, WRONG_TYPES):
        if field == "priority" and type(value) is int and -999 <= value <= 999:
            continue
        errors = refused(button, builderid=IDS[OWN[name]], **{**VALID[name], field: value})
        assert list(errors) == [field] and errors[field].startswith(f"{field}: "), errors
    assert forced == []


@pytest.mark.parametrize(
    "name, field, value",
    [
        ("promote", "package", "nosuch"),
        ("promote", "package", "app-other"),
        ("promote", "from_dist", "nosuch"),
        ("promote", "to_dist", "nosuch"),
        ("rollback", "distribution", "nosuch"),
        *[(n, "priority", v) for n in OWN for v in ("abc", "1e5", " 1", "1000", -1000, 2.5)],
        *[
            (n, f, v)
            for n in OWN
            for f in ("branch", "revision", "repository", "project")
            for v in ("evil", "main ", "acme/app/x")
        ],
        *[
            (n, f, v)
            for n in OWN
            for f in ("versoin", "evil", "self", "properties", "builderName")
            for v in ("1.0", "")
        ],
        *[(n, "reason", v) for n in OWN for v in BAD["reason"]],
        *[
            ("promote", f, v)
            for f in ("package", "version", "from_dist", "to_dist")
            for v in BAD[f]
        ],
        *[("rollback", f, v) for f in ("distribution", "state") for v in BAD[f]],
    ],
)
def test_unknown_names_and_bad_grammar_are_refused(buttons, forced, name, field, value):
    errors = refused(buttons[name], builderid=IDS[OWN[name]], **{**VALID[name], field: value})
    assert list(errors) == [field] and errors[field].startswith(f"{field}: "), errors
    assert forced == []


@pytest.mark.parametrize(
    "source, target, field, says",
    [
        ("app-dev", "app", "to_dist", "rule 'one step at a time'"),
        ("app", "", "to_dist", "is not on the promotion path"),
        ("app-staging", "app-dev", "to_dist", "rule 'one step at a time'"),
    ],
)
def test_the_promote_rules_are_checked_once_the_fields_are_valid(
    buttons, forced, source, target, field, says
):
    errors = refused(
        buttons["promote"], builderid=3, package="app", from_dist=source, to_dist=target
    )
    assert list(errors) == [field] and says in errors[field]
    assert forced == []


@pytest.mark.parametrize("name", list(OWN))
def test_another_builder_is_refused_naming_it(buttons, forced, name):
    button = buttons[name]
    for other, builderid in IDS.items():
        if other == OWN[name]:
            continue
        for where, field in (
            ({"builderid": builderid}, "builderid"),
            ({"builderid": str(builderid)}, "builderid"),
            ({"builderNames": [other]}, "builderNames"),
            ({"builderNames": [OWN[name], other]}, "builderNames"),
            ({"builderNames": [OWN[name]], "builderid": builderid}, "builderid"),
        ):
            errors = refused(button, **where, **VALID[name])
            assert list(errors) == [field] and repr(other) in errors[field], errors
    for value in ("abc", "1.5", "", " 1", -1, 2.5, True, None, [], [1], {}, 10**30):
        errors = refused(button, builderid=value, **VALID[name])
        assert list(errors) == ["builderid"] and "must be a builder's id" in errors["builderid"]
    for value in (0, 9999, "123456789"):
        errors = refused(button, builderid=value, **VALID[name])
        assert errors == {"builderid": f"builderid: there is no builder {value}"}
    for value in ("promote", [], [1], None, {}, [None], 5, ["nosuch"]):
        errors = refused(button, builderNames=value, **VALID[name])
        assert list(errors) == ["builderNames"], errors
    assert forced == []


@pytest.mark.parametrize("name", list(OWN))
def test_authz_sees_any_foreign_builder_as_the_buttons_own_and_never_fails(buttons, name):
    button = buttons[name]
    own = [OWN[name]]
    assert outcome(button.computeBuilderNames(None, IDS[OWN[name]])) == own
    assert outcome(button.computeBuilderNames(None, None)) == own
    for builderNames, builderid in (
        (None, IDS["promote"]),
        (None, IDS["app-ci"]),
        (["publish"], None),
        ("promote", None),
        (None, "x"),
        (None, [1]),
        ({}, {}),
        (None, 10**30),
    ):
        assert outcome(button.computeBuilderNames(builderNames, builderid)) == own


# --- authz reads the same fields: never an error but a refusal ---------------------------------


@pytest.mark.parametrize("value", WRONG_TYPES + ["../x", "x;rm", "app\n"])
def test_authz_judges_hostile_fields_without_failing(tmp_path, value):
    rule_set = the_authz(load(tmp_path))

    def allowed(scheduler, options, user):
        d = rule_set.assertUserAllowed(
            ("forceschedulers", scheduler), "force", options, {"username": user}
        )
        result = outcome(d)
        assert result is None or isinstance(result, Forbidden), result
        return result is None

    # a malformed distribution counts as the last one (fail closed): the production role
    options = {"distribution": value}
    assert not allowed("rollback", options, RELEASER) and allowed("rollback", options, MANAGER)
    for field in ("package", "from_dist", "to_dist"):  # the scheduler refuses it: releasers
        options = {**VALID["promote"], "from_dist": "app-dev", "to_dist": "", field: value}
        assert allowed("promote", options, RELEASER) and not allowed("promote", options, DEV)


@pytest.mark.parametrize("name", sorted(OWN))
def test_a_turned_off_button_refuses_instead_of_forcing(buttons, forced, name):
    # Buildbot's own force ignores the scheduler's toggle: an admin who turned promote off
    # still saw a releaser's promotion change production
    buttons[name].enabled = False
    errors = refused(buttons[name], builderid=IDS[OWN[name]], **VALID[name])
    assert errors == {
        "scheduler": f"the {name} button is turned off (an admin disabled its "
        "scheduler): nothing was asked"
    }
    assert forced == []
