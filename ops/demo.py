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


def now() -> str:
    return datetime.now(timezone.utc).strftime("%H:%M:%S")
