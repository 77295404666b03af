"""The admins' mail: a worker missing for its missing_timeout, and a publish that failed for
good (after its own retries of transient faults: steps/repository.py). Sent by the
`mail-admins` notifier (master/reporters/mail.py) to `[conveyor] admins`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from typing import ClassVar

from twisted.internet import defer

from buildbot.reporters import utils as reporter_utils
from buildbot.reporters.generators.build import BuildStatusGenerator
from buildbot.reporters.generators.worker import WorkerMissingGenerator
from buildbot.reporters.message import MessageFormatterBase
from buildbot.reporters.message import MessageFormatterMissingWorker

from conveyor import buildprops
from conveyor.mail import render_publish_failure
from conveyor.results import result_name
from master.reporters.facts import failing_step
from master.reporters.facts import prop
from master.schedulers import PUBLISH


class AdminsWorkerMissingGenerator(WorkerMissingGenerator):
    """A worker missing for its missing_timeout mails the admins (not the worker's own
    notify_on_missing list)."""

    compare_attrs: ClassVar[Sequence[str]] = ["admins"]

    def __init__(self, admins: Sequence[str]):
        super().__init__(
            workers="all",
            message_formatter=MessageFormatterMissingWorker(
                subject="[{{ buildbot_title }}] worker {{ worker.name }} is missing"
            ),
        )
        self.admins = list(admins)

    def generate(self, master: Any, reporter: Any, key: Any, worker: dict) -> Any:
        return super().generate(master, reporter, key, {**worker, "notify": self.admins})


class PublishFailureFormatter(MessageFormatterBase):
    """Subject and plain text of the admins' mail about a publish that failed for good."""

    def __init__(self):
        super().__init__(
            want_properties=True, want_steps=True, want_logs=False, want_logs_content=False
        )

    def format_message_for_build(self, master: Any, build: dict, **kwargs: Any) -> Any:
        failed = failing_step(build)
        reason = (
            (failed or {}).get("state_string")
            or build.get("state_string")
            or result_name(build["results"])
        )
        subject, text = render_publish_failure(
            project=prop(build, "project") or "?",
            version=prop(build, buildprops.PACKAGE_VERSION),
            distribution=prop(build, "distribution") or "?",
            commit=prop(build, "commit"),
            reason=reason,
            url=build.get("url")
            or reporter_utils.getURLForBuild(master, build["builderid"], build["number"]),
        )
        return defer.succeed(
            {"body": text, "type": "plain", "subject": subject, "extra_info": None}
        )

    def format_message_for_buildset(
        self, master: Any, buildset: dict, builds: list, **kwargs: Any
    ) -> Any:
        raise NotImplementedError("publish failure mails are per build")


class PublishFailureGenerator(BuildStatusGenerator):
    """A publish build that failed (after its own retries of transient faults) or broke: one
    mail to the admins, not to the authors (their CI build's mail says it failed)."""

    def __init__(self):
        super().__init__(
            mode=("failing", "exception"),
            builders=[PUBLISH],
            message_formatter=PublishFailureFormatter(),
        )

    @defer.inlineCallbacks
    def generate(self, master: Any, reporter: Any, key: Any, build: dict) -> Any:
        report = yield super().generate(master, reporter, key, build)
        if report is not None:
            report["users"] = []  # the admins (extraRecipients) only
        return report
