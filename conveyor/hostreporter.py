#!/usr/bin/python3
"""conveyor-report: tell Conveyor's master which versions of its packages this host runs.

Served by the repository as `hosts/conveyor-report` and installed on a host as
/usr/sbin/conveyor-report (`bin/conveyor host-setup DIST` prints how); an apt hook
(/etc/apt/apt.conf.d/90conveyor-report) runs it after each dpkg run, and never lets it fail apt.
Python 3's standard library only: a host needs nothing more than python3.

For each /etc/conveyor/report.d/<distribution>.conf (served as hosts/<distribution>.report.conf:
the master's URL, the distribution, its packages; nothing secret) it asks dpkg-query for the
version and status of each package and POSTs them as JSON, with the host's token from
/etc/conveyor/report.token (root only; `bin/conveyor host-token add HOST` on the master):

    {"host": "<hostname>", "distribution": "<dist>",
     "packages": [{"name": …, "version": …, "status": "install ok installed"}, …]}

Exit status: 0 all reported (or nothing to report), 1 a report failed (said on stderr, one line).
This file is also a module of Conveyor (conveyor/hostreporter.py) for its tests: it imports
nothing of Conveyor's.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

CONFIG_DIR = "/etc/conveyor/report.d"
TOKEN_FILE = "/etc/conveyor/report.token"
TIMEOUT = 5  # seconds: apt waits for the hook; a master that is away costs at most this


class ReportFailed(Exception):
    pass


def read_config(path: Path) -> dict:
    """url, distribution and packages of one .conf file."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text(), source=str(path))
        section = parser["report"]
        config = {
            "url": section["url"].strip(),
            "distribution": section["distribution"].strip(),
            "packages": section["packages"].split(),
        }
    except (OSError, KeyError, configparser.Error) as exc:
        raise ReportFailed(f"{path}: not a report configuration ({exc})") from None
    if not config["url"].startswith(("http://", "https://")):
        raise ReportFailed(f"{path}: url must be http:// or https://")
    return config


def dpkg_status(packages: list[str]) -> list[dict]:
    """The version and dpkg status of each package dpkg knows (the others are left out: the
    master reads them as not installed)."""
    if not packages:
        return []
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package}\\t${Version}\\t${Status}\\n", *packages],
        capture_output=True,
        text=True,
    )
    found = []
    for line in proc.stdout.splitlines():
        name, _, rest = line.partition("\t")
        version, _, status = rest.partition("\t")
        if name in packages and status:
            found.append({"name": name, "version": version, "status": status})
    return found


def read_token(path: Path) -> str:
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        raise ReportFailed(
            f"no token in {path} (on the master: bin/conveyor host-token add "
            f"{socket.gethostname()}): not reported"
        ) from None
    except OSError as exc:
        raise ReportFailed(f"{path}: {exc.strerror}: not reported") from None
    if not token:
        raise ReportFailed(f"{path} is empty: not reported")
    return token


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is refused: it would carry the token to wherever it points."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise ReportFailed(f"{req.full_url}: {code}: redirected to {newurl}, not followed")


def send(url: str, report: dict, token: str, timeout: float = TIMEOUT) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(report).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace").strip().splitlines()
        raise ReportFailed(f"{url}: {exc.code}: {text[0] if text else exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ReportFailed(f"cannot reach {url}: {reason}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="conveyor-report", description=__doc__.split("\n")[0])
    parser.add_argument("--config-dir", default=CONFIG_DIR)
    parser.add_argument("--token-file", default=TOKEN_FILE)
    parser.add_argument("--host", default=None, help="the host's name (default: hostname)")
    args = parser.parse_args(argv)
    configs = sorted(Path(args.config_dir).glob("*.conf"))
    if not configs:
        return 0
    failed = 0
    try:
        token = read_token(Path(args.token_file))
    except ReportFailed as exc:
        print(f"conveyor-report: {exc}", file=sys.stderr)
        return 1
    host = args.host or socket.gethostname()
    for path in configs:
        try:
            config = read_config(path)
            report = {
                "host": host,
                "distribution": config["distribution"],
                "packages": dpkg_status(config["packages"]),
            }
            send(config["url"], report, token)
        except ReportFailed as exc:
            print(f"conveyor-report: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    os.umask(0o077)
    sys.exit(main())
