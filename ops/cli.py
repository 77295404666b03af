"""conveyor — promote, roll back and look at the apt repository from a terminal.

    conveyor promote PACKAGE FROM TO [--version V]   one step along the path, e.g.
                                                    snowbird snowbird-staging snowbird
    conveyor rollback DIST [--to STATE]             STATE: a history entry number or snapshot name
    conveyor status [--json]                        what each distribution has, the commits waiting
                                                    at each step (--json: all of the release board)
    conveyor history DIST                           every state DIST has had
    conveyor freeze DIST --reason TEXT              no promotion into DIST (rollback still works)
    conveyor unfreeze DIST                          promotions into DIST again
    conveyor host-setup DIST                        the commands that set a host up to follow
                                                    DIST, rollbacks included
    conveyor verify PACKAGE=VERSION                 prove each served .deb of it by its signed
                                                    provenance (conveyor/provenance.py)
    conveyor approvals [DIST]                       the promotion requests waiting for approval
    conveyor approve DIST [REQUEST]                 approve DIST's pending request (the one
                                                    printed; REQUEST: its number, to be sure)
    conveyor host-token add|revoke|list [HOST]      the hosts' report tokens, on the master's
                                                    machine (ops/hostreports.py)

promote, rollback, freeze, unfreeze and approve log in to the master's REST API, force the
build, follow it to its end and print its result and URL. Credentials come from CONVEYOR_USER and
CONVEYOR_PASSWORD, or from the file named by CONVEYOR_CREDENTIALS (one line `user:password`;
default: the demo releaser's, var/secrets/cli-credentials) — never from the command line.

Exit codes: 0 done (or nothing to do, or verified), 1 the build failed or a rule refused it (or
the provenance does not prove the package), 2 the request was
refused before any build (invalid input, a rule of the path), 3 not allowed (log-in or role),
4 the master or repository could not be reached.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC
from datetime import datetime

from conveyor import approvals
from conveyor import hostsetup
from conveyor import release
from conveyor import settings as settings_module
from conveyor.results import result_name
from conveyor.served import requests_url
from ops import setup
from ops.api import FAILED
from ops.api import FORBIDDEN  # noqa: F401 (an exit code of the CLI, as OK and FAILED)
from ops.api import OK
from ops.api import REFUSED
from ops.api import ApiError
from ops.api import Master
from ops.api import credentials
from ops.api import fetch_text
from ops.board import status as board_status
from ops.hostreports import host_token
from ops.progress import StepPrinter


def run_build(settings, scheduler: str, builder: str, **params) -> int:
    master = Master(settings.web_url)
    master.login(*credentials(settings))
    started = time.monotonic()
    brid = master.force(scheduler, builder, **params)
    print(f"{builder}: requested as {master.user}; its steps as they finish:", flush=True)
    build = master.follow(brid, progress=StepPrinter())
    result = result_name(build["results"])
    print(f"{builder} #{build['number']}: {result} in {time.monotonic() - started:.1f} s")
    print(build["url"])
    return OK if result in ("SUCCESS", "WARNINGS") else FAILED


def history(settings, dist: str) -> int:
    if dist not in settings.distributions:
        raise ApiError(
            f"{dist!r} is not a distribution (known: {', '.join(settings.distributions)})", REFUSED
        )
    entries = release.parse_history(
        fetch_text(f"{settings.repository.url}history/{dist}.jsonl") or ""
    )
    for entry in entries:
        current = " <- published" if entry is entries[-1] else ""
        what = f"{entry.get('package') or ''} {entry.get('version') or ''}".strip() or "(empty)"
        origin = f" from {entry['from']}" if entry.get("from") else ""
        if entry.get("approved_by"):  # conveyor/approvals.py
            origin += f" (request {entry.get('request')}, approved by "
            origin += f"{', '.join(entry['approved_by'])})"
        print(
            f"{entry['n']:>3}  {entry['when']}  {entry['action']:<8}  {what}{origin}  "
            f"by {entry.get('who') or '?'}  {entry['snapshot']}{current}"
        )
    if settings.approvals.of(dist):  # every request and approval (conveyor/approvals.py)
        print(f"requests into {dist} (each needs {settings.approvals.of(dist)} approvals):")
        for e in _requests(settings, dist):
            what = f" {e['package']} {e['version']}" if e["event"] == "requested" else ""
            extra = f" by {e['by']}" if e.get("by") else f": {e['why']}" if e.get("why") else ""
            who = f" by {e['who']}" if e.get("who") else ""
            print(f"  {e['when']}  request {e['request']} {e['event']}{what}{who}{extra}")
    return OK


def _requests(settings, dist: str) -> list[dict]:
    """The request log of a distribution that needs approvals (conveyor/approvals.py)."""
    if not settings.approvals.of(dist):
        needing = ", ".join(sorted(settings.approvals.needed)) or "none ([approvals] is empty)"
        raise ApiError(f"{dist!r} needs no approvals (those that do: {needing})", REFUSED)
    return approvals.parse_log(fetch_text(requests_url(settings, dist)) or "")


def list_approvals(settings, dist: str | None) -> int:
    for name in [dist] if dist else sorted(settings.approvals.needed):
        request = approvals.open_request(_requests(settings, name))
        if request is None:
            print(
                f"{name}: no request waits (a promotion into it needs "
                f"{settings.approvals.of(name)} approval(s))"
            )
        else:
            state = request.state(datetime.now(UTC))
            print(f"{name}: {state} {approvals.summary(request)}")
    return OK


def approve(settings, dist: str, number: str) -> int:
    """Approve the pending request of `dist`: the one printed here (or number `number`)."""
    request = approvals.open_request(_requests(settings, dist))
    if not number and request is None:
        raise ApiError(f"{dist}: no request waits for approval", REFUSED)
    print(approvals.summary(request) if request else f"{dist}: request {number}")
    return run_build(
        settings,
        "approve",
        "approve",
        distribution=dist,
        request=number or str(request.number),
        reason=f"conveyor approve {dist}",
    )


def host_setup(settings, dist: str) -> int:
    """Print what a host runs to follow `dist` (conveyor/hostsetup.py)."""
    if dist not in settings.distributions:
        print(
            f"conveyor: {dist!r} is not a distribution of this repository (known: "
            f"{', '.join(settings.distributions)})",
            file=sys.stderr,
        )
        return REFUSED
    packages = [
        p for project in settings.projects if dist in project.path for p in project.packages
    ]
    commands = hostsetup.commands(
        settings.repository.url, dist, packages, settings.targets_of(dist)
    )
    print(commands, end="")
    return OK


def verify(settings, wanted: str) -> int:
    """Prove every served .deb of PACKAGE=VERSION by its provenance, over HTTP as apt reads."""
    from conveyor import provenance

    package, _, version = wanted.partition("=")
    if not package or not version:
        print(
            f"conveyor: {wanted!r}: say PACKAGE=VERSION, e.g. snowbird=1.4.0+ci…", file=sys.stderr
        )
        return REFUSED

    try:
        proofs = provenance.verify_served(
            settings, package, version, fetch_text, lambda url: fetch_text(url, raw=True)
        )
    except provenance.ProvenanceError as exc:
        print(f"conveyor: NOT verified: {exc}", file=sys.stderr)
        return FAILED
    for proof in proofs:
        print("\n".join(proof.lines()))
    print(f"verified: {package} {version} ({len(proofs)} package(s))")
    return OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="conveyor", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    setup.settings_argument(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("promote", help="promote PACKAGE FROM TO [--version V]")
    p.add_argument("package")
    p.add_argument("source", metavar="FROM")
    p.add_argument("target", metavar="TO")
    p.add_argument("--version", default="")
    p = sub.add_parser("rollback", help="rollback DIST [--to STATE]")
    p.add_argument("distribution")
    p.add_argument("--to", default="", dest="state")
    p = sub.add_parser("status", help="what each distribution has, what waits to be promoted")
    p.add_argument(
        "--json",
        action="store_true",
        help="the release board's data (grid, waiting commits, history, CI) as JSON",
    )
    p = sub.add_parser("history", help="history DIST")
    p.add_argument("distribution")
    p = sub.add_parser("freeze", help="freeze DIST --reason TEXT: no promotion into it")
    p.add_argument("distribution")
    p.add_argument("--reason", required=True)
    p = sub.add_parser("unfreeze", help="unfreeze DIST: promotions into it again")
    p.add_argument("distribution")
    p.add_argument("--reason", default="unfrozen")
    p = sub.add_parser("host-setup", help="host-setup DIST: set a host up to follow DIST")
    p.add_argument("distribution")
    p = sub.add_parser("approvals", help="approvals [DIST]: the requests that wait")
    p.add_argument("distribution", nargs="?")
    p = sub.add_parser("approve", help="approve DIST [REQUEST]: approve its pending request")
    p.add_argument("distribution")
    p.add_argument("request", nargs="?", default="")
    p = sub.add_parser("verify", help="verify PACKAGE=VERSION: its signed provenance")
    p.add_argument("package", metavar="PACKAGE=VERSION")
    p = sub.add_parser("host-token", help="host-token add|revoke|list [HOST]: report tokens")
    p.add_argument("action", choices=("add", "revoke", "list"))
    p.add_argument("host", nargs="?")
    args = parser.parse_args(argv)
    try:
        settings = settings_module.load(args.settings)
        if args.command == "promote":
            return run_build(
                settings,
                "promote",
                "promote",
                package=args.package,
                version=args.version,
                from_dist=args.source,
                to_dist=args.target,
                reason=f"conveyor promote {args.package}",
            )
        if args.command == "rollback":
            return run_build(
                settings,
                "rollback",
                "rollback",
                distribution=args.distribution,
                state=args.state,
                reason=f"conveyor rollback {args.distribution}",
            )
        if args.command in ("freeze", "unfreeze"):
            return run_build(
                settings,
                "freeze",
                "freeze",
                distribution=args.distribution,
                action=args.command,
                reason=args.reason,
            )
        if args.command == "status":
            return board_status(settings, args.json)
        if args.command == "host-setup":
            return host_setup(settings, args.distribution)
        if args.command == "verify":
            return verify(settings, args.package)
        if args.command == "approvals":
            return list_approvals(settings, args.distribution)
        if args.command == "approve":
            return approve(settings, args.distribution, args.request)
        if args.command == "host-token":
            return host_token(settings, args.action, args.host)
        return history(settings, args.distribution)
    except settings_module.SettingsError as exc:
        print(f"conveyor: {exc}", file=sys.stderr)
        return REFUSED
    except ApiError as exc:
        print(f"conveyor: {exc}", file=sys.stderr)
        return exc.code


if __name__ == "__main__":
    sys.exit(main())
