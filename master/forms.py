"""Force parameters, typed strictly (master/schedulers.py's buttons use this before Buildbot
reads a request): each is a string of its grammar (conveyor/grammar.py) or absent, `""`
meaning the default; anything else is a FieldError that names the field."""

import re

from buildbot.schedulers import forcesched

from conveyor import grammar
from conveyor import release

# parameter -> (its grammar, what a value must be); any other text parameter: one line
DIST = (grammar.DISTRIBUTION_NAME, "a distribution name")
GRAMMAR = {
    "package": (grammar.PACKAGE_NAME, "a Debian package name"),
    "version": (grammar.DEBIAN_VERSION, "a Debian version"),
    "from_dist": DIST,
    "to_dist": DIST,
    "distribution": DIST,
    "state": (grammar.ROLLBACK_STATE, "a state of the history (number or snapshot)"),
}
ONE_LINE = (grammar.ONE_LINE, "one line of at most 200 characters, no control character")
PRIORITY = re.compile(r"^-?[0-9]{1,3}$")
BUILDER_ID = re.compile(r"^[0-9]{1,9}$")
ABSENT = object()  # a parameter the request does not give


class FieldError(release.ReleaseError):
    """A force parameter that is not what its field takes; the 400 says {field: message}."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def shown(value) -> str:
    """A value as a message may quote it: its repr, at most 60 characters."""
    return repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."


def kind(value) -> str:
    names = {
        type(None): "null",
        bool: "true/false",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "an object",
    }
    return f"{names.get(type(value), type(value).__name__)} ({shown(value)})"


def form_value(kwargs: dict, name: str) -> str:
    """The string a force request gives for `name`, "" when absent. A list (even of one
    string), a number, an object, true/false or null, or a string off the field's grammar
    (GRAMMAR; any other field: ONE_LINE) raises FieldError."""
    value = kwargs.get(name, "")
    if not isinstance(value, str):
        raise FieldError(name, f"must be a string, not {kind(value)}")
    pattern, what = GRAMMAR.get(name, ONE_LINE)
    if value and not pattern.fullmatch(value):
        raise FieldError(name, f"{shown(value)} does not match the grammar of {what}")
    return value


def check_parameter(param, kwargs: dict) -> None:
    """FieldError unless the request's value for Buildbot parameter `param` is one it takes."""
    name = param.fullName
    if name not in kwargs:
        return
    value = kwargs[name]
    if isinstance(param, forcesched.IntParameter):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, str))
            or not PRIORITY.fullmatch(str(value))
        ):
            raise FieldError(name, f"must be a whole number from -999 to 999, not {kind(value)}")
        return
    text = form_value(kwargs, name)
    if not text:
        return
    if isinstance(param, forcesched.FixedParameter) and text != param.default:
        raise FieldError(name, f"is fixed to {param.default!r}, not {shown(text)}")
    choices = getattr(param, "choices", None)
    if choices and getattr(param, "strict", False) and text not in choices:
        raise FieldError(name, f"{shown(text)} is none of {', '.join(c for c in choices if c)}")


def leaves(fields) -> list:
    """The parameters of a form, its nested groups flattened (what the web form sends)."""
    return [
        leaf
        for f in fields
        for leaf in (leaves(f.fields) if isinstance(f, forcesched.NestedParameter) else [f])
    ]


def refusals(params: list, kwargs: dict) -> dict[str, str]:
    """{field: message} for each parameter of a request that the form `params` does not take."""
    errors = {
        name: f"{name}: this form has no such parameter (it has: "
        f"{', '.join(p.fullName for p in params)})"
        for name in kwargs
        if name not in {p.fullName for p in params}
    }
    for param in params:
        try:
            check_parameter(param, kwargs)
        except FieldError as exc:
            errors[exc.field] = str(exc)
    return errors
