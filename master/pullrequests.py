"""Pull requests: tested like pushes, never packaged or published.

The change hook (master/changes.py) turns a pull request that is opened, pushed to or reopened
into a change with category "pull", the project's GitHub name, branch refs/pull/<N>/head and the
head commit as revision. Per project with `pull_requests = true` (the default), a scheduler takes
those changes and the builder "<name>-pr" checks out that head from the project's configured
clone_url (GitHub keeps refs/pull/<N>/head in the base repository; a URL from the payload is never
used) and runs the same test steps as CI: virtualenv, install, tests, coverage. No version, no
package, no publish. The commit status (master/reporters.py) goes to the head commit.
"""

from buildbot.plugins import steps
from buildbot.plugins import util

from conveyor.settings import Project
from conveyor.settings import Settings
from master import dispatch
from master import factories

PULL_CATEGORY = "pull"
PULL_BRANCH = r"^refs/pull/[0-9]+/head$"


def scheduler_name(project: Project) -> str:
    return f"{project.name}-pull-requests"


def schedulers(settings: Settings) -> list:
    return [
        dispatch.PromptAnyBranchScheduler(
            name=scheduler_name(project),
            change_filter=util.ChangeFilter(
                project=project.github, category=PULL_CATEGORY, branch_re=PULL_BRANCH
            ),
            treeStableTimer=None,
            builderNames=[project.pr_builder],
        )
        for project in settings.projects
        if project.pull_requests
    ]


def pr_factory(settings: Settings, project: Project) -> util.BuildFactory:
    """checkout of the pull request's head → the test steps of CI (master.factories.test_steps)."""
    f = util.BuildFactory()
    # The change's branch (refs/pull/N/head) and revision (the head commit) are fetched from the
    # configured clone URL; `branch` here is only the default for a build without a change.
    factories.test_steps(
        settings,
        project,
        f,
        steps.Git(
            repourl=project.clone_url,
            branch=project.branch,
            mode="full",
            method="fresh",
            logEnviron=False,
            haltOnFailure=True,
        ),
    )
    return f


def builders(settings: Settings) -> list:
    return [
        util.BuilderConfig(
            name=project.pr_builder,
            workernames=list(project.workers),
            factory=pr_factory(settings, project),
            project=project.name,
            tags=["pr", project.name],
            # every pushed head is its own build with its own commit status
            collapseRequests=False,
        )
        for project in settings.projects
        if project.pull_requests
    ]
