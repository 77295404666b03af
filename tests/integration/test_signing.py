"""A signing key with a passphrase: read from a secret file, given to gpg and aptly by file
(never on a command line or in a log), and the repository it signs verifies. Real gpg and
aptly; no master."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conveyor import settings as settings_module
from ops import setup
from tests.integration.helpers import write_pipeline

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("aptly") is None, reason="needs aptly (make system)"),
]

PASSPHRASE = "correct horse battery staple"


def gpg(settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["gpg", "--batch", *args], env=setup.gpg_env(settings), capture_output=True, text=True
    )


def forget_passphrase(settings) -> None:
    """gpg-agent caches a passphrase once used: end it, so each signing must have it again."""
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=setup.gpg_env(settings))


def test_a_key_with_a_passphrase_signs_the_repository_only_with_it(tmp_path):
    write_pipeline(tmp_path)
    file = tmp_path / "pipeline.toml"
    file.write_text(
        file.read_text().replace(
            "[repository]\n", '[repository]\npassphrase_secret = "signing-key-passphrase"\n', 1
        )
    )
    settings = settings_module.load(file)
    repo = settings.repository
    assert repo.passphrase_file == settings.secrets_dir / "signing-key-passphrase"
    setup.write_secret(settings, "signing-key-passphrase", PASSPHRASE)
    try:
        repo.aptly_root.mkdir(parents=True)
        fingerprint = setup.ensure_signing_key(settings)
        setup.ensure_repository(settings, fingerprint)
        assert f"-passphrase-file={repo.passphrase_file}" in repo.signing_args()
        assert not any(PASSPHRASE in arg for arg in repo.signing_args())

        # every distribution is published and signed by that key: gpgv verifies InRelease
        keyring = tmp_path / "conveyor.gpg"
        shutil.copyfile(repo.www_root / repo.public_key_name, keyring)
        for dist in settings.distributions:
            release = repo.www_root / "dists" / dist / "InRelease"
            proc = subprocess.run(
                ["gpgv", "--keyring", str(keyring), str(release)], capture_output=True, text=True
            )
            assert proc.returncode == 0, proc.stderr

        # the key needs its passphrase: without it, signing fails; with the file, it works
        (tmp_path / "data").write_text("x")
        forget_passphrase(settings)
        refused = gpg(
            settings,
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "wrong",
            "--local-user",
            fingerprint,
            "--detach-sign",
            "-o",
            str(tmp_path / "x.sig"),
            str(tmp_path / "data"),
        )
        assert refused.returncode != 0
        dist = settings.distributions[0]
        setup.aptly(settings, "snapshot", "create", "next", "empty")
        forget_passphrase(settings)
        without = setup.aptly(
            settings,
            "publish",
            "switch",
            "-batch",
            f"-gpg-key={fingerprint}",
            dist,
            ".",
            "next",
            check=False,
        )
        assert without.returncode != 0
        forget_passphrase(settings)
        setup.aptly(
            settings, "publish", "switch", "-batch", *repo.signing_args(), dist, ".", "next"
        )
        proc = subprocess.run(
            ["gpgv", "--keyring", str(keyring), str(repo.www_root / "dists" / dist / "InRelease")],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
    finally:
        forget_passphrase(settings)
