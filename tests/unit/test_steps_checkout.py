"""steps/checkout.py: its script against real git repositories (a push's commit, a forced build's
branch head, leftovers removed, a commit the branch no longer leads to), and the step's
properties and refusals (ExpectShell)."""

import subprocess
from types import SimpleNamespace

import pytest

from buildbot.process.results import FAILURE
from buildbot.process.results import SUCCESS

from steps import checkout
from tests.unit import stepcase
from tests.unit.stepcase import ExpectShell

SHA = "3f2a9c1d5e6f708192a3b4c5d6e7f8091a2b3c4d"


def git(where, *args) -> str:
    return subprocess.run(
        ["git", "-C", str(where), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def origin(tmp_path):
    repo = tmp_path / "origin.git"
    work = tmp_path / "author"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    git(work, "config", "user.email", "dev@example.com")
    git(work, "config", "user.name", "Dev")
    (work / "app.py").write_text("one\n")
    git(work, "add", ".")
    git(work, "commit", "-qm", "one")
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(repo)], check=True)
    git(work, "remote", "add", "origin", str(repo))
    return SimpleNamespace(url=str(repo), work=work)


def commit(origin, text: str, push: str = "main") -> str:
    (origin.work / "app.py").write_text(text + "\n")
    git(origin.work, "commit", "-qam", text)
    git(origin.work, "push", "-q", "--force", "origin", f"HEAD:{push}")
    return git(origin.work, "rev-parse", "HEAD")


def run_script(where, origin, revision: str = "") -> tuple[str, int]:
    where.mkdir(exist_ok=True)
    out = subprocess.run(
        ["sh", "-c", checkout.SCRIPT, "checkout", origin.url, "main", revision],
        cwd=where,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    sha, when = out.split()
    return sha, int(when)


def test_the_pushed_commit_is_checked_out_fresh_with_its_time(origin, tmp_path):
    first = commit(origin, "two")
    second = commit(origin, "three")
    build = tmp_path / "build"
    assert run_script(build, origin, first)[0] == first
    assert (build / "app.py").read_text() == "two\n"
    # a later build in the same directory: the other commit, and no leftovers of the first
    (build / "left-over.txt").write_text("from the last build")
    (build / "app.py").write_text("changed by the last build")
    sha, when = run_script(build, origin, second)
    assert sha == second
    assert (build / "app.py").read_text() == "three\n"
    assert not (build / "left-over.txt").exists()
    assert when == int(git(origin.work, "log", "-1", "--format=%ct", second))


def test_a_git_stopped_mid_checkout_does_not_lock_out_the_next_build(origin, tmp_path):
    # a build stopped (killed) while git wrote its index leaves index.lock behind: git then
    # refuses every later checkout in that directory until someone removes it by hand
    build = tmp_path / "build"
    run_script(build, origin)
    (build / ".git" / "index.lock").write_text("")
    head = commit(origin, "two")
    assert run_script(build, origin, head)[0] == head
    assert (build / "app.py").read_text() == "two\n"


def test_a_forced_build_takes_the_branch_head(origin, tmp_path):
    head = commit(origin, "two")
    assert run_script(tmp_path / "build", origin)[0] == head


def test_a_commit_the_branch_no_longer_leads_to_is_still_checked_out(origin, tmp_path):
    build = tmp_path / "build"
    run_script(build, origin)
    gone = commit(origin, "pushed, then force-pushed away")
    git(origin.work, "reset", "-q", "--hard", "HEAD~1")
    commit(origin, "the branch now")
    git(origin.work, "push", "-q", "origin", f"{gone}:refs/heads/keep")  # still in the repo
    assert run_script(build, origin, gone)[0] == gone


def checkout_with_changelog(where, origin) -> str:
    where.mkdir(exist_ok=True)
    return subprocess.run(
        ["sh", "-c", checkout.SCRIPT, "checkout", origin.url, "main", "", "debian/changelog"],
        cwd=where,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


ENTRY = """snowbird (1.4.0) unstable; urgency=medium

  * Second release.

 -- Dev <dev@example.com>  Mon, 02 Nov 2026 10:00:00 +0000
"""


def test_the_changelogs_first_entry_is_printed_as_the_commit_holds_it(origin, tmp_path):
    (origin.work / "debian").mkdir()
    (origin.work / "debian" / "changelog").write_text(
        ENTRY + "\nsnowbird (1.3.0) unstable; urgency=medium\n\n  * First.\n\n"
        " -- Dev <dev@example.com>  Sun, 01 Nov 2026 10:00:00 +0000\n"
    )
    git(origin.work, "add", ".")
    head = commit(origin, "two")
    out = checkout_with_changelog(tmp_path / "build", origin)
    assert out == f"{head} {git(origin.work, 'log', '-1', '--format=%ct')}\n@@ changelog\n" + ENTRY


def test_a_changelog_committed_as_a_link_to_a_secret_does_not_print_the_secret(origin, tmp_path):
    # the worker runs the checkout with its own rights, outside the sandbox: were the file read
    # (and not git's blob), its password would end up in the version step's error
    secret = tmp_path / "worker-password"
    secret.write_text("s3cret-worker-password\n")
    (origin.work / "debian").mkdir()
    (origin.work / "debian" / "changelog").symlink_to(secret)
    git(origin.work, "add", ".")
    commit(origin, "two")
    out = checkout_with_changelog(tmp_path / "build", origin)
    assert "s3cret" not in out
    assert out.endswith(f"@@ changelog\n{secret}")  # the link's target, as text


def test_a_commit_without_the_changelog_prints_none(origin, tmp_path):
    out = checkout_with_changelog(tmp_path / "build", origin)
    assert out.endswith("@@ changelog\n")


class CheckoutStepTest(stepcase.StepTestCase):
    def setup_checkout(self, revision):
        step = self.setup(checkout.Checkout(repourl="file:///srv/git/app.git", branch="main"))
        self.build.sources = {"": SimpleNamespace(revision=revision, changes=[])}
        return step

    def test_sets_got_revision_and_commit_time(self):
        self.setup_checkout(SHA)
        self.expect_commands(
            ExpectShell(
                workdir="wkdir",
                command=[
                    "sh",
                    "-c",
                    checkout.SCRIPT,
                    "checkout",
                    "file:///srv/git/app.git",
                    "main",
                    SHA,
                ],
            )
            .stdout(f"{SHA} 1764150000\n")
            .exit(0)
        )
        self.expect_outcome(result=SUCCESS)
        self.expect_property("got_revision", SHA)
        self.expect_property("commit_time", 1764150000)
        return self.run_step()

    def test_a_revision_that_is_not_a_commit_id_is_refused_before_git_sees_it(self):
        self.setup_checkout("--upload-pack=touch /tmp/x")
        self.expect_outcome(result=FAILURE)
        self.expect_log_file_stderr("stdio", "not a commit id: '--upload-pack=touch /tmp/x'\n")
        self.expect_no_property("got_revision")
        return self.run_step()

    def test_a_failed_fetch_fails_the_step(self):
        self.setup_checkout(SHA)
        self.expect_commands(
            ExpectShell(
                workdir="wkdir",
                command=[
                    "sh",
                    "-c",
                    checkout.SCRIPT,
                    "checkout",
                    "file:///srv/git/app.git",
                    "main",
                    SHA,
                ],
            )
            .stderr("fatal: repository not found\n")
            .exit(128)
        )
        self.expect_outcome(result=FAILURE)
        self.expect_no_property("got_revision")
        return self.run_step()

    def test_with_a_changelog_sets_its_first_entry(self):
        self.setup(
            checkout.Checkout(
                repourl="file:///srv/git/app.git", branch="main", changelog="debian/changelog"
            )
        )
        self.build.sources = {"": SimpleNamespace(revision=SHA, changes=[])}
        self.expect_commands(
            ExpectShell(
                workdir="wkdir",
                command=[
                    "sh",
                    "-c",
                    checkout.SCRIPT,
                    "checkout",
                    "file:///srv/git/app.git",
                    "main",
                    SHA,
                    "debian/changelog",
                ],
            )
            .stdout(f"{SHA} 1764150000\n{checkout.CHANGELOG}{ENTRY}")
            .exit(0)
        )
        self.expect_outcome(result=SUCCESS)
        self.expect_property("got_revision", SHA)
        self.expect_property("changelog_head", ENTRY)
        return self.run_step()
