"""conveyor — promote, roll back and look at the apt repository from a terminal.

    conveyor promote PACKAGE FROM TO [--version V]   e.g. conveyor promote snowbird snowbird-staging snowbird
    conveyor rollback DIST [--to STATE]             STATE: a history entry number or snapshot name
    conveyor status                                 which version of each package each distribution has
    conveyor history DIST                           every state DIST has had

promote and rollback log in to the master's REST API, force the build, follow it to its end and
print its result and URL. Credentials come from CONVEYOR_USER and CONVEYOR_PASSWORD, or from the
file named by CONVEYOR_CREDENTIALS (one line `user:password`; default: the demo releaser's,
var/secrets/cli-credentials) — never from the command line.

Exit codes: 0 done (or nothing to do), 1 the build failed or a rule refused it, 2 the request was
refused before any build (invalid input, a rule of the path), 3 not allowed (log-in or role),
4 the master or repository could not be reached.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from conveyor import release
from conveyor import settings as settings_module
from conveyor.results import result_name
from ops.api import FAILED
from ops.api import FORBIDDEN
from ops.api import OK
from ops.api import REFUSED
from ops.api import UNREACHABLE
from ops.api import ApiError
from ops.api import Master
from ops.setup import CLI_CREDENTIALS
from ops.setup import ROOT

def credentials(settings: settings_module.Settings) -> tuple[str, str]:
    user, password = os.environ.get("CONVEYOR_USER"), os.environ.get("CONVEYOR_PASSWORD")
    if user and password:
        return user, password
    file = Path(os.environ.get("CONVEYOR_CREDENTIALS") or settings.secrets_dir / CLI_CREDENTIALS)
    try:
        user, _, password = file.read_text().strip().partition(":")
    except OSError:
        raise ApiError(f"no credentials: set CONVEYOR_USER and CONVEYOR_PASSWORD, or "
                       f"CONVEYOR_CREDENTIALS to a file with user:password ({file} is not "
                       "readable)", FORBIDDEN) from None
    return user, password

def run_build(settings, scheduler: str, builder: str, **params) -> int:
    master = Master(settings.web_url)
    master.login(*credentials(settings))
    started = time.monotonic()
    build = master.follow(master.force(scheduler, builder, **params))
    result = result_name(build["results"])
    for step in build["steps"]:
        if step["results"] not in (None, 0, 3) or step["name"] in ("check", "verify", "history"):
            print(f"  {step['name']}: {step['state_string']}")
    print(f"{builder} #{build['number']}: {result} in {time.monotonic() - started:.1f} s")
    print(build["url"])
    return OK if result in ("SUCCESS", "WARNINGS") else FAILED

def fetch_text(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.read().decode()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise ApiError(f"{url}: {exc.code}", UNREACHABLE) from None
    except urllib.error.URLError as exc:
        raise ApiError(f"cannot reach {url}: {exc.reason}", UNREACHABLE) from None

def status(settings) -> int:
    repo = settings.repository
    arch = next((a for a in repo.architectures if a != "all"), repo.architectures[0])
    rows = []
    for dist in settings.distributions:
        text = fetch_text(f"{repo.url}dists/{dist}/{repo.component}/binary-{arch}/Packages")
        listed = release.parse_packages_index(text or "")
        for package in settings.packages:
            project = settings.project_of_package(package)
            if dist in project.path:
                versions = listed.get(package, set())
                rows.append((package, dist, release.newest(versions) or "-",
                             f"{len(versions)} version(s)"))
    width = [max(len(r[i]) for r in rows + [("package", "distribution", "newest", "")])
             for i in range(3)]
    print(f"{'package':{width[0]}}  {'distribution':{width[1]}}  {'newest':{width[2]}}  kept")
    for row in rows:
        print(f"{row[0]:{width[0]}}  {row[1]:{width[1]}}  {row[2]:{width[2]}}  {row[3]}")
    return OK

def history(settings, dist: str) -> int:
    if dist not in settings.distributions:
        raise ApiError(f"{dist!r} is not a distribution (known: "
                       f"{', '.join(settings.distributions)})", REFUSED)
    entries = release.parse_history(
        fetch_text(f"{settings.repository.url}history/{dist}.jsonl") or "")
    for entry in entries:
        current = " <- published" if entry is entries[-1] else ""
        what = f"{entry.get('package') or ''} {entry.get('version') or ''}".strip() or "(empty)"
        origin = f" from {entry['from']}" if entry.get("from") else ""
        print(f"{entry['n']:>3}  {entry['when']}  {entry['action']:<8}  {what}{origin}  "
              f"by {entry.get('who') or '?'}  {entry['snapshot']}{current}")
    return OK

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="conveyor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", default=os.environ.get("CONVEYOR_SETTINGS",
                                                             str(ROOT / "pipeline.toml")))
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("promote", help="promote PACKAGE FROM TO [--version V]")
    p.add_argument("package")
    p.add_argument("source", metavar="FROM")
    p.add_argument("target", metavar="TO")
    p.add_argument("--version", default="")
    p = sub.add_parser("rollback", help="rollback DIST [--to STATE]")
    p.add_argument("distribution")
    p.add_argument("--to", default="", dest="state")
    sub.add_parser("status", help="which version of each package each distribution has")
    p = sub.add_parser("history", help="history DIST")
    p.add_argument("distribution")
    args = parser.parse_args(argv)
    try:
        settings = settings_module.load(args.settings)
        if args.command == "promote":
            return run_build(settings, "promote", "promote", package=args.package,
                             version=args.version, from_dist=args.source, to_dist=args.target,
                             reason=f"conveyor promote {args.package}")
        if args.command == "rollback":
            return run_build(settings, "rollback", "rollback", distribution=args.distribution,
                             state=args.state, reason=f"conveyor rollback {args.distribution}")
        if args.command == "status":
            return status(settings)
        return history(settings, args.distribution)
    except settings_module.SettingsError as exc:
        print(f"conveyor: {exc}", file=sys.stderr)
        return REFUSED
    except ApiError as exc:
        print(f"conveyor: {exc}", file=sys.stderr)
        return exc.code

if __name__ == "__main__":
    sys.exit(main())
