"""Mail: failure and fix mails to the authors and the team, the release mail when a version
reaches the end of its path, and the admins' mail (master/reporters/admins.py).

One notifier per project, for its CI and pull-request builders: to the authors of the changes
in the build and (CC) the team's list, when a build breaks (its first failure), when it is fixed
and, with `[mail] every_failure`, on every build that is still failing. Silence means green. The
previous build is the last finished one of the same builder and branch (so each pull request
has its own history). The same notifier mails the team when a promote build put one of the
project's packages into the last distribution of its path. The text comes from conveyor.mail.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.header import Header
from email.utils import formatdate
from email.utils import make_msgid
from typing import Any
from typing import ClassVar

from twisted.internet import defer
from twisted.internet import error as net_error
from twisted.internet import reactor
from twisted.internet import task
from twisted.mail import smtp
from twisted.python import log

from buildbot.plugins import util
from buildbot.process.results import SUCCESS
from buildbot.reporters import utils as reporter_utils
from buildbot.reporters.generators.build import BuildStatusGenerator
from buildbot.reporters.mail import MailNotifier
from buildbot.reporters.message import MessageFormatterBase

from conveyor import buildprops
from conveyor.mail import FAILED
from conveyor.mail import ReleaseFacts
from conveyor.mail import mail_kind
from conveyor.mail import render_mail
from conveyor.mail import render_release
from conveyor.mail import render_request
from conveyor.mime import address_header
from conveyor.mime import mime_message
from conveyor.results import result_name
from conveyor.settings import Settings
from master.reporters.admins import AdminsWorkerMissingGenerator
from master.reporters.admins import PublishFailureGenerator
from master.reporters.facts import gather_facts
from master.reporters.facts import previous_build
from master.reporters.facts import prop
from master.schedulers import APPROVE
from master.schedulers import PROMOTE


class ConveyorMailFormatter(MessageFormatterBase):
    """Subject + plain text body; the HTML alternative rides along in extra_info."""

    compare_attrs: ClassVar[Sequence[str]] = ["project"]

    def __init__(self, project: str):
        super().__init__(
            want_properties=True, want_steps=True, want_logs=False, want_logs_content=False
        )
        self.project = project

    @defer.inlineCallbacks
    def format_message_for_build(self, master: Any, build: dict, **kwargs: Any) -> Any:
        kind = build.get("conveyor_mail") or FAILED
        facts = yield gather_facts(master, build, self.project, kind)
        subject, text, html_body = render_mail(facts)
        return {
            "body": text,
            "type": "plain",
            "subject": subject,
            "extra_info": {"conveyor": {"html": html_body}},
        }

    def format_message_for_buildset(
        self, master: Any, buildset: dict, builds: list, **kwargs: Any
    ) -> Any:
        raise NotImplementedError("Conveyor mails are per build")


class FailureAndFixGenerator(BuildStatusGenerator):
    """Reports a finished build when `mail_kind` says so (see there), comparing with
    `previous_build` (same builder and branch) rather than Buildbot's build number - 1."""

    compare_attrs: ClassVar[Sequence[str]] = ["every_failure"]

    def __init__(
        self, builders: list[str], every_failure: bool, message_formatter: MessageFormatterBase
    ):
        # the modes only name the behaviour (generate_name, checkConfig): `generate` decides
        super().__init__(
            mode=("failing", "change") if every_failure else ("problem", "change"),
            builders=builders,
            message_formatter=message_formatter,
        )
        self.every_failure = every_failure

    @defer.inlineCallbacks
    def generate(self, master: Any, reporter: Any, key: Any, build: dict) -> Any:
        yield reporter_utils.getDetailsForBuild(
            master, build, want_properties=True, want_steps=True
        )
        if not self.is_message_needed_by_props(build):
            return None
        previous = yield previous_build(master, build)
        build["prev_build"] = previous
        kind = mail_kind(
            build["results"], previous["results"] if previous else None, self.every_failure
        )
        if kind is None:
            return None
        build["conveyor_mail"] = kind
        report = yield self.build_message(self.formatter, master, reporter, build)
        return report


class ReleaseMailFormatter(MessageFormatterBase):
    """Subject and plain text of a release mail (conveyor.mail.render_release), from the
    promote build's properties."""

    def __init__(self):
        super().__init__(
            want_properties=True, want_steps=False, want_logs=False, want_logs_content=False
        )

    def format_message_for_build(self, master: Any, build: dict, **kwargs: Any) -> Any:
        subject, text = render_release(
            ReleaseFacts(
                package=prop(build, "package"),
                version=prop(build, buildprops.PACKAGE_VERSION),
                previous=prop(build, buildprops.PREVIOUS_VERSION),
                source=prop(build, "from_dist"),
                target=prop(build, "to_dist"),
                # an approved promotion: its requester, and who approved it (steps/approvals.py)
                who=prop(build, "who") or prop(build, "owner") or "?",
                approved_by=list(prop(build, buildprops.APPROVED_BY) or []),
                url=build.get("url")
                or reporter_utils.getURLForBuild(master, build["builderid"], build["number"]),
                commits=list(prop(build, buildprops.RELEASE_COMMITS) or []),
            )
        )
        return defer.succeed(
            {"body": text, "type": "plain", "subject": subject, "extra_info": None}
        )

    def format_message_for_buildset(
        self, master: Any, buildset: dict, builds: list, **kwargs: Any
    ) -> Any:
        raise NotImplementedError("release mails are per build")


class RequestMailFormatter(MessageFormatterBase):
    """Subject and plain text of the mail that asks for approvals (conveyor.mail.render_request),
    from the request the build recorded (steps/approvals.py)."""

    compare_attrs: ClassVar[Sequence[str]] = ["board_url"]

    def __init__(self, board_url: str):
        self.board_url = board_url
        super().__init__(
            want_properties=True, want_steps=False, want_logs=False, want_logs_content=False
        )

    def format_message_for_build(self, master: Any, build: dict, **kwargs: Any) -> Any:
        url = build.get("url") or reporter_utils.getURLForBuild(
            master, build["builderid"], build["number"]
        )
        subject, text = render_request(prop(build, buildprops.PENDING_REQUEST), url, self.board_url)
        return defer.succeed(
            {"body": text, "type": "plain", "subject": subject, "extra_info": None}
        )

    def format_message_for_buildset(
        self, master: Any, buildset: dict, builds: list, **kwargs: Any
    ) -> Any:
        raise NotImplementedError("request mails are per build")


class ReleaseMailGenerator(BuildStatusGenerator):
    """A promote (or approve) build that succeeded, changed something and put one of `packages`
    into one of `ends` (the last distribution of their path): one mail to the team's list. With
    `board_url`, instead: a request into one of them, or an approval short of the count, that
    waits for approvals (steps/approvals.py): the mail that asks for them."""

    compare_attrs: ClassVar[Sequence[str]] = ["packages", "ends", "board_url"]

    def __init__(
        self,
        builders: list[str],
        packages: Sequence[str],
        ends: Sequence[str],
        board_url: str | None = None,
    ):
        formatter = RequestMailFormatter(board_url) if board_url else ReleaseMailFormatter()
        super().__init__(mode=("passing",), builders=builders, message_formatter=formatter)
        self.packages = list(packages)
        self.ends = list(ends)
        self.board_url = board_url

    @defer.inlineCallbacks
    def generate(self, master: Any, reporter: Any, key: Any, build: dict) -> Any:
        yield reporter_utils.getDetailsForBuild(master, build, want_properties=True)
        waiting = bool(prop(build, buildprops.PENDING_REQUEST))
        if (
            build["results"] != SUCCESS
            or prop(build, buildprops.PROMOTION_NOOP)
            or waiting != bool(self.board_url)  # release mails, or the mails that ask
            or prop(build, "package") not in self.packages
            or prop(build, "to_dist") not in self.ends
        ):
            return None
        report = yield self.build_message(self.formatter, master, reporter, build)
        report["users"] = []  # the team's list only, not whoever forced the build
        return report


class ConveyorMailNotifier(MailNotifier):
    """MailNotifier sending multipart/alternative (plain text and HTML) mails, To: the authors
    of the changes, Cc: the team's list; never a mail without recipients. Every mail fits SMTP:
    bodies quoted-printable, address headers folded, at most 100 kB (conveyor/mime.py). A
    temporary failure (the server unreachable, a 4xx answer) is retried after RETRY_DELAYS; a
    mail that could not be sent is logged and recorded on its build (property `mail_failed`)."""

    RETRY_DELAYS = (10, 60, 300)  # seconds before each new attempt
    clock = reactor  # (a test's Clock)

    @defer.inlineCallbacks
    def sendMessage(self, reports: list[dict]) -> Any:
        for report in reports:
            yield self._send_one(report)

    def processRecipients(self, blamelist, m):
        # Buildbot's, with the address headers of conveyor.mime: Buildbot's one line of a
        # thousand authors is longer than SMTP allows ("500 Line too long")
        to_recipients = set(blamelist)
        cc_recipients = set()
        if self.sendToInterestedUsers and to_recipients:
            cc_recipients.update(self.extraRecipients)
        else:
            to_recipients.update(self.extraRecipients)
        m["To"] = address_header([self.formatAddress(a) for a in sorted(to_recipients)])
        if cc_recipients:
            m["CC"] = address_header([self.formatAddress(a) for a in sorted(cc_recipients)])
        return list(to_recipients | cc_recipients)

    @defer.inlineCallbacks
    def _send_one(self, report: dict) -> Any:
        text = report["body"]
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        html_body = ((report.get("extra_info") or {}).get("conveyor") or {}).get("html")
        m = mime_message(text, html_body, report.get("type") or "plain")
        subject = report["subject"]
        m["Subject"] = subject if subject.isascii() else Header(subject, "utf-8").encode()
        m["From"] = self.fromaddr
        m["Date"] = formatdate(localtime=True)
        m["Message-ID"] = make_msgid(domain="conveyor")
        builds = report.get("builds") or []
        if builds:
            m["X-Conveyor-Builder"] = builds[0]["builder"]["name"]
            m["X-Conveyor-Result"] = result_name(builds[0]["results"])
            m["X-Conveyor-Build-URL"] = builds[0].get("url") or ""

        if report.get("worker") is not None:
            recipients = [u for u in report.get("users") or []]
            if recipients:
                m["To"] = address_header([self.formatAddress(a) for a in sorted(recipients)])
        else:
            users = yield self.findInterrestedUsersEmails(list(report.get("users") or []))
            recipients = self.processRecipients(users, m)
        if not recipients:
            log.msg(f"conveyor mail: nobody to tell about {subject!r}: no recipients")
            return
        problem = yield self._send_with_retries(m, recipients)
        if problem:
            log.msg(f"conveyor mail: NOT sent: {subject!r} to {', '.join(recipients)}: {problem}")
            for build in builds:
                yield self.master.data.updates.setBuildProperty(
                    build["buildid"], buildprops.MAIL_FAILED, f"{subject}: {problem}", "mail"
                )

    @defer.inlineCallbacks
    def _send_with_retries(self, m, recipients: list[str]) -> Any:
        """None once the server took the mail; else why it never did."""
        delays = list(self.RETRY_DELAYS)
        while True:
            try:
                yield self.sendMail(m, recipients)
                return None
            except (
                smtp.SMTPClientError,
                net_error.ConnectError,
                net_error.ConnectionLost,
                net_error.TimeoutError,
            ) as exc:
                code = getattr(exc, "code", None)
                problem = f"{code} {exc.resp!r}" if code else str(exc)
                if (code and code >= 500) or not delays:
                    return problem
                delay = delays.pop(0)
                log.msg(f"conveyor mail: {problem}: trying again in {delay} s")
                yield task.deferLater(self.clock, delay, lambda: None)


def _mail_auth(settings: Settings) -> dict:
    mail = settings.mail
    kwargs: dict[str, Any] = {
        "fromaddr": mail.from_address,
        "relayhost": mail.smtp_host,
        "smtpPort": mail.smtp_port,
        "useTls": mail.starttls,  # STARTTLS on a plain connection, required
        "useSmtps": mail.use_tls,  # SMTPS: TLS from the first byte
    }
    if mail.username:
        kwargs["smtpUser"] = mail.username
        kwargs["smtpPassword"] = util.Secret(mail.password_secret)
    return kwargs


def mail_notifiers(settings: Settings) -> list:
    result: list = []
    for project in settings.projects:
        builders = [project.ci_builder] + ([project.pr_builder] if project.pull_requests else [])
        result.append(
            ConveyorMailNotifier(
                name=f"mail-{project.name}",
                extraRecipients=list(project.mail),
                sendToInterestedUsers=True,
                generators=[
                    FailureAndFixGenerator(
                        builders=builders,
                        every_failure=settings.mail.every_failure,
                        message_formatter=ConveyorMailFormatter(project.name),
                    )
                ],
                **_mail_auth(settings),
            )
        )
        if project.mail:
            result.append(
                ConveyorMailNotifier(
                    name=f"release-mail-{project.name}",
                    extraRecipients=list(project.mail),
                    sendToInterestedUsers=False,
                    generators=[
                        ReleaseMailGenerator(
                            [PROMOTE, APPROVE], project.packages, [project.path[-1]]
                        ),
                        # a promotion into production that waits for approvals asks the team
                        ReleaseMailGenerator(
                            [PROMOTE, APPROVE],
                            project.packages,
                            [project.path[-1]],
                            board_url=f"{settings.web_url}#/releases",
                        ),
                    ],
                    **_mail_auth(settings),
                )
            )
    if settings.admins:
        result.append(
            ConveyorMailNotifier(
                name="mail-admins",
                extraRecipients=list(settings.admins),
                sendToInterestedUsers=False,
                generators=[
                    AdminsWorkerMissingGenerator(settings.admins),
                    PublishFailureGenerator(),
                ],
                **_mail_auth(settings),
            )
        )
    return result
