"""What a host needs to follow one distribution of the repository, one file each, as Conveyor
serves them (`<repository url>hosts/<distribution>.sources` and `.pref`, beside
`conveyor.gpg`) and `bin/conveyor host-setup DIST` prints them:

- the keyring, `/etc/apt/keyrings/conveyor.gpg` (the repository's public key);
- the apt source, `/etc/apt/sources.list.d/conveyor-<dist>.sources` (deb822, Signed-By that
  keyring only);
- a pin, `/etc/apt/preferences.d/conveyor-<dist>.pref`: the packages of that distribution of
  this repository at priority 1001. Above 1000, apt installs the distribution's version even
  when it is older than the installed one, so `apt-get update && apt-get upgrade` follows the
  distribution both ways: after a rollback, hosts go back. Without it apt never downgrades
  ("already the newest version"), and a rollback changes the repository but no machine.

A distribution of a project with target releases (conveyor/targets.py) serves one source per
release, `hosts/<distribution>.<release>.sources` (its component is the release); the commands
fetch the one of the host's own release (VERSION_CODENAME of /etc/os-release). The pin is the
same for every release.

What runs where (conveyor/hostreports.py): the reporter `hosts/conveyor-report`
(conveyor/hostreporter.py, installed as /usr/sbin/conveyor-report), its apt hook
`hosts/conveyor-report.apt.conf` (/etc/apt/apt.conf.d/90conveyor-report: after each dpkg run,
never failing it) and, per distribution, `hosts/<distribution>.report.conf` (the master's URL,
the distribution and its packages; /etc/conveyor/report.d/<distribution>.conf). The host's token
is not served: `bin/conveyor host-token add HOST` on the master prints it and how to install it.
"""

from __future__ import annotations

from pathlib import Path

KEYRING = "/etc/apt/keyrings/conveyor.gpg"
PRIORITY = 1001  # > 1000: a downgrade when the distribution goes back (apt_preferences(5))


def sources(repo_url: str, distribution: str, component: str, keyring: str = KEYRING) -> str:
    """The deb822 apt source of one distribution."""
    return (
        f"Types: deb\nURIs: {repo_url}\nSuites: {distribution}\nComponents: {component}\n"
        f"Signed-By: {keyring}\n"
    )


def preferences(origin: str, distribution: str) -> str:
    """The pin that makes apt follow the distribution down as well as up. It matches this
    repository's distribution only (its Release file's Origin and Suite): other packages and
    other repositories keep their priorities."""
    return (
        f"Explanation: Conveyor: follow {distribution} both ways (a rollback downgrades)\n"
        f"Package: *\nPin: release o={origin},n={distribution}\n"
        f"Pin-Priority: {PRIORITY}\n"
    )


HOST_RELEASE = '$(. /etc/os-release && echo "$VERSION_CODENAME")'


def served(distribution: str, release: str | None = None) -> tuple[str, str]:
    """(the source's, the pin's) paths below the repository's URL; the source of one target
    release's component with `release`."""
    source = (
        f"hosts/{distribution}.{release}.sources" if release else f"hosts/{distribution}.sources"
    )
    return source, f"hosts/{distribution}.pref"


def file_names(distribution: str) -> tuple[str, str]:
    """(the source's, the pin's) file names on a host."""
    return f"conveyor-{distribution}.sources", f"conveyor-{distribution}.pref"


def commands(
    repo_url: str,
    distribution: str,
    packages: list[str] | tuple[str, ...],
    targets: tuple[str, ...] = (),
) -> str:
    """The shell lines that set a host up to follow `distribution` and install `packages`; with
    target releases, the source of the host's own release."""
    source, pref = file_names(distribution)
    served_source, served_pref = served(distribution, HOST_RELEASE if targets else None)
    return (
        "\n".join(
            [
                "sudo install -d -m 0755 /etc/apt/keyrings",
                f"sudo curl -fsSo {KEYRING} {repo_url}conveyor.gpg",
                f"sudo curl -fsSo /etc/apt/sources.list.d/{source} {repo_url}{served_source}",
                f"sudo curl -fsSo /etc/apt/preferences.d/{pref} {repo_url}{served_pref}",
                *report_commands(repo_url, distribution),
                f"sudo apt-get update && sudo apt-get install -y {' '.join(packages)}",
                "# then, to follow the distribution (promotions and rollbacks alike):",
                "sudo apt-get update && sudo apt-get upgrade -y --allow-downgrades",
            ]
        )
        + "\n"
    )


# --- what runs where: the reporter, its hook, its configuration -------------------------------

REPORTER = "/usr/sbin/conveyor-report"
REPORT_HOOK = "/etc/apt/apt.conf.d/90conveyor-report"
REPORT_DIR = "/etc/conveyor/report.d"
REPORT_TOKEN = "/etc/conveyor/report.token"
REPORT_PATH = "hosts/report"  # below the master's web URL (master/hostreports.py)
SERVED_REPORTER, SERVED_HOOK = "hosts/conveyor-report", "hosts/conveyor-report.apt.conf"


def report_hook() -> str:
    """The apt hook: after each dpkg run; a report that fails never fails apt."""
    return (
        "// Conveyor: after each dpkg run, tell the master which versions of its packages run\n"
        "// here (conveyor-report; a failed report never fails apt)\n"
        f'DPkg::Post-Invoke {{ "if [ -x {REPORTER} ]; then {REPORTER} || true; fi"; }};\n'
    )


def report_config(web_url: str, distribution: str, packages: list[str] | tuple[str, ...]) -> str:
    """/etc/conveyor/report.d/<distribution>.conf: where and what conveyor-report reports."""
    return (
        f"# Conveyor: what conveyor-report sends after each dpkg run ({distribution})\n"
        "[report]\n"
        f"url = {web_url}{REPORT_PATH}\n"
        f"distribution = {distribution}\n"
        f"packages = {' '.join(packages)}\n"
    )


def served_report_config(distribution: str) -> str:
    return f"hosts/{distribution}.report.conf"


def report_files(settings, distribution: str) -> dict[str, str]:
    """What the repository serves for the reports (path below its URL -> text)."""
    packages = [
        p for project in settings.projects if distribution in project.path for p in project.packages
    ]
    return {
        SERVED_REPORTER: (Path(__file__).parent / "hostreporter.py").read_text(),
        SERVED_HOOK: report_hook(),
        served_report_config(distribution): report_config(settings.web_url, distribution, packages),
    }


def report_commands(repo_url: str, distribution: str) -> list[str]:
    """The lines of `commands` that install the reporter, its configuration and its hook."""
    return [
        "# what runs where: the reporter, its configuration and its apt hook (this host's token:",
        "# `bin/conveyor host-token add HOST` on the master prints it, and how to install it)",
        f"sudo install -d -m 0755 {REPORT_DIR}",
        f"sudo curl -fsSo {REPORT_DIR}/{distribution}.conf {repo_url}"
        f"{served_report_config(distribution)}",
        f"sudo curl -fsSo {REPORTER} {repo_url}{SERVED_REPORTER} && sudo chmod 0755 {REPORTER}",
        f"sudo curl -fsSo {REPORT_HOOK} {repo_url}{SERVED_HOOK}",
    ]


def token_command() -> str:
    """How a host gets its token (`bin/conveyor host-token add` prints it): from the terminal,
    readable by root only, never on a command line."""
    return f"sudo install -D -m 0600 /dev/stdin {REPORT_TOKEN}"
