"""Schedulers: a push scheduler per project, a force button per project, the publish trigger.

Every force button (`promote`, `rollback`, `<project>-force`) types its parameters strictly
before Buildbot reads them: each is a string of its grammar (conveyor/grammar.py) or absent,
`""` meaning the default; anything else (a list, even of one string, a number, an object,
true/false, null, a parameter the button does not have, another button's builder) is refused
with HTTP 400 and {field: message} (master/forms.py). Buildbot's React form and ops/api.py send
plain strings."""

from twisted.internet import defer

from buildbot.plugins import schedulers
from buildbot.plugins import util
from buildbot.schedulers.forcesched import CollectedValidationError

from conveyor import grammar
from conveyor import release
from conveyor.settings import Settings
from master import basis
from master import dispatch
from master import pushes
from master.forms import ABSENT
from master.forms import BUILDER_ID
from master.forms import FieldError
from master.forms import form_value
from master.forms import kind
from master.forms import leaves
from master.forms import refusals
from master.forms import shown

PUBLISH = "publish"
PROMOTE = "promote"
ROLLBACK = "rollback"
FREEZE = "freeze"
APPROVE = "approve"


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
            if (
                not isinstance(builderNames, list)
                or not builderNames
                or not all(isinstance(n, str) for n in builderNames)
            ):
                raise FieldError(
                    "builderNames",
                    f"must be a list of builder names ({', '.join(own)}), not {kind(builderNames)}",
                )
            names = sorted(set(builderNames))
            self.refuse_stranger("builderNames", [n for n in names if n not in own])
        if builderid is not ABSENT:
            if (
                isinstance(builderid, bool)
                or not isinstance(builderid, (int, str))
                or not BUILDER_ID.fullmatch(str(builderid))
            ):
                raise FieldError("builderid", f"must be a builder's id, not {kind(builderid)}")
            builders = yield self.master.data.get(("builders",))
            name = next(
                (b["name"] for b in builders or [] if b["builderid"] == int(builderid)), None
            )
            if name is None:
                raise FieldError("builderid", f"there is no builder {builderid}")
            self.refuse_stranger("builderid", [name] if name not in own else [])
            names = [name] if builderNames is ABSENT else names
        return names

    def refuse_stranger(self, field: str, strangers: list) -> None:
        if strangers:
            raise FieldError(
                field,
                f"the builder {shown(strangers[0])} is not one of "
                f"{self.name}'s ({', '.join(self.builderNames)})",
            )

    @defer.inlineCallbacks
    def computeBuilderNames(self, builderNames=None, builderid=None):
        """What authz asks: never fails. A request for any other builder counts as one for
        this button's own (force refuses it), so it needs this button's roles."""
        try:
            names = yield self.requested_builders(
                ABSENT if builderNames is None else builderNames,
                ABSENT if builderid is None else builderid,
            )
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
        if not errors and not self.enabled:  # Buildbot's force ignores the toggle
            errors = {
                "scheduler": f"the {self.name} button is turned off (an admin disabled "
                "its scheduler): nothing was asked"
            }
        if errors:
            raise CollectedValidationError(errors)
        return (yield super().force(owner, builderNames=names, **kwargs))


def _no_codebase(project: str = "") -> list:
    return [
        util.CodebaseParameter(
            "",
            label="",
            branch=util.FixedParameter(name="branch", default=""),
            revision=util.FixedParameter(name="revision", default=""),
            repository=util.FixedParameter(name="repository", default=""),
            project=util.FixedParameter(name="project", default=project),
        )
    ]


def promotion_target(settings: Settings, options: dict) -> tuple[str, str, str]:
    """(package, from, to) of a promote request, `to` defaulting to the step after `from`.
    Raises FieldError for a malformed or unknown package and for a source off its path."""
    package, source = form_value(options, "package"), form_value(options, "from_dist")
    project = settings.project_of_package(package)
    if project is None:
        raise FieldError(
            "package",
            f"{package!r} is not a package of any project (known: {', '.join(settings.packages)})",
        )
    try:
        following = release.next_step(project.path, source)
    except release.ReleaseError as exc:
        raise FieldError("from_dist", str(exc)) from None
    return package, source, form_value(options, "to_dist") or following or ""


class PromoteScheduler(basis.RecordsBasis, StrictForceScheduler):
    """The promote button. Refuses, before any build, a request that skips a step of the path
    or names an unknown package. Who may promote into production is the web server's authz
    (master/www.py); it records what the requester saw (master/basis.py), which the build
    checks with the rest of what needs the repository (is the version there?)."""

    find_basis = staticmethod(basis.promotion_basis)

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
            util.ChoiceStringParameter(
                name="package",
                label="Package",
                choices=list(settings.packages),
                default=first.packages[0],
                strict=True,
            ),
            util.StringParameter(
                name="version",
                label="Version (empty: the newest in From)",
                default="",
                size=40,
                regex=grammar.optional(grammar.DEBIAN_VERSION),
            ),
            util.ChoiceStringParameter(
                name="from_dist", label="From", choices=dists, default=first.upload_to, strict=True
            ),
            util.ChoiceStringParameter(
                name="to_dist",
                label="To (empty: the next step)",
                choices=[""] + dists,
                default="",
                strict=True,
            ),
        ],
    )


class RollbackScheduler(basis.RecordsBasis, StrictForceScheduler):
    find_basis = staticmethod(basis.rollback_basis)  # master/basis.py


def rollback_scheduler(settings: Settings) -> schedulers.ForceScheduler:
    dists = list(settings.distributions)
    return RollbackScheduler(
        settings,
        name=ROLLBACK,
        buttonName="Roll back",
        label="Put a distribution back to an earlier state",
        builderNames=[ROLLBACK],
        codebases=_no_codebase(),
        reason=util.StringParameter(name="reason", label="Why", default="rollback", size=60),
        properties=[
            util.ChoiceStringParameter(
                name="distribution",
                label="Distribution",
                choices=dists,
                default=dists[-1],
                strict=True,
            ),
            util.StringParameter(
                name="state",
                label="State (empty: the previous one; a number or snapshot from the history)",
                default="",
                regex=grammar.optional(grammar.ROLLBACK_STATE),
                size=60,
            ),
        ],
    )


def freeze_scheduler(settings: Settings) -> schedulers.ForceScheduler:
    """Freeze a distribution (no promotion into it: steps/promotion.py SetFreeze) or unfreeze
    it; the production roles and admins may (master/authz.py)."""
    dists = list(settings.distributions)
    return StrictForceScheduler(
        name=FREEZE,
        buttonName="Freeze or unfreeze",
        builderNames=[FREEZE],
        label="Freeze a distribution: no promotion into it until it is unfrozen",
        codebases=_no_codebase(),
        reason=util.StringParameter(
            name="reason", label="Why (shown to everyone)", default="", size=60
        ),
        properties=[
            util.ChoiceStringParameter(
                name="distribution",
                label="Distribution",
                choices=dists,
                default=dists[-1],
                strict=True,
            ),
            util.ChoiceStringParameter(
                name="action",
                label="Freeze or unfreeze",
                choices=["freeze", "unfreeze"],
                default="freeze",
                strict=True,
            ),
        ],
    )


def approve_scheduler(settings: Settings) -> schedulers.ForceScheduler:
    """Approve a pending promotion request into a distribution that needs approvals
    (conveyor/approvals.py): by its number, so that an approval is for the request its approver
    saw; users with a production role may (master/authz.py), never the requester (the build)."""
    dists = sorted(settings.approvals.needed)
    return StrictForceScheduler(
        name=APPROVE,
        buttonName="Approve",
        builderNames=[APPROVE],
        label="Approve a promotion request into production (the board lists them)",
        codebases=_no_codebase(),
        reason=util.StringParameter(name="reason", label="Note", default="approved", size=60),
        properties=[
            util.ChoiceStringParameter(
                name="distribution",
                label="Distribution",
                choices=dists,
                default=dists[0],
                strict=True,
            ),
            util.StringParameter(
                name="request",
                label="Request (its number, as the board and bin/conveyor approvals show)",
                default="",
                required=True,
                regex=grammar.REQUEST_NUMBER,
                size=10,
            ),
        ],
    )


def schedulers_for(settings: Settings) -> list:
    result: list = [
        dispatch.PromptTriggerable(name=PUBLISH, builderNames=[PUBLISH]),
        promote_scheduler(settings),
        rollback_scheduler(settings),
        freeze_scheduler(settings),
    ]
    if settings.approvals.needed:
        result.append(approve_scheduler(settings))
    for project in settings.projects:
        result += [
            dispatch.PromptTriggerable(name=builder, builderNames=[builder])
            for _, builder in (*project.package_builders, *project.tests_builders)
        ]
        result.append(
            pushes.PushScheduler(  # one build per push (master/pushes.py)
                name=project.push_scheduler,
                # the change hook sets `project` to the configured GitHub name (owner/name)
                change_filter=util.ChangeFilter(project=project.github, branch=project.branch),
                treeStableTimer=None,
                builderNames=[project.ci_builder],
            )
        )
        result.append(
            StrictForceScheduler(
                name=f"{project.name}-force",
                buttonName="Build now",
                label=f"Build {project.name} ({project.branch})",
                builderNames=[project.ci_builder],
                codebases=[
                    util.CodebaseParameter(
                        "",
                        label="",
                        branch=util.FixedParameter(name="branch", default=project.branch),
                        revision=util.FixedParameter(name="revision", default=""),
                        repository=util.FixedParameter(name="repository", default=""),
                        project=util.FixedParameter(name="project", default=project.github),
                    )
                ],
                properties=[],
            )
        )
    return result
