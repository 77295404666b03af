"""Schedulers: a push scheduler per project, a force button per project, the publish trigger."""

from buildbot.plugins import schedulers
from buildbot.plugins import util
from buildbot.schedulers.forcesched import CollectedValidationError
from twisted.internet import defer

from master import repository
from master import users as users_module
from master.settings import Settings

PUBLISH = "publish"
PROMOTE = "promote"
ROLLBACK = "rollback"
VERSION_REGEX = r"^$|^([0-9]+:)?[0-9][A-Za-z0-9.+~-]*$"


def _no_codebase(project: str = "") -> list:
    return [util.CodebaseParameter(
        "", label="", branch=util.FixedParameter(name="branch", default=""),
        revision=util.FixedParameter(name="revision", default=""),
        repository=util.FixedParameter(name="repository", default=""),
        project=util.FixedParameter(name="project", default=project))]


def _value(kwargs: dict, name: str) -> str:
    value = kwargs.get(name, "")
    if isinstance(value, list):  # form posts send lists
        value = value[0] if value else ""
    return (value or "").strip()


class PromoteScheduler(schedulers.ForceScheduler):
    """The promote button. Refuses, before any build, what the path and the roles forbid:
    skipping a step, and promoting into the end of a path (production) without one of the
    production roles. What needs the repository (is the version there?) is checked by the
    build's first step."""

    def __init__(self, settings: Settings, **kwargs):
        self.conveyor = settings
        super().__init__(**kwargs)

    def force(self, owner, builderNames=None, builderid=None, **kwargs):
        settings = self.conveyor
        package, source = _value(kwargs, "package"), _value(kwargs, "from_dist")
        target = _value(kwargs, "to_dist")
        project = settings.project_of_package(package)
        errors = {}
        try:
            if project is None:
                raise repository.ReleaseError(
                    f"{package!r} is not a package of any project (known: "
                    f"{', '.join(settings.packages)})")
            target = target or repository.next_step(project.path, source) or ""
            repository.check_step(project.path, source, target)
            if target == project.path[-1]:
                roles = users_module.roles_of(users_module.load(settings), owner)
                if not set(roles) & set(settings.auth.production):
                    raise repository.ReleaseError(
                        f"rule 'production needs a release role': promoting into {target} "
                        f"needs one of the roles {', '.join(settings.auth.production)}; "
                        f"{owner} has {', '.join(roles) or 'none'}")
        except repository.ReleaseError as exc:
            errors["to_dist"] = str(exc)
        if errors:
            return defer.fail(CollectedValidationError(errors))
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
                                 default="", regex=VERSION_REGEX, size=40),
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
                default="", regex=r"^$|^[0-9]+$|^[a-z0-9][a-z0-9.+@-]*$", size=60),
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
