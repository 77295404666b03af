"""The release board's data: what runs where, what waits, and how the CI builds have gone.

Pure functions, no Buildbot inside: the web page (master/board/) and `bin/conveyor status`
(ops/cli.py) both call `collect()` with a `Source`, which reads

- the repository as apt sees it: each distribution's `Packages` index (the version, and the
  `Conveyor-Commit` and `Conveyor-Build` fields every CI package carries) and its history
  (`<repository url>history/<distribution>.jsonl`: who put which version there, when, by which
  build);
- Buildbot's data API: the changes (one per pushed commit, with author and message) and the
  CI builds with their properties and test results.

The commits waiting between two distributions are the pushed commits after the one recorded in
the older version's package, up to the one recorded in the newer's: the same two
`Conveyor-Commit`s the release mail starts from, looked up among the changes Buildbot already
holds (no clone, no network at page time).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from typing import Any
from typing import Protocol

from conveyor import approvals
from conveyor import buildprops
from conveyor import debformats
from conveyor import release
from conveyor.served import freeze_url
from conveyor.served import history_url
from conveyor.served import read_index
from conveyor.served import requests_url
from conveyor.settings import Project
from conveyor.settings import Settings

BUILDS = 30  # CI builds shown per project
CHANGES = 500  # newest changes read per project: the commits waiting are among them
WAITING_LIMIT = 50  # commits listed per step at most
NO_BASE_LIMIT = 20  # commits listed when the next distribution has no version yet
RECENT = 20  # builds of each repository builder read for what needs attention
# the repository's builders (master/builders.py), whose mails and failures the board lists
REPOSITORY_BUILDERS = ("publish", "promote", "rollback", "freeze")
FAILED = (2, 4)  # FAILURE, EXCEPTION (conveyor.results)


class Source(Protocol):
    """Where collect() reads from (ops/cli.py: HTTP and REST; master/board: the data API)."""

    def text(self, url: str) -> str | None:
        """The body at `url`, None when it does not exist (404)."""

    def changes(self, project: Project) -> list[dict]:
        """The project's changes (data API dicts), any order."""

    def builds(self, project: Project, limit: int) -> list[dict]:
        """The newest CI builds of the project, newest first, each with `properties` as
        {name: value} and `failing_tests` as [names] (from its test results; [] if none
        failed, None if it recorded no test results)."""

    def recent(self, builder: str, limit: int) -> list[dict]:
        """The newest builds of a builder, newest first, each with `properties` as
        {name: value}; none if there is no such builder."""


# --- small things -----------------------------------------------------------------------------


def commit_url(github: str, sha: str | None) -> str | None:
    return f"https://github.com/{github}/commit/{sha}" if sha else None


def parse_when(value: Any) -> datetime | None:
    """A history timestamp (ISO 8601) or epoch seconds as an aware datetime."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(value, tz=UTC)
        when = datetime.fromisoformat(str(value))
    except (ValueError, OverflowError, OSError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def ago(when: datetime | None, now: datetime) -> str:
    """'just now', '5 min ago', '3 h ago', '2 days ago'."""
    if when is None:
        return ""
    seconds = int((now - when).total_seconds())
    if seconds < 60:
        return "just now"
    for size, unit in ((86400, "day"), (3600, "h"), (60, "min")):
        if seconds >= size:
            count = seconds // size
            name = unit + ("s" if unit == "day" and count != 1 else "")
            return f"{count} {name} ago"
    return ""  # unreachable


def build_number(url: str | None) -> int | None:
    """The build number at the end of a build URL (…/builders/1/builds/7 → 7)."""
    tail = (url or "").rstrip("/").rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


def subject(comments: str | None) -> str:
    return ((comments or "").strip().splitlines() or [""])[0]


# --- the grid ---------------------------------------------------------------------------------


def cell(
    project: Project,
    package: str,
    dist: str,
    stanzas: list[dict] | None,
    history: list[dict],
    now: datetime,
) -> dict:
    """What `dist` holds of `package`: the newest version its index lists (what apt installs),
    that package's commit and CI build, and the history entry that put it there."""
    mine = {s["Version"]: s for s in stanzas or [] if s.get("Package") == package}
    version = debformats.newest(mine)
    result = {
        "distribution": dist,
        "package": package,
        "version": version,
        "versions_kept": len(mine),
        "reachable": stanzas is not None,
        "commit": None,
        "commit_url": None,
        "build_url": None,
        "build_number": None,
        "who": None,
        "when": None,
        "ago": "",
        "action": None,
        "by_build": None,
        "provenance": None,
    }
    if version is None:
        return result
    stanza = mine[version]
    commit = stanza.get("Conveyor-Commit") or None
    build = stanza.get("Conveyor-Build") or None
    result.update(
        commit=commit,
        commit_url=commit_url(project.github, commit),
        build_url=build,
        build_number=build_number(build),
    )
    entry = next(
        (
            e
            for e in reversed(history)
            if e.get("version") == version and package in (e.get("package") or package).split(",")
        ),
        None,
    )
    if entry is not None:
        when = parse_when(entry.get("when"))
        result.update(
            who=entry.get("who") or None,
            when=entry.get("when"),
            ago=ago(when, now),
            action=entry.get("action"),
            by_build=entry.get("build"),
            provenance=entry.get("provenance"),  # "signed" or "verified" (conveyor/provenance.py)
        )
    return result


def waiting_commits(
    changes: list[dict], github: str, branch: str, old: str | None, new: str | None
) -> dict:
    """The pushed commits after `old` up to `new` (both Conveyor-Commits), oldest first, each
    {revision, short, author, subject, url}, from the project's changes on its branch (pull
    requests and other branches left out). `known` is False when `new` is not among the
    changes (pushed before the master's database began, say): then the list is empty."""
    pushed = sorted(
        (
            c
            for c in changes
            if (c.get("branch") or "") == branch and (c.get("category") or "") != "pull"
        ),
        key=lambda c: c.get("changeid") or 0,
    )
    result = {
        "from_commit": old,
        "to_commit": new,
        "known": True,
        "commits": [],
        "truncated": False,
    }
    if not new or new == old:
        return result
    ends = [i for i, c in enumerate(pushed) if c.get("revision") == new]
    if not ends:
        result["known"] = False
        return result
    end = ends[-1]
    starts = [i for i, c in enumerate(pushed[:end]) if old and c.get("revision") == old]
    start = starts[-1] + 1 if starts else max(0, end + 1 - NO_BASE_LIMIT)
    if old and not starts:
        result["known"] = False  # the older commit is not a change here: the last few only
    seen: set[str] = set()
    commits = []
    for change in pushed[start : end + 1]:
        revision = change.get("revision") or ""
        if not revision or revision in seen:
            continue
        seen.add(revision)
        commits.append(
            {
                "revision": revision,
                "short": revision[:7],
                "author": change.get("author") or "",
                "subject": subject(change.get("comments")),
                "url": commit_url(github, revision),
            }
        )
    result["truncated"] = len(commits) > WAITING_LIMIT
    result["commits"] = commits[-WAITING_LIMIT:]
    return result


def paths(
    settings: Settings,
    indexes: dict[str, list[dict] | None],
    histories: dict[str, list[dict]],
    changes: dict[str, list[dict]],
    now: datetime,
) -> list[dict]:
    """For each project and package: its cells along the path, and for each adjacent pair
    (source → target) the commits waiting in the source."""
    result = []
    for project in settings.projects:
        for package in project.packages:
            cells = [
                cell(project, package, dist, indexes.get(dist), histories.get(dist, []), now)
                for dist in project.path
            ]
            steps = []
            for source, target in zip(cells, cells[1:], strict=False):
                waiting = waiting_commits(
                    changes.get(project.name, []),
                    project.github,
                    project.branch,
                    target["commit"],
                    source["commit"],
                )
                newer = source["version"] is not None and (
                    target["version"] is None
                    or debformats.compare_versions(source["version"], target["version"]) > 0
                )
                steps.append(
                    {
                        "source": source["distribution"],
                        "target": target["distribution"],
                        "version": source["version"],
                        "previous": target["version"],
                        "promotable": newer,
                        "production": target is cells[-1],
                        **waiting,
                    }
                )
            result.append(
                {
                    "project": project.name,
                    "github": project.github,
                    "package": package,
                    "path": list(project.path),
                    "cells": cells,
                    "steps": steps,
                }
            )
    return result


# --- CI builds: results, coverage, failing since ----------------------------------------------


def failing_since(builds: list[dict], test: str) -> int | None:
    """The number of the first build of the current run in which `test` fails. `builds` are
    newest first, each with `number` and `failing_tests` (names, or None: no test results, e.g.
    the build stopped before the tests; such builds neither end nor extend the run)."""
    since = None
    for build in builds:
        failing = build.get("failing_tests")
        if failing is None:
            continue
        if test not in failing:
            break
        since = build["number"]
    return since


def trend_svg(
    points: list[tuple[int, float | None]],
    width: int = 320,
    height: int = 64,
    threshold: float | None = None,
) -> str:
    """Coverage over builds as an inline SVG: a line through (build number, percent), oldest
    first, on a 0-100 % scale; builds without a figure are skipped; a dashed line marks the
    threshold. Each point has a <title> (build and percent)."""
    known = [(n, float(p)) for n, p in points if p is not None]
    pad = 4
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="conveyor-trend" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="coverage trend">'
    ]
    parts.append(
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fafafa" stroke="#ddd"/>'
    )

    def y(percent: float) -> float:
        return round(pad + (height - 2 * pad) * (1 - max(0.0, min(100.0, percent)) / 100), 1)

    if threshold is not None:
        parts.append(
            f'<line x1="0" x2="{width}" y1="{y(threshold)}" y2="{y(threshold)}" '
            'stroke="#c62828" stroke-dasharray="4 3" stroke-width="1"/>'
        )
    if known:
        span = max(1, len(known) - 1)
        xy = [
            (round(pad + (width - 2 * pad) * i / span, 1), y(p)) for i, (_, p) in enumerate(known)
        ]
        if len(known) > 1:
            parts.append(
                '<polyline fill="none" stroke="#1565c0" stroke-width="2" points="'
                + " ".join(f"{a},{b}" for a, b in xy)
                + '"/>'
            )
        for (a, b), (number, percent) in zip(xy, known, strict=True):
            parts.append(
                f'<circle cx="{a}" cy="{b}" r="2.5" fill="#1565c0"><title>'
                f"#{int(number)}: {percent:g}%</title></circle>"
            )
    else:
        parts.append(
            f'<text x="{pad + 4}" y="{height / 2 + 4}" font-size="12" fill="#777">'
            "no coverage yet</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def ci_summary(project: Project, builds: list[dict], build_url) -> dict:
    """The CI builds of a project (newest first) as the board shows them: a row per build,
    the coverage trend, and the failing tests of the newest red build, each with its failure
    text and the build it has been failing since."""
    rows = []
    for build in builds:
        props = build.get("properties") or {}
        rows.append(
            {
                "number": build["number"],
                "results": build.get("results"),
                "complete": build.get("complete", True),
                "url": build_url(build),
                "revision": props.get("got_revision") or props.get("revision"),
                "tests_passed": props.get(buildprops.TESTS_PASSED),
                "tests_failed": props.get(buildprops.TESTS_FAILED),
                "coverage": props.get(buildprops.COVERAGE_PERCENT),
                # each target release's tests and coverage: {release: {passed, failed, coverage}}
                "targets": props.get(buildprops.BY_TARGET) or {},
                "version": props.get(buildprops.PACKAGE_VERSION),
                "started_at": build.get("started_at"),
            }
        )
    thresholds = [(b.get("properties") or {}).get(buildprops.COVERAGE_THRESHOLD) for b in builds]
    threshold = next((t for t in thresholds if t is not None), None)
    red = next((b for b in builds if b.get("complete", True) and b.get("failing_tests")), None)
    failing = []
    if red is not None:
        texts = {
            f.get("name"): f.get("text")
            for f in (red.get("properties") or {}).get(buildprops.TESTS_FAILURES) or []
            if isinstance(f, dict)
        }
        older = [b for b in builds if b["number"] <= red["number"]]
        urls = {r["number"]: r["url"] for r in rows}
        failing = []
        for name in red["failing_tests"]:
            since = failing_since(older, name)
            failing.append(
                {
                    "name": name,
                    "text": texts.get(name) or "",
                    "since": since,
                    "since_url": urls.get(since),
                }
            )
    coverage = [(r["number"], r["coverage"]) for r in reversed(rows)]
    return {
        "project": project.name,
        "builder": project.ci_builder,
        "builds": rows,
        "trend_svg": trend_svg(coverage, threshold=threshold),
        "threshold": threshold,
        "latest_coverage": next((c for _, c in reversed(coverage) if c is not None), None),
        "red_build": red["number"] if red is not None else None,
        "red_build_url": build_url(red) if red is not None else None,
        "failing": failing,
    }


def attention(publishes: list[dict], others: list[dict], build_url) -> list[dict]:
    """What an admin must look at, newest first: each publish that failed for good (after its
    own retries of transient faults) and that no later publish of the same project into the
    same distribution has made good, and each build whose mail could not be sent (property
    `mail_failed`). Builds newest first, with `properties` as {name: value}."""
    items: list[dict] = []
    made_good: set[tuple] = set()
    for build in publishes:
        props = build.get("properties") or {}
        key = (props.get("project"), props.get("distribution"))
        if not build.get("complete", True) or build.get("results") is None:
            continue
        if build["results"] not in FAILED:
            made_good.add(key)
        elif key not in made_good:
            items.append(
                {
                    "kind": "publish failed",
                    "when": build.get("complete_at"),
                    "url": build_url(build),
                    "text": f"{props.get('project') or '?'} "
                    f"{props.get(buildprops.PACKAGE_VERSION) or ''} was not "
                    "published "
                    f"into {props.get('distribution') or '?'}: "
                    f"{build.get('state_string') or 'failed'}",
                }
            )
    for build in [*publishes, *others]:
        problem = (build.get("properties") or {}).get(buildprops.MAIL_FAILED)
        if problem:
            items.append(
                {
                    "kind": "mail not sent",
                    "when": build.get("complete_at"),
                    "url": build_url(build),
                    "text": str(problem),
                }
            )
    for item in items:
        when = parse_when(item["when"])
        item["when"] = when.isoformat(timespec="seconds") if when else None
    return sorted(items, key=lambda item: item["when"] or "", reverse=True)


# --- everything -------------------------------------------------------------------------------


@dataclass
class Board:
    paths: list[dict]
    histories: dict[str, list[dict]]
    ci: list[dict]
    generated: str
    freezes: dict[str, dict] = field(default_factory=dict)  # the frozen distributions
    attention: list[dict] = field(default_factory=list)  # see attention()
    approvals: dict[str, dict] = field(default_factory=dict)  # conveyor.approvals.view

    def as_json(self) -> dict:
        return {
            "generated": self.generated,
            "paths": self.paths,
            "histories": self.histories,
            "frozen": self.freezes,
            "attention": self.attention,
            "approvals": self.approvals,
            "ci": [{k: v for k, v in c.items() if k != "trend_svg"} for c in self.ci],
        }


def collect(
    settings: Settings,
    source: Source,
    build_url,
    now: datetime | None = None,
    with_builds: bool = True,
) -> Board:
    """Read everything the board shows through `source`; `build_url(build)` makes a build's
    link in the web UI."""
    now = now or datetime.now(UTC)
    indexes: dict[str, list[dict] | None] = {}
    histories: dict[str, list[dict]] = {}
    freezes: dict[str, dict] = {}
    for dist in settings.distributions:
        indexes[dist] = read_index(settings, dist, source.text)
        histories[dist] = release.parse_history(source.text(history_url(settings, dist)) or "")
        state = release.parse_freeze(source.text(freeze_url(settings, dist)))
        if state and state.get("frozen"):
            freezes[dist] = state
    changes = {p.name: source.changes(p) for p in settings.projects}
    ci_builds = {
        p.name: source.builds(p, BUILDS) if with_builds else source.recent(p.ci_builder, RECENT)
        for p in settings.projects
    }
    ci = (
        [ci_summary(p, ci_builds[p.name], build_url) for p in settings.projects]
        if with_builds
        else []
    )
    repository = {name: source.recent(name, RECENT) for name in REPOSITORY_BUILDERS}
    problems = attention(
        repository["publish"],
        [b for name, builds in repository.items() if name != "publish" for b in builds]
        + [b for builds in ci_builds.values() for b in builds],
        build_url,
    )
    for entries in histories.values():
        for entry in entries:
            entry["ago"] = ago(parse_when(entry.get("when")), now)
    result = Board(
        paths(settings, indexes, histories, changes, now),
        histories,
        ci,
        now.isoformat(timespec="seconds"),
        freezes,
        problems,
    )
    for dist in settings.approvals.needed:  # the two-person rule's requests
        events = approvals.parse_log(source.text(requests_url(settings, dist)))
        result.approvals[dist] = {
            **approvals.view(events, now),
            "needed": settings.approvals.of(dist),
        }
    for path in result.paths:
        for c in path["cells"]:
            c["frozen"] = freezes.get(c["distribution"])
        for step in path["steps"]:
            step["frozen"] = freezes.get(step["target"])
            step["approvals"] = result.approvals.get(step["target"])
    return result
