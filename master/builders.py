"""Builders are data: one CI builder, a package builder per target release and a tests builder
per target release after the first (their builds run beside CI's: see steps/beside.py) per
[projects.<name>] table (pull-request builders: see
master/pullrequests.py), and the repository builders, publish, promote, rollback and freeze,
on the repository's worker under one lock."""

from buildbot.plugins import util

from conveyor.settings import Settings
from master import factories
from master import releases
from master.schedulers import APPROVE
from master.schedulers import FREEZE
from master.schedulers import PROMOTE
from master.schedulers import PUBLISH
from master.schedulers import ROLLBACK

# Every change to the apt repository (publish now, promote and rollback later) takes this lock:
# aptly commands race, and a distribution must change in exactly one place at a time.
REPOSITORY_LOCK = util.MasterLock("apt-repository")


def builders(settings: Settings) -> list[util.BuilderConfig]:
    # per project: its CI builder, its package builders (one per target release) and its tests
    # builders (one per target release after the first): their builds run beside CI's and
    # beside each other (steps/beside.py)
    result = []
    for project in settings.projects:
        for name, factory, tag in (
            (project.ci_builder, factories.ci_factory(settings, project), "ci"),
            *(
                (builder, factories.package_factory(settings, project, target), "package")
                for target, builder in project.package_builders
            ),
            *(
                (builder, factories.tests_factory(settings, project, target), "tests")
                for target, builder in project.tests_builders
            ),
        ):
            result.append(
                util.BuilderConfig(
                    name=name,
                    workernames=list(project.workers),
                    factory=factory,
                    project=project.name,
                    tags=[tag, project.name],
                    # every push is its own build, with its own version and its own status
                    collapseRequests=False,
                )
            )
    for name, factory in (
        (PUBLISH, releases.publish_factory),
        (PROMOTE, releases.promote_factory),
        (ROLLBACK, releases.rollback_factory),
        (FREEZE, releases.freeze_factory),
        # the approvals of a promotion into production (only when [approvals] asks for some)
        *([(APPROVE, releases.approve_factory)] if settings.approvals.needed else []),
    ):
        result.append(
            util.BuilderConfig(
                name=name,
                workernames=[settings.repository.worker],
                factory=factory(settings),
                locks=[REPOSITORY_LOCK.access("exclusive")],
                tags=["repository"],
                # queued repository changes are never merged: each runs, in order
                collapseRequests=False,
            )
        )
    return result
