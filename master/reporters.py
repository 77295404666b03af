"""Reporters: who hears about builds (mail, GitHub commit statuses).

Mail, one notifier per project, for its CI and pull-request builders: to the authors of the
changes in the build and (CC) the team's list, when a build breaks (its first failure), when it is
fixed and, with `[mail] every_failure`, on every build that is still failing. Silence means green.
The previous build is the last finished one of the same builder and branch (so each pull request
has its own history). A lost worker mails the admins.

GitHub, one GitHubStatusPush per project: every commit and pull-request head that is built gets
the context "conveyor/<project>": pending when queued and when started, then success / failure /
error with a link to the build. Nothing is sent without the token secret.

The message text is made by plain functions (`mail_kind`, `render_mail`, `status_description`)
from a `MailFacts` record, so that it can be tested without a master; `gather_facts` fills the
record from the master's data API.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from dataclasses import field
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate
from email.utils import make_msgid
from typing import Any
from typing import ClassVar
from typing import Sequence

from twisted.internet import defer
from twisted.python import log

from buildbot.data import resultspec
from buildbot.plugins import reporters as reporters_plugin
from buildbot.plugins import util
from buildbot.process.results import CANCELLED
from buildbot.process.results import EXCEPTION
from buildbot.process.results import FAILURE
from buildbot.process.results import RETRY
from buildbot.process.results import SKIPPED
from buildbot.process.results import SUCCESS
from buildbot.process.results import WARNINGS
from buildbot.process.results import Results
from buildbot.reporters import utils as reporter_utils
from buildbot.reporters.generators.build import BuildStartEndStatusGenerator
from buildbot.reporters.generators.build import BuildStatusGenerator
from buildbot.reporters.generators.buildrequest import BuildRequestGenerator
from buildbot.reporters.generators.worker import WorkerMissingGenerator
from buildbot.reporters.mail import MailNotifier
from buildbot.reporters.message import MessageFormatterBase
from buildbot.reporters.message import MessageFormatterFunction
from buildbot.reporters.message import MessageFormatterMissingWorker
from buildbot.reporters.message import MessageFormatterRenderable

from master.settings import Settings

FAILING = (FAILURE, EXCEPTION)
PASSING = (SUCCESS, WARNINGS)
LOG_TAIL_LINES = 30
LOG_LOOKBACK_LINES = 400      # read at most this many lines from the end of the failing log
PREVIOUS_BUILDS_SEARCHED = 50
GITHUB_DESCRIPTION_MAX = 140  # GitHub refuses longer commit status descriptions

# what a mail says happened
FAILED = "failed"
STILL_FAILING = "still failing"
FIXED = "fixed"


def result_name(results: int | None) -> str:
    if results is None or not 0 <= results < len(Results):
        return "UNKNOWN"
    return Results[results].upper()


def mail_kind(results: int | None, previous: int | None, every_failure: bool) -> str | None:
    """Whether a finished build is worth a mail, and which: FAILED (the first failure, also of a
    builder's very first build), STILL_FAILING (only with every_failure), FIXED (passing after a
    failure), or None: green after green, cancelled, skipped, retried."""
    if results in FAILING:
        if previous in FAILING:
            return STILL_FAILING if every_failure else None
        return FAILED
    if results in PASSING and previous in FAILING:
        return FIXED
    return None


def display_branch(branch: str | None) -> str:
    """'main' stays 'main'; 'refs/pull/12/head' becomes 'PR #12'."""
    m = re.match(r"^refs/pull/(\d+)/(?:head|merge)$", branch or "")
    if m:
        return f"PR #{m.group(1)}"
    return branch or "(no branch)"


def format_percent(value: float) -> str:
    return f"{value:g}"


@dataclass
class ChangeFacts:
    revision: str
    title: str
    author: str


@dataclass
class MailFacts:
    """Everything a failure/fix mail says, gathered from one finished build."""
    project: str
    branch: str | None
    kind: str                      # FAILED, STILL_FAILING or FIXED
    results: int
    previous_results: int | None
    builder: str
    number: int
    url: str
    revision: str | None = None
    changes: list[ChangeFacts] = field(default_factory=list)
    failing_step: str | None = None
    failing_step_summary: str | None = None
    tests_passed: int | None = None
    tests_failed: int | None = None
    tests_failed_names: list[str] = field(default_factory=list)
    coverage_percent: float | None = None
    coverage_threshold: float | None = None
    log_name: str | None = None
    log_tail: list[str] = field(default_factory=list)
    pull_request_url: str | None = None

    @property
    def short_revision(self) -> str:
        return (self.revision or "")[:7] or "HEAD"

    @property
    def result(self) -> str:
        return result_name(self.results)


def mail_subject(facts: MailFacts) -> str:
    """'[snowbird] main FAILURE 3f2a9c1: tests failed' — one line, no commit text in it."""
    if facts.kind == FIXED:
        reason = "fixed"
    else:
        what = facts.failing_step or "build"
        reason = f"{what} still failing" if facts.kind == STILL_FAILING else f"{what} failed"
    subject = (f"[{facts.project}] {display_branch(facts.branch)} {facts.result} "
               f"{facts.short_revision}: {reason}")
    return " ".join(subject.split())  # never a newline (a header), whatever the names hold


def _headline(facts: MailFacts) -> str:
    where = f"{facts.project} {display_branch(facts.branch)}"
    build = f"{facts.builder} #{facts.number}"
    was = (f" (the previous build: {result_name(facts.previous_results)})"
           if facts.previous_results is not None else "")
    if facts.kind == FIXED:
        return f"{where} is fixed: build {build} is {facts.result} at {facts.short_revision}{was}."
    if facts.kind == STILL_FAILING:
        return f"{where} is still broken: build {build} is {facts.result} at " \
               f"{facts.short_revision}{was}."
    return f"{where} is broken: build {build} is {facts.result} at {facts.short_revision}{was}."


def _rows(facts: MailFacts) -> list[tuple[str, list[str]]]:
    """(label, lines) in the order both bodies show them."""
    rows: list[tuple[str, list[str]]] = [("Build", [facts.url])]
    if facts.pull_request_url:
        rows.append(("Pull request", [facts.pull_request_url]))
    # Buildbot's changes of a build: its own and those since the last green build (newest first)
    own = [c for c in facts.changes if facts.revision and c.revision == facts.revision]
    own = own or facts.changes[:1]
    earlier = [c for c in facts.changes if c not in own]
    if own:
        rows.append(("Commit", [f"{c.revision[:7]} {c.title} ({c.author})" for c in own]))
    elif facts.revision:
        rows.append(("Commit", [facts.short_revision]))
    if earlier:
        rows.append(("Since last green", [f"{c.revision[:7]} {c.title} ({c.author})"
                                          for c in earlier]))
    if facts.failing_step and facts.kind != FIXED:
        summary = f": {facts.failing_step_summary}" if facts.failing_step_summary else ""
        rows.append(("Failed step", [f"{facts.failing_step}{summary}"]))
    if facts.tests_passed is not None or facts.tests_failed is not None:
        rows.append(("Tests", [f"{facts.tests_passed or 0} passed, "
                               f"{facts.tests_failed or 0} failed"]))
    if facts.tests_failed_names and facts.kind != FIXED:
        names = list(facts.tests_failed_names)
        if facts.tests_failed and facts.tests_failed > len(names):
            names.append(f"… and {facts.tests_failed - len(names)} more")
        rows.append(("Failing tests", names))
    if facts.coverage_percent is not None:
        threshold = (f" (threshold {format_percent(facts.coverage_threshold)}%)"
                     if facts.coverage_threshold is not None else "")
        rows.append(("Coverage", [f"{format_percent(facts.coverage_percent)}%{threshold}"]))
    return rows


def _log_title(facts: MailFacts) -> str:
    return (f"The last {len(facts.log_tail)} lines of {facts.failing_step} "
            f"({facts.log_name}):")


def render_text(facts: MailFacts) -> str:
    width = max(len(label) for label, _ in _rows(facts)) + 2
    lines = [_headline(facts), ""]
    for label, values in _rows(facts):
        lines.append(f"{label:<{width}}{values[0]}")
        lines.extend(f"{'':<{width}}{value}" for value in values[1:])
    if facts.log_tail and facts.kind != FIXED:
        lines += ["", _log_title(facts), ""]
        lines += [f"    {line}" for line in facts.log_tail]
    lines += ["", "-- ", "Conveyor: mail on a failure and on its fix; silence means green."]
    return "\n".join(lines) + "\n"


def render_html(facts: MailFacts) -> str:
    e = html.escape
    color = {FAILED: "#b00020", STILL_FAILING: "#b00020", FIXED: "#1b5e20"}[facts.kind]
    parts = [
        "<!DOCTYPE html>",
        '<html><body style="font-family: sans-serif">',
        f'<p style="color: {color}; font-weight: bold">{e(_headline(facts))}</p>',
        '<table style="border-collapse: collapse">',
    ]
    for label, values in _rows(facts):
        if label in ("Build", "Pull request"):
            cell = f'<a href="{e(values[0], quote=True)}">{e(values[0])}</a>'
        elif label == "Failing tests":
            cell = "<br>".join(f"<code>{e(v)}</code>" for v in values)
        else:
            cell = "<br>".join(e(v) for v in values)
        parts.append(f'<tr><th style="text-align: left; vertical-align: top; '
                     f'padding-right: 1em">{e(label)}</th><td>{cell}</td></tr>')
    parts.append("</table>")
    if facts.log_tail and facts.kind != FIXED:
        parts.append(f"<p>{e(_log_title(facts))}</p>")
        parts.append('<pre style="background: #f4f4f4; padding: 0.5em">'
                     + e("\n".join(facts.log_tail)) + "</pre>")
    parts.append("<p>Conveyor: mail on a failure and on its fix; silence means green.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render_mail(facts: MailFacts) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of a failure/fix mail."""
    return mail_subject(facts), render_text(facts), render_html(facts)


def status_description(results: int | None, failing_step: str | None,
                       step_summary: str | None, tests_passed: int | None,
                       tests_failed: int | None, coverage_percent: float | None) -> str:
    """The one-line description of a finished build's GitHub commit status (≤ 140 chars)."""
    parts = []
    if results in PASSING:
        if tests_passed is not None:
            parts.append(f"{tests_passed} passed")
        if coverage_percent is not None:
            parts.append(f"coverage {format_percent(coverage_percent)}%")
        text = f"{result_name(results).lower()}: {', '.join(parts)}" if parts \
            else result_name(results).lower()
    elif results in FAILING and failing_step:
        text = f"{failing_step} failed"
        if step_summary:
            text += f": {step_summary}"
    else:
        text = result_name(results).lower()
    if len(text) > GITHUB_DESCRIPTION_MAX:
        text = text[:GITHUB_DESCRIPTION_MAX - 1] + "…"
    return text


# ---- from the master's data to MailFacts ---------------------------------------------------

def _prop(build: dict, name: str, default: Any = None) -> Any:
    value = (build.get("properties") or {}).get(name)
    return value[0] if value else default


def _step_summary(step: dict) -> str | None:
    """The step's summary without the trailing ' (failure)' Buildbot appends."""
    text = step.get("state_string") or ""
    text = re.sub(r"\s*\((failure|exception|warnings|cancelled|skipped)\)$", "", text)
    return text or None


def failing_step(build: dict) -> dict | None:
    """The first step that failed (or raised): the one a mail and a status name."""
    for step in build.get("steps") or []:
        if step.get("results") in FAILING and not step.get("hidden"):
            return step
    for step in build.get("steps") or []:
        if step.get("results") in FAILING:
            return step
    return None


@defer.inlineCallbacks
def log_tail(master: Any, step: dict, lines: int = LOG_TAIL_LINES) -> Any:
    """(log name, the last `lines` output lines of the step's stdio log — or its first log)."""
    logs = yield master.data.get(("steps", step["stepid"], "logs"))
    logs = list(logs or [])
    chosen = next((entry for entry in logs if entry["slug"] == "stdio"), None)
    if chosen is None and logs:
        chosen = logs[0]
    if chosen is None or not chosen.get("num_lines"):
        return None, []
    count = chosen["num_lines"]
    first = max(0, count - LOG_LOOKBACK_LINES)
    content = yield master.data.get(("logs", chosen["logid"], "contents"), offset=first,
                                    limit=count - first)
    text = (content or {}).get("content") or ""
    out = []
    for line in text.splitlines():
        if chosen.get("type") == "s":
            # stdio lines start with their stream: o(ut), e(rr), h(eader: argv, env, exit code)
            if line[:1] == "h":
                continue
            line = line[1:]
        out.append(line)
    return chosen["name"], out[-lines:]


@defer.inlineCallbacks
def gather_facts(master: Any, build: dict, project: str, kind: str) -> Any:
    """MailFacts of a finished build (with properties and steps, as the generator fetched it)."""
    changes = yield master.data.get(("builds", build["buildid"], "changes"))
    sourcestamps = (build.get("buildset") or {}).get("sourcestamps") or []
    revision = (_prop(build, "got_revision") or _prop(build, "revision")
                or next((ss.get("revision") for ss in sourcestamps if ss.get("revision")), None))
    if isinstance(revision, dict):  # got_revision per codebase
        revision = next(iter(revision.values()), None)
    prev = build.get("prev_build")
    facts = MailFacts(
        project=project,
        branch=_prop(build, "branch"),
        kind=kind,
        results=build["results"],
        previous_results=prev["results"] if prev else None,
        builder=build["builder"]["name"],
        number=build["number"],
        url=build.get("url") or reporter_utils.getURLForBuild(master, build["builderid"],
                                                              build["number"]),
        revision=revision,
        changes=[ChangeFacts(revision=c.get("revision") or "",
                             title=((c.get("comments") or "").strip().splitlines() or [""])[0],
                             author=c.get("author") or "")
                 for c in (changes or [])],
        tests_passed=_prop(build, "tests_passed"),
        tests_failed=_prop(build, "tests_failed"),
        tests_failed_names=list(_prop(build, "tests_failed_names") or []),
        coverage_percent=_prop(build, "coverage_percent"),
        coverage_threshold=_prop(build, "coverage_threshold"),
        pull_request_url=_prop(build, "pullrequesturl"),
    )
    step = failing_step(build)
    if step is not None and kind != FIXED:
        facts.failing_step = step["name"]
        facts.failing_step_summary = _step_summary(step)
        try:
            facts.log_name, facts.log_tail = yield log_tail(master, step)
        except Exception as exc:  # a mail without the log beats no mail
            log.msg(f"conveyor mail: no log tail for {facts.builder} #{facts.number}: {exc!r}")
    return facts


@defer.inlineCallbacks
def previous_build(master: Any, build: dict) -> Any:
    """The last finished build of the same builder and branch before this one, not counting
    cancelled, skipped or retried builds; None if there is none."""
    branch = _prop(build, "branch")
    candidates = yield master.data.get(
        ("builders", build["builderid"], "builds"),
        filters=[resultspec.Filter("number", "lt", [build["number"]])],
        order=["-number"], limit=PREVIOUS_BUILDS_SEARCHED)
    for candidate in candidates or []:
        if not candidate.get("complete") or candidate.get("results") in (
                None, CANCELLED, SKIPPED, RETRY):
            continue
        props = yield master.data.get(("builds", candidate["buildid"], "properties"))
        if (props.get("branch") or [None])[0] == branch:
            return candidate
    return None


# ---- Buildbot pieces ----------------------------------------------------------------------

class ConveyorMailFormatter(MessageFormatterBase):
    """Subject + plain text body; the HTML alternative rides along in extra_info."""

    compare_attrs: ClassVar[Sequence[str]] = ["project"]

    def __init__(self, project: str):
        super().__init__(want_properties=True, want_steps=True, want_logs=False,
                         want_logs_content=False)
        self.project = project

    @defer.inlineCallbacks
    def format_message_for_build(self, master: Any, build: dict, **kwargs: Any) -> Any:
        kind = build.get("conveyor_mail") or FAILED
        facts = yield gather_facts(master, build, self.project, kind)
        subject, text, html_body = render_mail(facts)
        return {"body": text, "type": "plain", "subject": subject,
                "extra_info": {"conveyor": {"html": html_body}}}

    def format_message_for_buildset(self, master: Any, buildset: dict, builds: list,
                                    **kwargs: Any) -> Any:
        raise NotImplementedError("Conveyor mails are per build")


class FailureAndFixGenerator(BuildStatusGenerator):
    """Reports a finished build when `mail_kind` says so (see there), comparing with
    `previous_build` (same builder and branch) rather than Buildbot's build number - 1."""

    compare_attrs: ClassVar[Sequence[str]] = ["every_failure"]

    def __init__(self, builders: list[str], every_failure: bool,
                 message_formatter: MessageFormatterBase):
        # the modes only name the behaviour (generate_name, checkConfig): `generate` decides
        super().__init__(mode=("failing", "change") if every_failure else ("problem", "change"),
                         builders=builders, message_formatter=message_formatter)
        self.every_failure = every_failure

    @defer.inlineCallbacks
    def generate(self, master: Any, reporter: Any, key: Any, build: dict) -> Any:
        yield reporter_utils.getDetailsForBuild(master, build, want_properties=True,
                                                want_steps=True)
        if not self.is_message_needed_by_props(build):
            return None
        previous = yield previous_build(master, build)
        build["prev_build"] = previous
        kind = mail_kind(build["results"], previous["results"] if previous else None,
                         self.every_failure)
        if kind is None:
            return None
        build["conveyor_mail"] = kind
        report = yield self.build_message(self.formatter, master, reporter, build)
        return report


class AdminsWorkerMissingGenerator(WorkerMissingGenerator):
    """A worker missing for its missing_timeout mails the admins (not the worker's own
    notify_on_missing list)."""

    compare_attrs: ClassVar[Sequence[str]] = ["admins"]

    def __init__(self, admins: Sequence[str]):
        super().__init__(workers="all", message_formatter=MessageFormatterMissingWorker(
            subject="[{{ buildbot_title }}] worker {{ worker.name }} is missing"))
        self.admins = list(admins)

    def generate(self, master: Any, reporter: Any, key: Any, worker: dict) -> Any:
        return super().generate(master, reporter, key, {**worker, "notify": self.admins})


class ConveyorMailNotifier(MailNotifier):
    """MailNotifier sending multipart/alternative (plain text and HTML) mails, To: the authors
    of the changes, Cc: the team's list; never a mail without recipients."""

    @defer.inlineCallbacks
    def sendMessage(self, reports: list[dict]) -> Any:
        for report in reports:
            yield self._send_one(report)

    @defer.inlineCallbacks
    def _send_one(self, report: dict) -> Any:
        text = report["body"]
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        html_body = ((report.get("extra_info") or {}).get("conveyor") or {}).get("html")
        if html_body:
            m = MIMEMultipart("alternative")
            m.attach(MIMEText(text, "plain", "utf-8"))
            m.attach(MIMEText(html_body, "html", "utf-8"))
        else:
            m = MIMEText(text, report.get("type") or "plain", "utf-8")
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
                m["To"] = ", ".join(self.formatAddress(a) for a in sorted(recipients))
        else:
            users = yield self.findInterrestedUsersEmails(list(report.get("users") or []))
            recipients = self.processRecipients(users, m)
        if not recipients:
            log.msg(f"conveyor mail: nobody to tell about {subject!r}: no recipients")
            return
        yield self.sendMail(m, recipients)


def _mail_auth(settings: Settings) -> dict:
    mail = settings.mail
    kwargs: dict[str, Any] = {
        "fromaddr": mail.from_address,
        "relayhost": mail.smtp_host,
        "smtpPort": mail.smtp_port,
        "useTls": mail.starttls,      # STARTTLS on a plain connection, required
        "useSmtps": mail.use_tls,     # SMTPS: TLS from the first byte
    }
    if mail.username:
        kwargs["smtpUser"] = mail.username
        kwargs["smtpPassword"] = util.Secret(mail.password_secret)
    return kwargs


def mail_notifiers(settings: Settings) -> list:
    result: list = []
    for project in settings.projects:
        builders = [project.ci_builder] + ([project.pr_builder] if project.pull_requests else [])
        result.append(ConveyorMailNotifier(
            name=f"mail-{project.name}",
            extraRecipients=list(project.mail),
            sendToInterestedUsers=True,
            generators=[FailureAndFixGenerator(
                builders=builders, every_failure=settings.mail.every_failure,
                message_formatter=ConveyorMailFormatter(project.name))],
            **_mail_auth(settings),
        ))
    if settings.admins:
        result.append(ConveyorMailNotifier(
            name="mail-admins",
            sendToInterestedUsers=False,
            generators=[AdminsWorkerMissingGenerator(settings.admins)],
            **_mail_auth(settings),
        ))
    return result


def _describe_finished(context: dict) -> str:
    build = context["build"]
    step = failing_step(build)
    return status_description(
        build.get("results"), step["name"] if step else None,
        _step_summary(step) if step else None,
        _prop(build, "tests_passed"), _prop(build, "tests_failed"),
        _prop(build, "coverage_percent"))


def github_status_pushers(settings: Settings) -> list:
    github = settings.github
    if not github.statuses:
        return []
    if settings.read_secret(github.token_secret) is None:
        log.msg(f"conveyor: no GitHub commit statuses: the secret {github.token_secret!r} "
                f"is missing from {settings.secrets_dir}")
        return []
    result = []
    for project in settings.projects:
        builders = [project.ci_builder] + ([project.pr_builder] if project.pull_requests else [])
        result.append(reporters_plugin.GitHubStatusPush(
            name=f"github-{project.name}",
            token=util.Secret(github.token_secret),
            baseURL=github.api_url,
            context=f"conveyor/{project.name}",
            verbose=False,
            generators=[
                # queued: the commit shows Conveyor's verdict is coming (the buildrequest's page)
                BuildRequestGenerator(builders=builders,
                                      formatter=MessageFormatterRenderable("queued")),
                BuildStartEndStatusGenerator(
                    builders=builders,
                    start_formatter=MessageFormatterRenderable(util.Interpolate(
                        "building: %(prop:buildername)s #%(prop:buildnumber)s")),
                    end_formatter=MessageFormatterFunction(_describe_finished, "plain",
                                                           want_steps=True)),
            ],
        ))
    return result


def reporters(settings: Settings) -> list:
    return mail_notifiers(settings) + github_status_pushers(settings)

