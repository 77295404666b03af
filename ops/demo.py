"""The demo: a local bare git repository standing in for GitHub, a push delivered to the change
hook exactly as GitHub delivers it (push event, HMAC-signed), and waiting for its build through
the REST API."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime
from datetime import timezone
from pathlib import Path

from master.settings import Project
from master.settings import Settings
from ops.setup import ROOT
from ops.setup import WEBHOOK_SECRET
from ops.setup import run
from ops.setup import say

DEMO_SOURCE = ROOT / "examples" / "snowbird"
AUTHOR = {"name": "Ada Sprintly", "email": "ada@sprintly.example", "username": "ada-sprintly"}
ZERO = "0" * 40


def git(checkout: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": AUTHOR["name"], "GIT_AUTHOR_EMAIL": AUTHOR["email"],
           "GIT_COMMITTER_NAME": AUTHOR["name"], "GIT_COMMITTER_EMAIL": AUTHOR["email"]}
    return run(["git", "-C", str(checkout), *args], env=env).stdout.strip()


def demo_checkout(settings: Settings) -> Path:
    return settings.state_dir / "demo" / "checkout"


def ensure_demo_repo(settings: Settings, project: Project, source: Path = DEMO_SOURCE) -> Path:
    """The project's clone URL as a bare repository holding the demo app, and a working clone
    to commit to. Returns the working clone."""
    bare = Path(project.clone_url)
    checkout = demo_checkout(settings)
    if not (bare / "HEAD").exists():
        bare.parent.mkdir(parents=True, exist_ok=True)
        run(["git", "init", "--quiet", "--bare", f"--initial-branch={project.branch}",
             str(bare)])
    if not (checkout / ".git").exists():
        checkout.parent.mkdir(parents=True, exist_ok=True)
        run(["git", "clone", "--quiet", str(bare), str(checkout)])
        git(checkout, "checkout", "--quiet", "-B", project.branch)
    sync_tree(source, checkout)
    git(checkout, "add", "--all")
    if git(checkout, "status", "--porcelain"):
        git(checkout, "commit", "--quiet", "-m", f"Import {source.name} into the demo repository")
        git(checkout, "push", "--quiet", "origin", f"HEAD:refs/heads/{project.branch}")
        say(f"committed the demo app to {bare}")
    return checkout


def sync_tree(source: Path, checkout: Path) -> None:
    """Make the checkout's files those of source (but .git), ignoring build leftovers."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".coverage",
                                    "htmlcov", "*.egg-info", "build", ".venv")
    for entry in checkout.iterdir():
        if entry.name == ".git":
            continue
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    shutil.copytree(source, checkout, dirs_exist_ok=True, ignore=ignore)


def commit_dict(checkout: Path, sha: str, full_name: str) -> dict:
    fmt = "%H%x00%T%x00%an%x00%ae%x00%cn%x00%ce%x00%cI%x00%B"
    (sha, tree, an, ae, cn, ce, when, message) = git(
        checkout, "show", "-s", f"--format={fmt}", sha).split("\x00", 7)
    status = git(checkout, "diff-tree", "--no-commit-id", "--name-status", "-r", "--root", sha)
    files: dict[str, list[str]] = {"A": [], "D": [], "M": []}
    for line in status.splitlines():
        kind, _, name = line.partition("\t")
        files.setdefault(kind[:1], []).append(name)
    return {
        "id": sha, "tree_id": tree, "distinct": True, "message": message.strip(),
        "timestamp": when, "url": f"https://github.com/{full_name}/commit/{sha}",
        "author": {"name": an, "email": ae, "username": AUTHOR["username"]},
        "committer": {"name": cn, "email": ce, "username": AUTHOR["username"]},
        "added": files["A"], "removed": files["D"], "modified": files["M"],
    }


def push_payload(checkout: Path, project: Project, before: str, after: str) -> dict:
    """A GitHub `push` event body for the commits before..after, in GitHub's shape."""
    full_name = project.github
    owner, name = full_name.split("/")
    revs = git(checkout, "rev-list", "--reverse", "--max-count=20",
               after if before == ZERO else f"{before}..{after}").split()
    commits = [commit_dict(checkout, sha, full_name) for sha in revs]
    html_url = f"https://github.com/{full_name}"
    return {
        "ref": f"refs/heads/{project.branch}",
        "before": before, "after": after,
        "created": before == ZERO, "deleted": False, "forced": False, "base_ref": None,
        "compare": f"{html_url}/compare/{before[:12]}...{after[:12]}",
        "commits": commits,
        "head_commit": commits[-1] if commits else None,
        "repository": {
            "id": int(hashlib.sha1(full_name.encode()).hexdigest()[:8], 16),
            "name": name, "full_name": full_name, "private": True,
            "owner": {"name": owner, "login": owner},
            "html_url": html_url, "url": html_url,
            "clone_url": f"{html_url}.git", "ssh_url": f"git@github.com:{full_name}.git",
            "default_branch": project.branch, "master_branch": project.branch,
        },
        "pusher": {"name": AUTHOR["username"], "email": AUTHOR["email"]},
        "sender": {"login": AUTHOR["username"], "type": "User"},
    }


def sign(secret: str, body: bytes) -> dict[str, str]:
    """The signature headers GitHub sends with a webhook secret."""
    return {
        "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body,
                                                    hashlib.sha256).hexdigest(),
        "X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
    }


def deliver(settings: Settings, event: str, payload: dict | bytes,
            secret: str | None = None, headers: dict | None = None) -> tuple[int, str]:
    """POST a webhook to the change hook as GitHub does; return (HTTP status, body)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    if secret is None:
        secret = settings.read_secret(WEBHOOK_SECRET) or ""
    all_headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/conveyor-demo",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "1",
        **sign(secret, body),
        **(headers or {}),
    }
    request = urllib.request.Request(f"{settings.web_url}change_hook/github", data=body,
                                     headers={k: v for k, v in all_headers.items() if v},
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def api(settings: Settings, path: str) -> dict:
    with urllib.request.urlopen(f"{settings.web_url}api/v2/{path}", timeout=30) as response:
        return json.load(response)


def builder_id(settings: Settings, name: str) -> int:
    builders = api(settings, f"builders?name={name}")["builders"]
    if not builders:
        raise RuntimeError(f"the master has no builder {name!r}")
    return builders[0]["builderid"]


def last_build_number(settings: Settings, builder: str) -> int:
    builds = api(settings, f"builders/{builder_id(settings, builder)}/builds"
                           "?order=-number&limit=1")["builds"]
    return builds[0]["number"] if builds else 0


def wait_for_build(settings: Settings, builder: str, after_number: int,
                   timeout: float = 900) -> dict:
    """The first build of builder numbered above after_number, once it has finished."""
    bid = builder_id(settings, builder)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        builds = api(settings, f"builders/{bid}/builds?number__gt={after_number}"
                               "&order=number&limit=1&property=*")["builds"]
        if builds and builds[0]["complete"]:
            build = builds[0]
            build["url"] = f"{settings.web_url}#/builders/{bid}/builds/{build['number']}"
            return build
        time.sleep(1)
    raise TimeoutError(f"no finished build of {builder} after #{after_number} "
                       f"within {timeout:.0f} s")


RESULTS = ["SUCCESS", "WARNINGS", "FAILURE", "SKIPPED", "EXCEPTION", "RETRY", "CANCELLED"]


def result_name(build: dict) -> str:
    return RESULTS[build["results"]] if build.get("results") is not None else "UNKNOWN"


def push_and_wait(settings: Settings, project: Project, checkout: Path,
                  before: str = ZERO) -> dict:
    """Deliver a push of the checkout's HEAD and wait for the build it starts."""
    after = git(checkout, "rev-parse", "HEAD")
    number = last_build_number(settings, project.ci_builder)
    started = time.monotonic()
    status, body = deliver(settings, "push", push_payload(checkout, project, before, after))
    if status not in (200, 202):
        raise RuntimeError(f"the change hook refused the push: {status} {body}")
    say(f"delivered push {after[:12]} to {settings.web_url}change_hook/github ({status} {body})")
    build = wait_for_build(settings, project.ci_builder, number)
    build["seconds"] = time.monotonic() - started
    build["revision"] = after
    return build


def sources_line(settings: Settings, distribution: str,
                 keyring: str = "/etc/apt/keyrings/conveyor.gpg") -> str:
    repo = settings.repository
    return f"deb [signed-by={keyring}] {repo.url} {distribution} {repo.component}"


# --- pull requests and the red/green demo (`make demo-red`, python -m ops red) ----------------------

def commit_file(checkout: Path, relpath: str, content: str, message: str) -> str:
    """Write one file in the checkout, commit it; return the new HEAD."""
    path = checkout / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    git(checkout, "add", relpath)
    git(checkout, "commit", "--quiet", "-m", message)
    return git(checkout, "rev-parse", "HEAD")


def push_branch(checkout: Path, project: Project, ref: str | None = None) -> None:
    """Push the checkout's HEAD to the bare repository (the configured branch by default)."""
    git(checkout, "push", "--quiet", "--force", "origin",
        f"HEAD:{ref or 'refs/heads/' + project.branch}")


def pull_request_payload(checkout: Path, project: Project, number: int, head_sha: str,
                         action: str = "opened", head_ref: str = "feature") -> dict:
    """A GitHub `pull_request` event body, in GitHub's shape, for a pull request from the branch
    head_ref of the project's own repository into its configured branch."""
    full_name = project.github
    owner, name = full_name.split("/")
    html_url = f"https://github.com/{full_name}"
    api_url = f"https://api.github.com/repos/{full_name}"
    base_sha = git(checkout, "rev-parse", f"origin/{project.branch}")
    commits = int(git(checkout, "rev-list", "--count", f"{base_sha}..{head_sha}") or 0)
    user = {"login": AUTHOR["username"], "type": "User"}
    repo = {
        "id": int(hashlib.sha1(full_name.encode()).hexdigest()[:8], 16),
        "name": name, "full_name": full_name, "private": True, "fork": False,
        "owner": {"login": owner, "type": "Organization"},
        "html_url": html_url, "url": api_url,
        "clone_url": f"{html_url}.git", "ssh_url": f"git@github.com:{full_name}.git",
        "default_branch": project.branch,
    }
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "action": action,
        "number": number,
        "pull_request": {
            "url": f"{api_url}/pulls/{number}", "number": number,
            "html_url": f"{html_url}/pull/{number}",
            "state": "closed" if action == "closed" else "open",
            "title": git(checkout, "show", "-s", "--format=%s", head_sha),
            "body": "Opened by the Conveyor demo.",
            "user": user,
            "created_at": stamp, "updated_at": stamp,
            "head": {"label": f"{owner}:{head_ref}", "ref": head_ref, "sha": head_sha,
                     "user": user, "repo": repo},
            "base": {"label": f"{owner}:{project.branch}", "ref": project.branch,
                     "sha": base_sha, "user": user, "repo": repo},
            "_links": {"html": {"href": f"{html_url}/pull/{number}"}},
            "merged": False, "draft": False,
            "commits": commits, "additions": 1, "deletions": 0, "changed_files": 1,
        },
        "repository": repo,
        "sender": user,
    }


def open_pull_request(settings: Settings, project: Project, checkout: Path, number: int,
                      action: str = "opened") -> tuple[int, str]:
    """Do what GitHub does when the checkout's HEAD is pushed as pull request #number: keep it
    as refs/pull/<number>/head in the (bare) repository, deliver the signed `pull_request`
    event. Returns the hook's (HTTP status, body)."""
    head = git(checkout, "rev-parse", "HEAD")
    push_branch(checkout, project, f"refs/pull/{number}/head")
    return deliver(settings, "pull_request",
                   pull_request_payload(checkout, project, number, head, action=action))


def wait_for_mail(mail_dir: Path, known: set[Path], timeout: float = 60) -> list[Path]:
    """Mail files (ops/mailsink.py) that are not in `known`, waiting up to timeout for one."""
    deadline = time.monotonic() + timeout
    while True:
        new = sorted(p for p in mail_dir.glob("*.eml") if p not in known) \
            if mail_dir.is_dir() else []
        if new or time.monotonic() > deadline:
            return new
        time.sleep(0.5)


RED_TEST = "tests/test_demo_red.py"
RED_SOURCE = '''"""Added by `make demo-red`: a test that fails, then its fix."""
import snowbird


def test_version_has_three_parts():
    assert len(snowbird.__version__.split(".")) == {parts}
'''


def red_green(settings: Settings, project: Project, mail_dir: Path) -> int:
    """`make demo-red`: push a commit with a failing test, wait for the red build and show the
    mail naming the test; push the fix, wait for the green build and show the 'fixed' mail."""
    from ops.mailsink import read
    from ops.mailsink import text_of

    checkout = ensure_demo_repo(settings, project)
    status = 0
    for parts, message, expected in ((4, "Check that the version has three parts", "FAILURE"),
                                     (3, "Fix the version check: three parts", "SUCCESS")):
        before = git(checkout, "rev-parse", "HEAD")
        commit_file(checkout, RED_TEST, RED_SOURCE.format(parts=parts), message)
        push_branch(checkout, project)
        known = set(mail_dir.glob("*.eml")) if mail_dir.is_dir() else set()
        started = time.monotonic()
        build = push_and_wait(settings, project, checkout, before=before)
        result = result_name(build)
        print(f"\n  build     {project.ci_builder} #{build['number']}: {result}"
              f"  ({build['seconds']:.0f} s from webhook to result)\n  url       {build['url']}")
        mails = wait_for_mail(mail_dir, known, timeout=30)
        if not mails:
            print(f"  mail      none within 30 s in {mail_dir}/ (is the [mail] sink running?)")
            status = 1
        for path in mails:
            mail = read(path)
            print(f"  mail      {path}  ({time.monotonic() - started:.0f} s from webhook)\n"
                  f"  to        {mail['To']}\n  cc        {mail['Cc']}\n"
                  f"  subject   {mail['Subject']}\n")
            print("    " + text_of(mail).replace("\n", "\n    "))
        if result != expected:
            status = 1
    return status
