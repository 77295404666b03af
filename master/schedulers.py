"""Schedulers: a push scheduler per project, a force button per project, the publish trigger."""

from buildbot.plugins import schedulers
from buildbot.plugins import util
from buildbot.schedulers.forcesched import CollectedValidationError
from twisted.internet import defer

from conveyor import grammar
from conveyor import release
from conveyor.settings import Settings

PUBLISH = "publish"
PROMOTE = "promote"
ROLLBACK = "rollback"


def _no_codebase(project: str = "") -> list:
    return [util.CodebaseParameter(
        "", label="", branch=util.FixedParameter(name="branch", default=""),
        revision=util.FixedParameter(name="revision", default=""),
        repository=util.FixedParameter(name="repository", default=""),
        project=util.FixedParameter(name="project", default=project))]


def form_value(kwargs: dict, name: str) -> str:
    value = kwargs.get(name, "")
    if isinstance(value, list):  # form posts send lists
        value = value[0] if value else ""
    return (value or "").strip()


def promotion_target(settings: Settings, options: dict) -> tuple[str, str, str]:
    """(package, from, to) of a promote request, `to` defaulting to the step after `from`.
    Raises ReleaseError for an unknown package or a distribution off its path."""
    package, source = form_value(options, "package"), form_value(options, "from_dist")
    project = settings.project_of_package(package)
    if project is None:
        raise release.ReleaseError(
            f"{package!r} is not a package of any project (known: "
            f"{', '.join(settings.packages)})")
    target = form_value(options, "to_dist") or release.next_step(project.path, source) or ""
    return package, source, target


class PromoteScheduler(schedulers.ForceScheduler):
    """The promote button. Refuses, before any build, a request that skips a step of the path
    or names an unknown package. Who may promote into production is the web server's authz
    (master/www.py); what needs the repository (is the version there?) is checked by the
    build's first step."""

    def __init__(self, settings: Settings, **kwargs):
        self.conveyor = settings
        super().__init__(**kwargs)

    def force(self, owner, builderNames=None, builderid=None, **kwargs):
        try:
            package, source, target = promotion_target(self.conveyor, kwargs)
            project = self.conveyor.project_of_package(package)
            release.check_step(project.path, source, target)
        except release.ReleaseError as exc:
            return defer.fail(CollectedValidationError({"to_dist": str(exc)}))
        return super().force(owner, builderNames=builderNames, builderid=builderid, **kwargs)


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
    return schedulers.ForceScheduler(
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
                default="", regex=grammar.optional(grammar.HISTORY_STATE), size=60),
        ],
    )


def schedulers_for(settings: Settings) -> list:
    result: list = [schedulers.Triggerable(name=PUBLISH, builderNames=[PUBLISH]),
                    promote_scheduler(settings), rollback_scheduler(settings)]
    for project in settings.projects:
        result.append(schedulers.SingleBranchScheduler(
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
    return result
