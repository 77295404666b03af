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
"""

from __future__ import annotations

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
                f"sudo apt-get update && sudo apt-get install -y {' '.join(packages)}",
                "# then, to follow the distribution (promotions and rollbacks alike):",
                "sudo apt-get update && sudo apt-get upgrade -y --allow-downgrades",
            ]
        )
        + "\n"
    )
