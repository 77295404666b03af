"""What runs where: the reports hosts send after each dpkg run, and who runs which version.

A host set up by `bin/conveyor host-setup DIST` runs conveyor-report (conveyor/hostreporter.py)
after each dpkg run (an apt hook). It POSTs to the master, with its token
(conveyor/hosttokens.py), one report per distribution it follows:

    {"host": "web-1", "distribution": "snowbird",
     "packages": [{"name": "snowbird", "version": "1.4.0+ci…", "status": "install ok installed"}]}

`parse` checks one (every rule below, with what is wrong); the master keeps the last report of
each host and distribution in `<state_dir>/hosts/reports.json` (`record`). `view` says, per
distribution, which hosts run which version and which lag behind it: a host runs a version only
when dpkg says `install ok installed`; it lags when that version is not the one the distribution
serves now (newer, after a rollback, lags too: the next upgrade takes it back).

Pure: no Buildbot, no network; the files are read and written whole.
"""

from __future__ import annotations

import json
import re
from datetime import UTC
from datetime import datetime
from pathlib import Path

from conveyor import debformats
from conveyor.grammar import DEBIAN_VERSION
from conveyor.grammar import HOST_NAME
from conveyor.grammar import PACKAGE_NAME
from conveyor.hosttokens import hosts_dir
from conveyor.hosttokens import write_private
from conveyor.served import index_components

MAX_REPORT = 64 * 1024  # bytes of one report's body; a host's few packages need far less
MAX_PACKAGES = 200
INSTALLED = "install ok installed"  # dpkg's Status of a package that is there and configured
STATUS = re.compile(r"^[a-z-]{1,20} [a-z-]{1,20} [a-z-]{1,20}$")  # want, error flag, state
KEYS = {"host", "distribution", "packages"}
PACKAGE_KEYS = {"name", "version", "status"}


class ReportError(ValueError):
    """A report that is refused: the message says what is wrong (the 400's body)."""


def reports_file(state_dir: Path) -> Path:
    return hosts_dir(state_dir) / "reports.json"


def parse(body: bytes, allowed: dict[str, set[str] | frozenset[str]]) -> dict:
    """The report in `body`, checked: a JSON object with exactly host, distribution and
    packages; the distribution one of `allowed` (distribution -> its packages), each package
    one of its packages, once, with a Debian version (or none) and a dpkg status."""
    if len(body) > MAX_REPORT:
        raise ReportError(f"the report is larger than {MAX_REPORT} bytes")
    try:
        report = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ReportError(f"the report is not JSON: {exc}") from None
    if not isinstance(report, dict):
        raise ReportError("the report is not a JSON object")
    if set(report) != KEYS:
        missing, unknown = sorted(KEYS - set(report)), sorted(set(report) - KEYS)
        raise ReportError(
            "the report needs exactly host, distribution and packages"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; unknown: {', '.join(map(str, unknown))}" if unknown else "")
        )
    host, dist, packages = report["host"], report["distribution"], report["packages"]
    if not isinstance(host, str) or not HOST_NAME.match(host):
        raise ReportError(f"host: {str(host)[:80]!r} is not a host name")
    if not isinstance(dist, str) or dist not in allowed:
        raise ReportError(
            f"distribution: {str(dist)[:80]!r} is not a distribution of this repository "
            f"(known: {', '.join(sorted(allowed))})"
        )
    if not isinstance(packages, list) or len(packages) > MAX_PACKAGES:
        raise ReportError(f"packages: a list of at most {MAX_PACKAGES} packages, please")
    seen: list[dict] = []
    for n, package in enumerate(packages):
        seen.append(_package(n, package, dist, allowed[dist], {p["name"] for p in seen}))
    return {"host": host, "distribution": dist, "packages": seen}


def _package(n: int, package: object, dist: str, known, seen: set[str]) -> dict:
    where = f"packages[{n}]"
    if not isinstance(package, dict) or set(package) != PACKAGE_KEYS:
        raise ReportError(f"{where}: an object with exactly name, version and status, please")
    name, version, status = package["name"], package["version"], package["status"]
    if not isinstance(name, str) or not PACKAGE_NAME.fullmatch(name):
        raise ReportError(f"{where}: {str(name)[:80]!r} is not a package name")
    if name not in known:
        raise ReportError(
            f"{where}: {name} is not a package of {dist} (its packages: "
            f"{', '.join(sorted(known)) or 'none'})"
        )
    if name in seen:
        raise ReportError(f"{where}: {name} is listed twice")
    if not isinstance(version, str) or len(version) > 200:
        raise ReportError(f"{where}: version: a string of at most 200 characters, please")
    if version and not DEBIAN_VERSION.fullmatch(version):
        raise ReportError(f"{where}: {version[:80]!r} is not a Debian version")
    if not isinstance(status, str) or not STATUS.fullmatch(status):
        raise ReportError(f"{where}: status: {str(status)[:80]!r} is not a dpkg status")
    return {"name": name, "version": version, "status": status}


def load(path: Path) -> dict[str, dict[str, dict]]:
    """host -> distribution -> {"received", "packages"}; {} when there is no file yet."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {}
    hosts = data.get("hosts") if isinstance(data, dict) else None
    if not isinstance(hosts, dict):
        raise ValueError(f"{path} is not a reports file (no 'hosts' table)")
    return hosts


def record(path: Path, report: dict, now: datetime | None = None) -> None:
    """Keep `report` (parsed) as its host's last one for its distribution."""
    hosts = load(path)
    received = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    hosts.setdefault(report["host"], {})[report["distribution"]] = {
        "received": received,
        "packages": report["packages"],
    }
    write_private(path, json.dumps({"hosts": hosts}, indent=1, sort_keys=True) + "\n")


# --- who runs what -----------------------------------------------------------------------------


def served_versions(settings, dist: str, text_of) -> dict[str, list[str]] | None:
    """package -> the versions `dist` serves of it now (the newest of each component: one per
    target release), from its indexes as `text_of(url)` reads them; None when one cannot be
    read."""
    found: dict[str, list[str]] = {}
    for url in index_components(settings, dist).values():
        try:
            text = text_of(url)
        except OSError:
            return None
        if text is None:
            return None
        versions: dict[str, set[str]] = debformats.parse_packages_index(text)
        for package, those in versions.items():
            found.setdefault(package, []).append(debformats.newest(those))
    return found


def view(
    packages_of: dict[str, list[str]],
    reports: dict[str, dict[str, dict]],
    served: dict[str, dict[str, list[str]] | None],
    revoked: set[str] = frozenset(),
) -> list[dict]:
    """Per distribution (in `packages_of`'s order: distribution -> its packages), its hosts:
    each package's version and dpkg status, whether it runs that version (INSTALLED) and
    whether it lags (runs another version than `served`; None when the served versions are
    unknown). Hosts whose token is `revoked` are listed as such, with their last report."""
    result = []
    for dist, names in packages_of.items():
        now_served = served.get(dist)
        hosts = []
        for host in sorted(reports):
            report = reports[host].get(dist)
            if report is None:
                continue
            by_name = {p["name"]: p for p in report.get("packages") or []}
            rows = [_row(name, by_name.get(name), now_served) for name in names]
            lags = [r["lags"] for r in rows]
            hosts.append(
                {
                    "host": host,
                    "received": report.get("received"),
                    "revoked": host in revoked,
                    "packages": rows,
                    "lags": True if any(lags) else (None if None in lags else False),
                }
            )
        result.append(
            {
                "distribution": dist,
                "served": {name: (now_served or {}).get(name, []) for name in names}
                if now_served is not None
                else None,
                "hosts": hosts,
                "lagging": [h["host"] for h in hosts if h["lags"]],
            }
        )
    return result


def _row(name: str, reported: dict | None, served: dict[str, list[str]] | None) -> dict:
    status = reported["status"] if reported else "not reported"
    version = (reported or {}).get("version") or None
    running = status == INSTALLED and version is not None
    if not running:
        lags: bool | None = False
    elif served is None:
        lags = None
    else:
        lags = version not in served.get(name, [])
    return {
        "name": name,
        "version": version if running else None,
        "status": status,
        "running": running,
        "served": None if served is None else served.get(name, []),
        "lags": lags,
    }


def packages_by_distribution(settings) -> dict[str, list[str]]:
    """distribution -> the packages of the projects on its path, in the settings' order."""
    return {
        dist: [p for project in settings.projects if dist in project.path for p in project.packages]
        for dist in settings.distributions
    }
