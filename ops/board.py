"""`bin/conveyor status`: the release board in a terminal, or as JSON for scripts (--json).

The same figures as the web page (conveyor/board.py computes both), read anonymously: the
repository's indexes and history over HTTP, Buildbot's changes, builds and test results over
its REST API.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request

from conveyor import board
from conveyor.settings import Project
from conveyor.settings import Settings
from ops import hostreports
from ops.api import UNREACHABLE
from ops.api import ApiError
from ops.api import Master
from ops.api import fetch_text
from ops.api import reader


class RestSource:
    """conveyor.board.Source over HTTP and the master's REST API."""

    def __init__(self, master: Master):
        self.master = master

    def text(self, url: str) -> str | None:
        return fetch_text(url)

    def changes(self, project: Project) -> list[dict]:
        """The project's changes; none (said on stderr) when the master cannot be reached:
        the versions still come from the repository."""
        name = urllib.parse.quote(project.github)
        try:
            return self.master.get(f"changes?project={name}&order=-changeid&limit={board.CHANGES}")[
                "changes"
            ]
        except ApiError as exc:
            if exc.code != UNREACHABLE:
                raise
            print(f"conveyor: no commits listed: {exc}", file=sys.stderr)
            return []

    def recent(self, builder: str, limit: int) -> list[dict]:
        """The builder's newest builds; none (said on stderr) when the master cannot be
        reached."""
        try:
            found = self.master.get(f"builders?name={urllib.parse.quote(builder)}")
            if not found["builders"]:
                return []
            builds = self.master.get(
                f"builders/{found['builders'][0]['builderid']}/builds"
                f"?order=-number&limit={limit}&property=*"
            )["builds"]
        except ApiError as exc:
            if exc.code != UNREACHABLE:
                raise
            print(f"conveyor: no builds of {builder} read: {exc}", file=sys.stderr)
            return []
        for build in builds:
            build["properties"] = {
                name: value for name, (value, _source) in (build.get("properties") or {}).items()
            }
        return builds

    def builds(self, project: Project, limit: int) -> list[dict]:
        builds = self.recent(project.ci_builder, limit)
        for build in builds:
            build["failing_tests"] = self.failing_tests(build["buildid"])
        return builds

    def failing_tests(self, buildid: int) -> list[str] | None:
        sets = self.master.get(f"builds/{buildid}/test_result_sets")["test_result_sets"]
        if not sets:
            return None
        names: list[str] = []
        for result_set in sets:
            if result_set.get("category") == "pass_fail":
                names += [
                    r["test_name"]
                    for r in self.master.get(
                        f"test_result_sets/{result_set['test_result_setid']}/results?value=0"
                    )["test_results"]
                    if r.get("test_name")
                ]
        return names


def collect(settings: Settings, with_builds: bool = True) -> board.Board:
    master = reader(settings)

    def build_url(build: dict) -> str:
        return f"{settings.web_url}#/builders/{build['builderid']}/builds/{build['number']}"

    return board.collect(settings, RestSource(master), build_url, with_builds=with_builds)


def print_status(data: board.Board) -> None:
    """Which version each distribution has (with its commit, build, who and when), then the
    commits waiting at each step of each path."""
    rows = [
        (
            c["package"],
            c["distribution"],
            c["version"] or "-",
            (c["commit"] or "")[:7],
            f"#{c['build_number']}" if c["build_number"] else "",
            " ".join(
                x for x in (c["action"] or "", f"by {c['who']}" if c["who"] else "", c["ago"]) if x
            ),
        )
        for path in data.paths
        for c in path["cells"]
    ]
    head = ("package", "distribution", "version", "commit", "build", "put there")
    width = [max(len(r[i]) for r in rows + [head]) for i in range(5)]
    for row in [head] + rows:
        print(
            ("  ".join(f"{v:{width[i]}}" for i, v in enumerate(row[:5])) + "  " + row[5]).rstrip()
        )
    for item in data.attention:
        print(f"\n{item['kind'].upper()} ({item['when'] or '?'}): {item['text']}\n  {item['url']}")
    for dist, state in data.freezes.items():
        print(
            f"\n{dist} is FROZEN: {state.get('reason')} (by {state.get('who') or '?'}, "
            f"{state.get('when')}): no promotion into it; rollback still works"
        )
    for path in data.paths:
        for step in path["steps"]:
            print(f"\n{path['package']}: {step['source']} → {step['target']}: ", end="")
            if step.get("frozen"):
                print(f"{step['target']} is frozen")
            elif not step["version"]:
                print(f"nothing in {step['source']}")
            elif not step["promotable"]:
                print(f"nothing newer waits ({step['target']} has {step['previous']})")
            else:
                note = "" if step["known"] else " (as far as the master's changes go)"
                print(f"{step['version']} waits, {len(step['commits'])} commit(s){note}")
                for commit in step["commits"]:
                    print(f"  {commit['short']}  {commit['subject']}  ({commit['author']})")
            pending = (step.get("approvals") or {}).get("pending")
            if pending:  # conveyor/approvals.py
                print(
                    f"  request {pending['request']} ({pending['state']}): "
                    f"{pending['version']}, asked by {pending['requested_by']}; approved by "
                    f"{', '.join(pending['approved_by']) or 'nobody yet'} "
                    f"({len(pending['approved_by'])} of {pending['needed']}); "
                    f"expires {pending['expires']}"
                )


def status(settings: Settings, as_json: bool = False) -> int:
    data = collect(settings, with_builds=as_json)
    hosts = hostreports.read_view(settings)  # what runs where (ops/hostreports.py)
    if as_json:
        print(json.dumps({**data.as_json(), "hosts": hosts}, indent=1, default=str))
    else:
        print_status(data)
        hostreports.print_hosts(hosts)
    return 0
