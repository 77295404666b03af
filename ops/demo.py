"""The demo: the app in examples/snowbird pushed to a local stand-in for its GitHub repository,
and `make demo-red`, a failing test and its fix with the mails they bring.

Everything GitHub-like (payloads, signatures, delivery, waiting for a build) is ops/github.py.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from conveyor.results import result_name
from conveyor.settings import Project
from conveyor.settings import Settings
from ops import api
from ops import chroots
from ops import github
from ops.mailsink import messages
from ops.mailsink import read
from ops.mailsink import text_of
from ops.mailsink import wait_for_mail
from ops.progress import StepPrinter
from ops.setup import ROOT
from ops.setup import run
from ops.setup import say

DEMO_SOURCE = ROOT / "examples" / "snowbird"


def demo_checkout(settings: Settings) -> Path:
    return settings.state_dir / "demo" / "checkout"


def ensure_demo_repo(settings: Settings, project: Project, source: Path = DEMO_SOURCE) -> Path:
    """The project's clone URL as a bare repository holding the demo app, and a working clone
    to commit to. Returns the working clone."""
    bare = Path(project.clone_url)
    checkout = demo_checkout(settings)
    if not (bare / "HEAD").exists():
        bare.parent.mkdir(parents=True, exist_ok=True)
        run(["git", "init", "--quiet", "--bare", f"--initial-branch={project.branch}", str(bare)])
    if not (checkout / ".git").exists():
        checkout.parent.mkdir(parents=True, exist_ok=True)
        run(["git", "clone", "--quiet", str(bare), str(checkout)])
        github.git(checkout, "checkout", "--quiet", "-B", project.branch)
    sync_tree(source, checkout)
    github.git(checkout, "add", "--all")
    if github.git(checkout, "status", "--porcelain"):
        github.git(
            checkout, "commit", "--quiet", "-m", f"Import {source.name} into the demo repository"
        )
        github.git(checkout, "push", "--quiet", "origin", f"HEAD:refs/heads/{project.branch}")
        say(f"committed the demo app to {bare}")
    return checkout


def new_demo_commit(settings: Settings, project: Project, checkout: Path) -> str:
    """The checkout's HEAD if no push has delivered it yet; else a new (empty) commit on top,
    pushed to the bare repository: each `make push` is a new commit, built and published as a
    new version (a commit already built is refused as a redelivery, and published only once).
    Returns the commit before the push's head (the push event's `before`)."""
    head = github.git(checkout, "rev-parse", "HEAD")
    if api.api(settings, f"changes?revision={head}&limit=1")["changes"]:
        github.git(checkout, "commit", "--quiet", "--allow-empty", "-m", "Demo push")
        github.push_branch(checkout, project)
    return github.git(checkout, "rev-list", "--max-count=1", "--skip=1", "HEAD") or github.ZERO


def sync_tree(source: Path, checkout: Path) -> None:
    """Make the checkout's files those of source (but .git), ignoring build leftovers."""
    ignore = shutil.ignore_patterns(
        "__pycache__",
        "*.pyc",
        ".pytest_cache",
        ".coverage",
        "htmlcov",
        "*.egg-info",
        "build",
        ".venv",
    )
    for entry in checkout.iterdir():
        if entry.name == ".git":
            continue
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    shutil.copytree(source, checkout, dirs_exist_ok=True, ignore=ignore)


def sources_line(
    settings: Settings, distribution: str, keyring: str = "/etc/apt/keyrings/conveyor.gpg"
) -> str:
    """The one-line apt source of `distribution`: with target releases, for this machine's
    release when it is one of them (a host of another reads its own release's component)."""
    repo = settings.repository
    component = repo.component
    if targets := settings.targets_of(distribution):
        mine = chroots.machine_release()
        component = mine if mine in targets else targets[0]
    return f"deb [signed-by={keyring}] {repo.url} {distribution} {component}"


RED_TEST = "tests/test_demo_red.py"
RED_SOURCE = '''"""Added by `make demo-red`: a test that fails, then its fix."""
import snowbird


def test_version_has_three_parts():
    assert len(snowbird.__version__.split(".")) == {parts}
'''


def red_green(settings: Settings, project: Project, mail_dir: Path) -> int:
    """`make demo-red`: push a commit with a failing test, wait for the red build and show the
    mail naming the test; push the fix, wait for the green build and show the 'fixed' mail."""
    checkout = ensure_demo_repo(settings, project)
    status = 0
    for parts, message, expected in (
        (4, "Check that the version has three parts", "FAILURE"),
        (3, "Fix the version check: three parts", "SUCCESS"),
    ):
        before = github.git(checkout, "rev-parse", "HEAD")
        github.commit_file(checkout, RED_TEST, RED_SOURCE.format(parts=parts), message)
        github.push_branch(checkout, project)
        known = set(messages(mail_dir))
        started = time.monotonic()
        build = github.push_and_wait(
            settings, project, checkout, before=before, progress=StepPrinter()
        )
        result = result_name(build["results"])
        print(
            f"\n  build     {project.ci_builder} #{build['number']}: {result}"
            f"  ({build['seconds']:.0f} s from webhook to result)\n  url       {build['url']}"
        )
        mails = wait_for_mail(mail_dir, known, timeout=30)
        if not mails:
            print(f"  mail      none within 30 s in {mail_dir}/ (is the [mail] sink running?)")
            status = 1
        for path in mails:
            mail = read(path)
            print(
                f"  mail      {path}  ({time.monotonic() - started:.0f} s from webhook)\n"
                f"  to        {mail['To']}\n  cc        {mail['Cc']}\n"
                f"  subject   {mail['Subject']}\n"
            )
            print("    " + text_of(mail).replace("\n", "\n    "))
        if result != expected:
            status = 1
    return status
