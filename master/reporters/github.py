"""GitHub commit statuses: one GitHubStatusPush per project.

Every commit and pull-request head that is built gets the context "conveyor/<project>": pending
when queued and when started, then success / failure / error with a link to the build and a
one-line description (conveyor.mail.status_description). Nothing is sent without the token
secret.
"""

from __future__ import annotations

from twisted.python import log

from buildbot.plugins import reporters as reporters_plugin
from buildbot.plugins import util
from buildbot.reporters.generators.build import BuildStartEndStatusGenerator
from buildbot.reporters.generators.buildrequest import BuildRequestGenerator
from buildbot.reporters.message import MessageFormatterFunction
from buildbot.reporters.message import MessageFormatterRenderable

from conveyor import buildprops
from conveyor.mail import status_description
from conveyor.settings import Settings
from master.reporters.facts import failing_step
from master.reporters.facts import prop
from master.reporters.facts import step_summary


def _describe_finished(context: dict) -> str:
    build = context["build"]
    step = failing_step(build)
    return status_description(
        build.get("results"),
        step["name"] if step else None,
        step_summary(step) if step else None,
        prop(build, buildprops.TESTS_PASSED),
        prop(build, buildprops.TESTS_FAILED),
        prop(build, buildprops.COVERAGE_PERCENT),
        prop(build, buildprops.BY_TARGET),
    )


def github_status_pushers(settings: Settings) -> list:
    github = settings.github
    if not github.statuses:
        return []
    if settings.read_secret(github.token_secret) is None:
        log.msg(
            f"conveyor: no GitHub commit statuses: the secret {github.token_secret!r} "
            f"is missing from {settings.secrets_dir}"
        )
        return []
    result = []
    for project in settings.projects:
        builders = [project.ci_builder] + ([project.pr_builder] if project.pull_requests else [])
        result.append(
            reporters_plugin.GitHubStatusPush(
                name=f"github-{project.name}",
                token=util.Secret(github.token_secret),
                baseURL=github.api_url,
                context=f"conveyor/{project.name}",
                verbose=False,
                generators=[
                    # queued: the commit shows Conveyor's verdict is coming (its request's page)
                    BuildRequestGenerator(
                        builders=builders, formatter=MessageFormatterRenderable("queued")
                    ),
                    BuildStartEndStatusGenerator(
                        builders=builders,
                        start_formatter=MessageFormatterRenderable(
                            util.Interpolate("building: %(prop:buildername)s #%(prop:buildnumber)s")
                        ),
                        end_formatter=MessageFormatterFunction(
                            _describe_finished, "plain", want_steps=True
                        ),
                    ),
                ],
            )
        )
    return result
