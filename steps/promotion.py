"""Promotion and rollback: decide what a request will do, by the rules, before anything changes.

The aptly work itself is done by the steps of steps/repository.py.
"""

from __future__ import annotations

from buildbot.process import buildstep
from buildbot.process import results
from twisted.internet import defer

from master import repository
from steps.repository import HistoryStep
from steps.repository import IndexReader


class ResolvePromotion(IndexReader, buildstep.BuildStep):
    """Check a promote request (properties `package`, `version`, `from_dist`, `to_dist`) against
    the path and against what the two distributions publish; on success set `package_version`
    (the version to promote: the newest in the source when none was named), `previous_version`,
    `package_commit`, `previous_commit`, `verify_packages`, and `promotion_noop` when the version
    is already there. Runs on the master, reading the indexes over HTTP as apt does."""

    name = "check"
    description = "checking the request"
    descriptionDone = "request checked"

    def __init__(self, paths: dict[str, list[str]], repo_url: str, component: str,
                 architectures, **kwargs):
        self.paths = paths  # package -> its project's promotion path
        self.setup_index(repo_url, component, architectures)
        kwargs.setdefault("haltOnFailure", True)
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def run(self):
        log = yield self.addLog("stdio")
        package = self.getProperty("package") or ""
        version = (self.getProperty("version") or "").strip()
        source, target = self.getProperty("from_dist") or "", self.getProperty("to_dist") or ""
        try:
            if package not in self.paths:
                raise repository.ReleaseError(
                    f"{package!r} is not a package of any project (known: "
                    f"{', '.join(sorted(self.paths))})")
            if version:
                repository.split_version(version)
            path = self.paths[package]
            if not target:
                target = repository.next_step(path, source) or ""
                self.setProperty("to_dist", target, "ResolvePromotion")
            repository.check_step(path, source, target)
            indexes = {}
            for dist in (source, target):
                stanzas = yield self.read_index(log, dist)
                if isinstance(stanzas, str):
                    raise repository.ReleaseError(f"{dist}: {stanzas}")
                indexes[dist] = {s["Version"]: s for s in stanzas if s["Package"] == package}
            plan = repository.plan_promotion(package, version, source, target,
                                             set(indexes[source]), set(indexes[target]))
        except repository.ReleaseError as exc:
            yield log.addStderr(f"refused: {exc}\n")
            self.descriptionDone = f"refused: {exc}"
            return results.FAILURE

        commit = indexes[source][plan.version].get("Conveyor-Commit")
        previous = indexes[target].get(plan.previous or "", {}).get("Conveyor-Commit")
        for name, value in (("package_version", plan.version),
                            ("previous_version", plan.previous),
                            ("package_commit", commit), ("previous_commit", previous),
                            ("verify_packages", [package]),
                            ("promotion_noop", plan.noop)):
            self.setProperty(name, value, "ResolvePromotion")
        if plan.noop:
            message = f"{package} {plan.version} is already in {target}: nothing changed"
        else:
            message = (f"{package} {plan.version}: {source} → {target}"
                       f" (there: {plan.previous or 'none'})")
        yield log.addStdout(message + "\n")
        self.descriptionDone = message
        return results.SUCCESS


class ResolveRollback(HistoryStep):
    """Which earlier state a rollback of `distribution` returns to: the one before the current
    (property `current_snapshot`), or the state named by property `state` (a snapshot name or a
    history entry number). Sets `snapshot`, `package`, `package_version`, `verify_packages` and
    `verify_absent` (the version that leaves)."""

    name = "check"
    description = "checking the request"
    descriptionDone = "request checked"

    @defer.inlineCallbacks
    def run(self):
        log = yield self.addLog("stdio")
        _, history = yield self.read_history()
        current = self.getProperty("current_snapshot")
        try:
            target = repository.rollback_target(history, current,
                                                (self.getProperty("state") or "").strip())
        except repository.ReleaseError as exc:
            yield log.addStderr(f"refused: {exc}\n")
            self.descriptionDone = f"refused: {exc}"
            return results.FAILURE
        now = next(e for e in reversed(history) if e["snapshot"] == current)
        package = target.get("package") or now.get("package")
        leaving = now.get("version") if now.get("version") != target.get("version") else None
        for name, value in (("snapshot", target["snapshot"]), ("package", package),
                            ("package_version", target.get("version")),
                            ("verify_packages", [package] if package else []),
                            ("verify_absent", leaving), ("state", str(target["n"]))):
            self.setProperty(name, value, "ResolveRollback")
        message = (f"{self.distribution}: back to state {target['n']} ({target['snapshot']}: "
                   f"{package} {target.get('version') or 'nothing'})")
        yield log.addStdout(message + "\n")
        self.descriptionDone = message
        return results.SUCCESS


class CommitsBetween(buildstep.ShellMixin, buildstep.BuildStep):
    """The commits between the version leaving production and the one arriving, from the
    commits recorded in the packages (`previous_commit`, `package_commit`), read from a fresh
    bare clone of the project's configured repository: sets `release_commits`."""

    name = "commits"
    description = "listing commits"
    descriptionDone = "commits"

    def __init__(self, clone_urls: dict[str, str], **kwargs):
        self.clone_urls = clone_urls  # package -> its project's clone URL
        kwargs.setdefault("haltOnFailure", False)  # the release is done; this is for the mail
        kwargs = self.setupShellMixin(kwargs)
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def run(self):
        new, old = self.getProperty("package_commit"), self.getProperty("previous_commit")
        url = self.clone_urls.get(self.getProperty("package"))
        if not new or not url:
            self.setProperty("release_commits", [], "CommitsBetween")
            self.descriptionDone = "no commit recorded in the package"
            return results.WARNINGS
        cmd = yield self.makeRemoteShellCommand(
            command=["rm", "-rf", "release.git"], stdioLogName="clone")
        yield self.runCommand(cmd)
        cmd = yield self.makeRemoteShellCommand(
            command=["git", "clone", "--quiet", "--bare", url, "release.git"],
            stdioLogName="clone")
        yield self.runCommand(cmd)
        if cmd.didFail():
            return cmd.results()
        span = [f"{old}..{new}"] if old else ["--max-count=20", new]
        cmd = yield self.makeRemoteShellCommand(
            command=["git", "--git-dir=release.git", "log", "--no-merges",
                     "--format=%h %an: %s", *span],
            collectStdout=True)
        yield self.runCommand(cmd)
        if cmd.didFail():
            return cmd.results()
        commits = [line for line in cmd.stdout.splitlines() if line.strip()]
        self.setProperty("release_commits", commits, "CommitsBetween")
        self.descriptionDone = f"{len(commits)} commit(s)"
        return results.SUCCESS


class ReleaseMail(buildstep.BuildStep):
    """Mail the team that a version reached production: package, old → new, who, the commits."""

    name = "release mail"
    description = "mailing the team"
    descriptionDone = "mailed"

    def __init__(self, mail, recipients: dict[str, list[str]], **kwargs):
        self.mail = mail              # settings.Mail
        self.recipients = recipients  # package -> its project's team addresses
        kwargs.setdefault("haltOnFailure", False)
        super().__init__(**kwargs)

    def message(self, url: str) -> tuple[str, str]:
        package = self.getProperty("package")
        new, old = self.getProperty("package_version"), self.getProperty("previous_version")
        target, who = self.getProperty("to_dist"), self.getProperty("owner") or "?"
        commits = self.getProperty("release_commits") or []
        subject = f"[conveyor] {package} {new} released to {target}"
        lines = [
            f"{package} {old or '(none)'} → {new} in {target}",
            f"promoted by {who} from {self.getProperty('from_dist')}",
            f"build: {url}",
            "",
            f"commits ({len(commits)}):" if commits else "commits: none recorded",
            *[f"  {c}" for c in commits],
        ]
        return subject, "\n".join(lines) + "\n"

    @defer.inlineCallbacks
    def run(self):
        from email.message import EmailMessage

        from buildbot.plugins import util
        from twisted.internet import threads

        to = self.recipients.get(self.getProperty("package")) or []
        if not to:
            self.descriptionDone = "nobody to mail (no `mail` in the project's settings)"
            return results.SKIPPED
        url = yield self.build.getUrl()
        subject, body = self.message(url)
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.mail.from_address, ", ".join(to), subject
        msg.set_content(body)
        password = None
        if self.mail.username:
            password = yield self.build.render(util.Secret(self.mail.password_secret))
        log = yield self.addLog("mail")
        yield log.addStdout(f"To: {msg['To']}\nSubject: {subject}\n\n{body}")
        try:
            yield threads.deferToThread(send, self.mail, password, msg)
        except Exception as exc:  # the release stands; say that the mail did not go
            yield log.addStderr(f"could not send the mail through {self.mail.smtp_host}:"
                                f"{self.mail.smtp_port}: {exc}\n")
            self.descriptionDone = "mail not sent"
            return results.WARNINGS
        self.descriptionDone = f"mailed {', '.join(to)}"
        return results.SUCCESS


def send(mail, password: str | None, msg) -> None:
    """Send one message through the configured SMTP relay (blocking: run it in a thread)."""
    import smtplib
    import ssl

    context = ssl.create_default_context()
    if mail.use_tls:
        client = smtplib.SMTP_SSL(mail.smtp_host, mail.smtp_port, timeout=30, context=context)
    else:
        client = smtplib.SMTP(mail.smtp_host, mail.smtp_port, timeout=30)
    with client:
        if mail.starttls:
            client.starttls(context=context)
        if mail.username:
            client.login(mail.username, password or "")
        client.send_message(msg)
