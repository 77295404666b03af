"""Schedulers: a push scheduler per project, a force button per project, the publish trigger.

Every force button (`promote`, `rollback`, `<project>-force`) types its parameters strictly
before Buildbot reads them: each is a string of its grammar (conveyor/grammar.py) or absent,
`""` meaning the default; anything else (a list, even of one string, a number, an object,
true/false, null, a parameter the button does not have, another button's builder) is refused
with HTTP 400 and {field: message}. Buildbot's React form and ops/api.py send plain strings."""

import re

from buildbot.plugins import schedulers
from buildbot.plugins import util
from buildbot.schedulers import forcesched
from buildbot.schedulers.forcesched import CollectedValidationError
from twisted.internet import defer

from conveyor import grammar
from conveyor import release
from conveyor.settings import Settings
from master import dispatch
from master import pushes

PUBLISH = "publish"
PROMOTE = "promote"
ROLLBACK = "rollback"
# parameter -> (its grammar, what a value must be); any other text parameter: one line
DIST = (grammar.DISTRIBUTION_NAME, "a distribution name")
GRAMMAR = {"package": (grammar.PACKAGE_NAME, "a Debian package name"),
           "version": (grammar.DEBIAN_VERSION, "a Debian version"),
           "from_dist": DIST, "to_dist": DIST, "distribution": DIST,
           "state": (grammar.ROLLBACK_STATE, "a state of the history (number or snapshot)")}
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
    names = {type(None): "null", bool: "true/false", int: "a number", float: "a number",
             list: "a list", dict: "an object"}
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
        if isinstance(value, bool) or not isinstance(value, (int, str)) \
                or not PRIORITY.fullmatch(str(value)):
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
    return [leaf for f in fields
            for leaf in (leaves(f.fields) if isinstance(f, forcesched.NestedParameter) else [f])]


def refusals(params: list, kwargs: dict) -> dict[str, str]:
    """{field: message} for each parameter of a request that the form `params` does not take."""
    errors = {name: f"{name}: this form has no such parameter (it has: "
                    f"{', '.join(p.fullName for p in params)})"
              for name in kwargs if name not in {p.fullName for p in params}}
    for param in params:
        try:
            check_parameter(param, kwargs)
        except FieldError as exc:
            errors[exc.field] = str(exc)
    return errors


class StrictForceScheduler(dispatch.StartsAtOnce, schedulers.ForceScheduler):
    """A force button that refuses, before any build, a request with a parameter it does not
    take (`refusals`) or for a builder that is not its own."""

    @defer.inlineCallbacks
    def requested_builders(self, builderNames=ABSENT, builderid=ABSENT):
        """The builders a request names (builderNames, else builderid, else all of this
        button's); FieldError naming the builder unless each is one of this button's."""
        own = list(self.builderNames)
        names = own
        if builderNames is not ABSENT:
            if not isinstance(builderNames, list) or not builderNames \
                    or not all(isinstance(n, str) for n in builderNames):
                raise FieldError("builderNames", f"must be a list of builder names "
                                 f"({', '.join(own)}), not {kind(builderNames)}")
            names = sorted(set(builderNames))
            self.refuse_stranger("builderNames", [n for n in names if n not in own])
        if builderid is not ABSENT:
            if isinstance(builderid, bool) or not isinstance(builderid, (int, str)) \
                    or not BUILDER_ID.fullmatch(str(builderid)):
                raise FieldError("builderid", f"must be a builder's id, not {kind(builderid)}")
            builders = yield self.master.data.get(("builders",))
            name = next((b["name"] for b in builders or [] if b["builderid"] == int(builderid)),
                        None)
            if name is None:
                raise FieldError("builderid", f"there is no builder {builderid}")
            self.refuse_stranger("builderid", [name] if name not in own else [])
            names = [name] if builderNames is ABSENT else names
        return names

    def refuse_stranger(self, field: str, strangers: list) -> None:
        if strangers:
            raise FieldError(field, f"the builder {shown(strangers[0])} is not one of "
                             f"{self.name}'s ({', '.join(self.builderNames)})")

    @defer.inlineCallbacks
    def computeBuilderNames(self, builderNames=None, builderid=None):
        """What authz asks: never fails. A request for any other builder counts as one for
        this button's own (force refuses it), so it needs this button's roles."""
        try:
            names = yield self.requested_builders(
                ABSENT if builderNames is None else builderNames,
                ABSENT if builderid is None else builderid)
        except FieldError:
            names = list(self.builderNames)
        return names

    def rule_refusals(self, kwargs: dict) -> dict[str, str]:
        return {}  # {field: message} of the button's own rules, for valid parameters

    @defer.inlineCallbacks
    def force(self, /, owner, builderNames=ABSENT, builderid=ABSENT, **kwargs):
        # `self` positional-only: a parameter named "self" is refused, not a TypeError (500)
        errors = refusals(leaves(self.all_fields), kwargs)
        try:
            names = yield self.requested_builders(builderNames, builderid)
        except FieldError as exc:
            errors[exc.field] = str(exc)
        errors = errors or self.rule_refusals(kwargs)
        if errors:
            raise CollectedValidationError(errors)
        return (yield super().force(owner, builderNames=names, **kwargs))


def _no_codebase(project: str = "") -> list:
    return [util.CodebaseParameter(
        "", label="", branch=util.FixedParameter(name="branch", default=""),
        revision=util.FixedParameter(name="revision", default=""),
        repository=util.FixedParameter(name="repository", default=""),
        project=util.FixedParameter(name="project", default=project))]


def promotion_target(settings: Settings, options: dict) -> tuple[str, str, str]:
    """(package, from, to) of a promote request, `to` defaulting to the step after `from`.
    Raises FieldError for a malformed or unknown package and for a source off its path."""
    package, source = form_value(options, "package"), form_value(options, "from_dist")
    project = settings.project_of_package(package)
    if project is None:
        raise FieldError("package", f"{package!r} is not a package of any project (known: "
                                    f"{', '.join(settings.packages)})")
    try:
        following = release.next_step(project.path, source)
    except release.ReleaseError as exc:
        raise FieldError("from_dist", str(exc)) from None
    return package, source, form_value(options, "to_dist") or following or ""


class PromoteScheduler(StrictForceScheduler):
    """The promote button. Refuses, before any build, a request that skips a step of the path
    or names an unknown package. Who may promote into production is the web server's authz
    (master/www.py); what needs the repository (is the version there?) is checked by the
    build's first step."""

    def __init__(self, settings: Settings, **kwargs):
        self.conveyor = settings
        super().__init__(**kwargs)

    def rule_refusals(self, kwargs: dict) -> dict[str, str]:
        try:
            package, source, target = promotion_target(self.conveyor, kwargs)
            release.check_step(self.conveyor.project_of_package(package).path, source, target)
        except FieldError as exc:
            return {exc.field: str(exc)}
        except release.ReleaseError as exc:
            return {"to_dist": f"to_dist: {exc}"}
        return {}


def promote_scheduler(settings: Settings) -> schedulers.ForceScheduler:
    first = settings.projects[0]
    dists = list(settings.distributions)
    return PromoteScheduler(
        settings,
        name=PROMOTE,
        buttonName="Promote",
        label="Promote a package one step along its path",
        builderNames=[PROMOTE],
        codebases=_no_codebase(),
        reason=util.StringParameter(name="reason", label="Why", default="promotion", size=60),
        properties=[
            util.ChoiceStringParameter(name="package", label="Package",
                                       choices=list(settings.packages),
                                       default=first.packages[0], strict=True),
            util.StringParameter(name="version", label="Version (empty: the newest in From)",
                                 default="", regex=grammar.optional(grammar.DEBIAN_VERSION), size=40),
            util.ChoiceStringParameter(name="from_dist", label="From", choices=dists,
                                       default=first.upload_to, strict=True),
            util.ChoiceStringParameter(name="to_dist", label="To (empty: the next step)",
                                       choices=[""] + dists, default="", strict=True),
        ],
    )


def rollback_scheduler(settings: Settings) -> schedulers.ForceScheduler:
    dists = list(settings.distributions)
    return StrictForceScheduler(
        name=ROLLBACK,
        buttonName="Roll back",
        label="Put a distribution back to an earlier state",
        builderNames=[ROLLBACK],
        codebases=_no_codebase(),
        reason=util.StringParameter(name="reason", label="Why", default="rollback", size=60),
        properties=[
            util.ChoiceStringParameter(name="distribution", label="Distribution",
                                       choices=dists, default=dists[-1], strict=True),
            util.StringParameter(
                name="state", label="State (empty: the previous one; a number or snapshot "
                                    "from the history)",
                default="", regex=grammar.optional(grammar.ROLLBACK_STATE), size=60),
        ],
    )


def schedulers_for(settings: Settings) -> list:
    result: list = [dispatch.PromptTriggerable(name=PUBLISH, builderNames=[PUBLISH]),
                    promote_scheduler(settings), rollback_scheduler(settings)]
    for project in settings.projects:
        result.append(dispatch.PromptTriggerable(name=project.package_builder,
                                             builderNames=[project.package_builder]))
        result.append(pushes.PushScheduler(  # one build per push (master/pushes.py)
            name=project.push_scheduler,
            # the change hook sets `project` to the configured GitHub name (owner/name)
            change_filter=util.ChangeFilter(project=project.github, branch=project.branch),
            treeStableTimer=None,
            builderNames=[project.ci_builder],
        ))
        result.append(schedulers.ForceScheduler(
            name=f"{project.name}-force",
            buttonName="Build now",
            label=f"Build {project.name} ({project.branch})",
            builderNames=[project.ci_builder],
            codebases=[util.CodebaseParameter(
                "", label="", branch=util.FixedParameter(name="branch", default=project.branch),
                revision=util.FixedParameter(name="revision", default=""),
                repository=util.FixedParameter(name="repository", default=""),
                project=util.FixedParameter(name="project", default=project.github))],
            properties=[],
        ))
    return [strict(scheduler) for scheduler in result]


def strict(scheduler):
    """A plain ForceScheduler (the `<project>-force` buttons) as a StrictForceScheduler of the
    same configuration (as given to its constructor); any other scheduler as it is."""
    if type(scheduler) is not schedulers.ForceScheduler:
        return scheduler
    return StrictForceScheduler(name=scheduler.name, **scheduler._config_kwargs)
