"""Signed provenance (conveyor/provenance.py, worker/bin/conveyor-attest): a statement signed
with a GnuPG key as the repository's worker signs it, then checked as `bin/conveyor verify`
checks a served .deb: the signature against the published key, the digest, the commit."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor import provenance

ROOT = Path(__file__).resolve().parents[2]
COMMIT = "4d4a7f9" + "c" * 33
DEB = "snowbird_1.4.0+ci20261205.084400.7.g4d4a7f9_amd64.deb"
DEB_BYTES = b"!<arch>\n a package, as far as digests go"


def make_key(home: Path, name: str) -> tuple[bytes, str]:
    """A signing key without passphrase in `home`: (its public half, its fingerprint)."""
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--batch", "--homedir", str(home)]
    subprocess.run(
        [*gpg, "--passphrase", "", "--quick-gen-key", name, "ed25519", "sign", "never"],
        check=True,
        capture_output=True,
    )
    listing = subprocess.run(
        [*gpg, "--with-colons", "--list-keys"], check=True, capture_output=True, text=True
    ).stdout
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line[:4] == "fpr:")
    public = subprocess.run([*gpg, "--export", fingerprint], check=True, capture_output=True)
    return public.stdout, fingerprint


def statement_of(deb_bytes: bytes = DEB_BYTES, buildinfo=None) -> dict:
    """A .deb's statement, as the publish's attest step makes it."""
    return provenance.statement(
        deb=DEB,
        sha256=hashlib.sha256(deb_bytes).hexdigest(),
        clone_url="https://github.com/sprintly/snowbird.git",
        branch="main",
        commit=COMMIT,
        project="snowbird",
        version="1.4.0+ci20261205.084400.7.g4d4a7f9",
        target="",
        bases={"bookworm-amd64.tar.zst": "ab" * 32},
        builder_url="http://ci.test/#/builders/3",
        build_url="http://ci.test/#/builders/3/builds/7",
        worker="build",
        started="2026-12-05T08:44:00+00:00",
        finished="2026-12-05T08:44:30+00:00",
        parameters={"builder": "snowbird-package", "number": 7},
        buildinfo=buildinfo,
    )


def run_attest(home: Path, fingerprint: str, out: Path, *args: str, stdin: str | None = None):
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "worker/bin/conveyor-attest"),
            "--key",
            fingerprint,
            "--out-dir",
            str(out),
            *args,
        ],
        env={**os.environ, "GNUPGHOME": str(home)},
        input=stdin,
        capture_output=True,
        text=True,
    )


def attest(
    tmp_path: Path, home: Path, fingerprint: str, deb_bytes: bytes = DEB_BYTES, record=None
) -> str:
    """As the publish's attest step: the statement (naming the package build's .buildinfo
    `record`, if any) and the record handed to conveyor-attest in one bundle on its standard
    input, signed; the envelope."""
    named = (BUILDINFO_NAME, hashlib.sha256(record).hexdigest()) if record else None
    files = {BUILDINFO_NAME: base64.b64encode(record).decode()} if record else {}
    bundle = {"statements": {DEB: statement_of(deb_bytes, named)}, "files": files}
    out = tmp_path / "www" / "provenance"
    proc = run_attest(home, fingerprint, out, "--bundle", stdin=json.dumps(bundle))
    assert proc.returncode == 0, proc.stderr
    return (out / f"{DEB}.intoto.json").read_text()


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("provenance")
    public, fingerprint = make_key(tmp / "gnupg", "Conveyor repository <repo@ci.test>")
    return tmp, public, fingerprint, attest(tmp, tmp / "gnupg", fingerprint)


def test_a_signed_statement_proves_the_deb_its_digest_and_commit(signed):
    _, public, fingerprint, envelope = signed
    assert json.loads(envelope)["payloadType"] == "application/vnd.in-toto+json"
    digest = hashlib.sha256(DEB_BYTES).hexdigest()
    proof = provenance.check(DEB, DEB_BYTES, digest, envelope, public, COMMIT)
    assert proof.sha256 == digest and proof.commit == COMMIT
    assert fingerprint.lower().endswith(proof.keyid.lower()[-16:])
    assert "http://ci.test/#/builders/3/builds/7 on build" in "\n".join(proof.lines())


def test_one_changed_byte_of_the_served_deb_is_refused(signed):
    _, public, _, envelope = signed
    changed = DEB_BYTES[:-1] + b"X"
    digest = hashlib.sha256(changed).hexdigest()
    with pytest.raises(provenance.ProvenanceError, match="not the one that was built"):
        provenance.check(DEB, changed, digest, envelope, public, COMMIT)


def test_another_key_or_a_changed_statement_does_not_verify(signed, tmp_path):
    tmp, public, _, envelope = signed
    digest = hashlib.sha256(DEB_BYTES).hexdigest()
    other, other_fingerprint = make_key(tmp_path / "other", "Mallory <m@x.test>")
    forged = attest(tmp_path, tmp_path / "other", other_fingerprint)
    with pytest.raises(provenance.ProvenanceError, match="does not verify"):
        provenance.check(DEB, DEB_BYTES, digest, forged, public, COMMIT)
    # the payload changed after signing (another commit written in)
    data = json.loads(envelope)
    payload = base64.b64decode(data["payload"]).replace(COMMIT.encode(), b"f" * 40)
    data["payload"] = base64.b64encode(payload).decode()
    with pytest.raises(provenance.ProvenanceError, match="does not verify"):
        provenance.check(DEB, DEB_BYTES, digest, json.dumps(data), public, COMMIT)


def test_a_commit_other_than_the_packages_or_no_provenance_is_refused(signed):
    _, public, _, envelope = signed
    digest = hashlib.sha256(DEB_BYTES).hexdigest()
    with pytest.raises(provenance.ProvenanceError, match="Conveyor-Commit field"):
        provenance.check(DEB, DEB_BYTES, digest, envelope, public, "b" * 40)
    with pytest.raises(provenance.ProvenanceError, match="no provenance is served"):
        provenance.check(DEB, DEB_BYTES, digest, None, public, COMMIT)


BUILDINFO_NAME = "snowbird_1.4.0+ci20261205.084400.7.g4d4a7f9_amd64.buildinfo"


def buildinfo(deb_sha256: str) -> bytes:
    """A build's record, as dpkg-genbuildinfo writes it (the parts checked)."""
    return (
        "Format: 1.0\nSource: snowbird\nBinary: snowbird\nArchitecture: amd64\n"
        "Version: 1.4.0+ci20261205.084400.7.g4d4a7f9\nChecksums-Sha256:\n"
        f" {deb_sha256} {len(DEB_BYTES)} {DEB}\n"
        f" {'e' * 64} 812 snowbird_1.4.0+ci20261205.084400.7.g4d4a7f9_amd64.changes\n"
        "Build-Origin: Debian\nInstalled-Build-Depends:\n base-files (= 12.4),\n"
        " debhelper (= 13.11.4),\n dh-virtualenv (= 1.2.2-1.4)\n"
    ).encode()


def test_the_buildinfo_is_signed_by_its_digest_and_must_list_the_deb_as_served(signed):
    tmp, public, fingerprint, _ = signed
    digest = hashlib.sha256(DEB_BYTES).hexdigest()
    record = buildinfo(digest)
    envelope = attest(tmp, tmp / "gnupg", fingerprint, record=record)
    # written beside the envelope, from the bundle, as the served tree has it
    written = tmp / "www" / "provenance" / BUILDINFO_NAME
    assert written.read_bytes() == record and written.stat().st_mode & 0o777 == 0o644
    served = {BUILDINFO_NAME: written.read_bytes()}
    proof = provenance.check(DEB, DEB_BYTES, digest, envelope, public, COMMIT, served.get)
    assert proof.buildinfo == (
        f"buildinfo {BUILDINFO_NAME}: as signed; it lists this .deb's sha256, built among 3 "
        "installed packages"
    )
    # the record changed after signing, or served without it
    changed = {BUILDINFO_NAME: record.replace(b"12.4", b"12.5")}
    with pytest.raises(provenance.ProvenanceError, match="not the one the provenance names"):
        provenance.check(DEB, DEB_BYTES, digest, envelope, public, COMMIT, changed.get)
    with pytest.raises(provenance.ProvenanceError, match="is not served"):
        provenance.check(DEB, DEB_BYTES, digest, envelope, public, COMMIT, {}.get)
    # a record (signed as it is) that names another .deb than the one served
    other = buildinfo("f" * 64)
    envelope = attest(tmp, tmp / "gnupg", fingerprint, record=other)
    with pytest.raises(provenance.ProvenanceError, match=f"lists sha256 {'f' * 64} for it"):
        provenance.check(
            DEB, DEB_BYTES, digest, envelope, public, COMMIT, {BUILDINFO_NAME: other}.get
        )


def test_a_statement_file_is_signed_too_and_a_bad_bundle_writes_nothing(signed, tmp_path):
    """By hand, an operator names STATEMENT files; a bundle that names a path, or is no bundle,
    is refused with what is wrong, and nothing is written."""
    tmp, public, fingerprint, _ = signed
    source = tmp_path / f"{DEB}.statement.json"
    source.write_text(json.dumps(statement_of()))
    out = tmp_path / "www"
    assert run_attest(tmp / "gnupg", fingerprint, out, str(source)).returncode == 0
    digest = hashlib.sha256(DEB_BYTES).hexdigest()
    envelope = (out / f"{DEB}.intoto.json").read_text()
    assert provenance.check(DEB, DEB_BYTES, digest, envelope, public, COMMIT).commit == COMMIT
    refused = tmp_path / "refused"
    bad = {"statements": {"../" + DEB: statement_of()}, "files": {}}
    proc = run_attest(tmp / "gnupg", fingerprint, refused, "--bundle", stdin=json.dumps(bad))
    assert proc.returncode == 1 and "not a file name: '../" in proc.stderr
    proc = run_attest(tmp / "gnupg", fingerprint, refused, "--bundle", stdin="[1, 2]")
    assert proc.returncode == 1 and "not what --bundle reads" in proc.stderr
    assert not refused.exists()
