"""A stand-in for github.com: what GitHub sends and keeps, for the demo, the tests and bench/.

A local bare git repository plays the project's GitHub repository. This module writes the
events GitHub would send for it (`push`, `pull_request`, in GitHub's shape), signs them as
GitHub does (X-Hub-Signature-256, HMAC-SHA256 with the webhook secret), delivers them to the
change hook, and waits for the build a push starts (through ops.api).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC
from datetime import datetime
from pathlib import Path

from conveyor.settings import WEBHOOK_SECRET
from conveyor.settings import Project
from conveyor.settings import Settings
from ops.api import last_build_number
from ops.api import wait_for_build
from ops.setup import run
from ops.setup import say

AUTHOR = {"name": "Ada Sprintly", "email": "ada@sprintly.example", "username": "ada-sprintly"}
ZERO = "0" * 40


def git(checkout: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": AUTHOR["name"],
        "GIT_AUTHOR_EMAIL": AUTHOR["email"],
        "GIT_COMMITTER_NAME": AUTHOR["name"],
        "GIT_COMMITTER_EMAIL": AUTHOR["email"],
    }
    return run(["git", "-C", str(checkout), *args], env=env).stdout.strip()


def commit_dict(checkout: Path, sha: str, full_name: str) -> dict:
    fmt = "%H%x00%T%x00%an%x00%ae%x00%cn%x00%ce%x00%cI%x00%B"
    (sha, tree, an, ae, cn, ce, when, message) = git(
        checkout, "show", "-s", f"--format={fmt}", sha
    ).split("\x00", 7)
    status = git(checkout, "diff-tree", "--no-commit-id", "--name-status", "-r", "--root", sha)
    files: dict[str, list[str]] = {"A": [], "D": [], "M": []}
    for line in status.splitlines():
        kind, _, name = line.partition("\t")
        files.setdefault(kind[:1], []).append(name)
    return {
        "id": sha,
        "tree_id": tree,
        "distinct": True,
        "message": message.strip(),
        "timestamp": when,
        "url": f"https://github.com/{full_name}/commit/{sha}",
        "author": {"name": an, "email": ae, "username": AUTHOR["username"]},
        "committer": {"name": cn, "email": ce, "username": AUTHOR["username"]},
        "added": files["A"],
        "removed": files["D"],
        "modified": files["M"],
    }


def push_payload(checkout: Path, project: Project, before: str, after: str) -> dict:
    """A GitHub `push` event body for the commits before..after, in GitHub's shape (a webhook's
    push event lists up to 2,048 commits)."""
    full_name = project.github
    owner, name = full_name.split("/")
    revs = git(
        checkout,
        "rev-list",
        "--reverse",
        "--max-count=2048",
        after if before == ZERO else f"{before}..{after}",
    ).split()
    commits = [commit_dict(checkout, sha, full_name) for sha in revs]
    html_url = f"https://github.com/{full_name}"
    return {
        "ref": f"refs/heads/{project.branch}",
        "before": before,
        "after": after,
        "created": before == ZERO,
        "deleted": False,
        "forced": False,
        "base_ref": None,
        "compare": f"{html_url}/compare/{before[:12]}...{after[:12]}",
        "commits": commits,
        "head_commit": commits[-1] if commits else None,
        "repository": {
            "id": int(hashlib.sha1(full_name.encode()).hexdigest()[:8], 16),
            "name": name,
            "full_name": full_name,
            "private": True,
            "owner": {"name": owner, "login": owner},
            "html_url": html_url,
            "url": html_url,
            "clone_url": f"{html_url}.git",
            "ssh_url": f"git@github.com:{full_name}.git",
            "default_branch": project.branch,
            "master_branch": project.branch,
        },
        "pusher": {"name": AUTHOR["username"], "email": AUTHOR["email"]},
        "sender": {"login": AUTHOR["username"], "type": "User"},
    }


def sign(secret: str, body: bytes) -> dict[str, str]:
    """The signature headers GitHub sends with a webhook secret."""
    return {
        "X-Hub-Signature-256": "sha256="
        + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        "X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
    }


def deliver(
    settings: Settings,
    event: str,
    payload: dict | bytes,
    secret: str | None = None,
    headers: dict | None = None,
) -> tuple[int, str]:
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
    request = urllib.request.Request(
        f"{settings.web_url}change_hook/github",
        data=body,
        headers={k: v for k, v in all_headers.items() if v},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def push_and_wait(
    settings: Settings, project: Project, checkout: Path, before: str = ZERO, progress=None
) -> dict:
    """Deliver a push of the checkout's HEAD and wait for the build it starts (printing each
    step as it finishes, with a progress printer: ops/progress.StepPrinter)."""
    after = git(checkout, "rev-parse", "HEAD")
    number = last_build_number(settings, project.ci_builder)
    started = time.monotonic()
    status, body = deliver(settings, "push", push_payload(checkout, project, before, after))
    if status not in (200, 202):
        raise RuntimeError(f"the change hook refused the push: {status} {body}")
    say(f"delivered push {after[:12]} to {settings.web_url}change_hook/github ({status} {body})")
    build = wait_for_build(settings, project.ci_builder, number, progress=progress)
    build["seconds"] = time.monotonic() - started
    build["revision"] = after
    return build


# --- pull requests ------------------------------------------------------------------------


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
    git(
        checkout,
        "push",
        "--quiet",
        "--force",
        "origin",
        f"HEAD:{ref or 'refs/heads/' + project.branch}",
    )


def pull_request_payload(
    checkout: Path,
    project: Project,
    number: int,
    head_sha: str,
    action: str = "opened",
    head_ref: str = "feature",
) -> dict:
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
        "name": name,
        "full_name": full_name,
        "private": True,
        "fork": False,
        "owner": {"login": owner, "type": "Organization"},
        "html_url": html_url,
        "url": api_url,
        "clone_url": f"{html_url}.git",
        "ssh_url": f"git@github.com:{full_name}.git",
        "default_branch": project.branch,
    }
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "action": action,
        "number": number,
        "pull_request": {
            "url": f"{api_url}/pulls/{number}",
            "number": number,
            "html_url": f"{html_url}/pull/{number}",
            "state": "closed" if action == "closed" else "open",
            "title": git(checkout, "show", "-s", "--format=%s", head_sha),
            "body": "Opened by the Conveyor demo.",
            "user": user,
            "created_at": stamp,
            "updated_at": stamp,
            "head": {
                "label": f"{owner}:{head_ref}",
                "ref": head_ref,
                "sha": head_sha,
                "user": user,
                "repo": repo,
            },
            "base": {
                "label": f"{owner}:{project.branch}",
                "ref": project.branch,
                "sha": base_sha,
                "user": user,
                "repo": repo,
            },
            "_links": {"html": {"href": f"{html_url}/pull/{number}"}},
            "merged": False,
            "draft": False,
            "commits": commits,
            "additions": 1,
            "deletions": 0,
            "changed_files": 1,
        },
        "repository": repo,
        "sender": user,
    }


def open_pull_request(
    settings: Settings, project: Project, checkout: Path, number: int, action: str = "opened"
) -> tuple[int, str]:
    """Do what GitHub does when the checkout's HEAD is pushed as pull request #number: keep it
    as refs/pull/<number>/head in the (bare) repository, deliver the signed `pull_request`
    event. Returns the hook's (HTTP status, body)."""
    head = git(checkout, "rev-parse", "HEAD")
    push_branch(checkout, project, f"refs/pull/{number}/head")
    return deliver(
        settings,
        "pull_request",
        pull_request_payload(checkout, project, number, head, action=action),
    )


def pull_request_with_file(
    settings: Settings,
    project: Project,
    checkout: Path,
    number: int,
    branch: str,
    relpath: str,
    content: str,
    message: str,
) -> tuple[str, int, str]:
    """A developer's pull request: on a new branch of the checkout, one commit writing one file,
    opened as pull request #number (see open_pull_request); the checkout is back on the
    project's branch afterwards. Returns (head commit, HTTP status, body of the hook's answer)."""
    git(checkout, "checkout", "--quiet", "-b", branch)
    try:
        head = commit_file(checkout, relpath, content, message)
        status, body = open_pull_request(settings, project, checkout, number)
    finally:
        git(checkout, "checkout", "--quiet", project.branch)
    return head, status, body
