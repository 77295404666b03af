"""Schedulers: a push scheduler per project, a force button per project, the publish trigger."""

from buildbot.plugins import schedulers
from buildbot.plugins import util

from master.settings import Settings

PUBLISH = "publish"


def schedulers_for(settings: Settings) -> list:
    result: list = [schedulers.Triggerable(name=PUBLISH, builderNames=[PUBLISH])]
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
                project=util.FixedParameter(name="project", default=project.github),
            )],
            properties=[],
        ))
    return result
