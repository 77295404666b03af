"""The repository as the master knows it: its public URL and its signing key's fingerprint.

With the repository on a host of its own (`[repository] home`), the master reads nothing of that
host's files. aptly's `-gpg-key` (passed to the repository worker's steps) is then
`[repository] fingerprint`, or, when that is not set, the fingerprint of the public key the
repository serves (<url>conveyor.gpg), fetched once when the configuration is loaded.
"""

from __future__ import annotations

import dataclasses
import subprocess
import tempfile
import urllib.request

from buildbot.config.errors import ConfigErrors

from conveyor.settings import Settings


def with_fingerprint(settings: Settings) -> Settings:
    """The settings, with the fingerprint filled in for a repository apart that names none."""
    repo = settings.repository
    if not repo.apart or repo.fingerprint:
        return settings
    fingerprint = served_fingerprint(repo.public_key_url)
    return dataclasses.replace(
        settings, repository=dataclasses.replace(repo, fingerprint=fingerprint)
    )


def served_fingerprint(url: str) -> str:
    """The primary key's fingerprint of the OpenPGP key served at url (read by gpg)."""
    why = (
        f"[repository] fingerprint is not set in the settings, and the repository's key "
        f"could not be read from {url}"
    )
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            key = response.read()
    except OSError as exc:
        raise ConfigErrors(
            [
                f"{why}: {exc}; start the repository host first (python -m ops "
                "repository-host), or set the fingerprint"
            ]
        ) from None
    with tempfile.TemporaryDirectory(prefix="conveyor-gpg-") as home:
        proc = subprocess.run(
            [
                "gpg",
                "--homedir",
                home,
                "--batch",
                "--with-colons",
                "--import-options",
                "show-only",
                "--import",
            ],
            input=key,
            capture_output=True,
        )
    lines = proc.stdout.decode(errors="replace").splitlines()
    fingerprints = [line.split(":")[9] for line in lines if line.startswith("fpr:")]
    if proc.returncode != 0 or not fingerprints:
        raise ConfigErrors([f"{why}: it is not an OpenPGP public key"])
    return fingerprints[0].upper()
