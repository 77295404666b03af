"""Signed provenance of every package: an in-toto Statement with a SLSA Provenance v1 predicate,
in a DSSE envelope signed with the repository's key, served beside the packages.

- statement(): made by the master, from what it saw of the build (steps/provenance.py): the
  repository and commit, the package build's builder, number and worker, the target release
  and the digest of its chroot base, the build's parameters, the .deb's sha256 and the build's
  .buildinfo (its sha256; the file is served beside the envelope). The
  repository's worker signs it (worker/bin/conveyor-attest); no build worker holds the key.
- check(): what `bin/conveyor verify PACKAGE=VERSION` and a promotion into a path's last
  distribution prove, from what is served over HTTP: the envelope's signature against the
  repository's published key, the served .deb's digest against the statement's (and the
  index's), and the commit (the statement's, the package's Conveyor-Commit field, the
  version's g<sha>), and the .buildinfo's digest and its listing of the .deb.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
BUILD_TYPE = (
    "https://github.com/conveyor-ci/conveyor/blob/main/docs/provenance.md#debian-package-v1"
)


class ProvenanceError(Exception):
    """A package whose provenance does not prove what it should: the message says what."""


def provenance_path(deb: str) -> str:
    """Where a .deb's envelope is served, below the repository's URL."""
    return f"provenance/{deb}.intoto.json"


def buildinfo_path(name: str) -> str:
    """Where a build's .buildinfo is served, below the repository's URL."""
    return f"provenance/{name}"


def statement(
    *,
    deb: str,
    sha256: str,
    clone_url: str,
    branch: str,
    commit: str,
    project: str,
    version: str,
    target: str,
    bases: dict[str, str],
    builder_url: str,
    build_url: str,
    worker: str,
    started: str | None,
    finished: str | None,
    parameters: dict,
    buildinfo: tuple[str, str] | None = None,
) -> dict:
    """The in-toto Statement of one .deb (SLSA Provenance v1); `buildinfo`: (the file name,
    the sha256) of the build's record (its .buildinfo), served beside it (buildinfo_path)."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": deb, "digest": {"sha256": sha256}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "repository": clone_url,
                    "ref": f"refs/heads/{branch}",
                    "project": project,
                    "target": target,
                },
                "internalParameters": parameters,
                "resolvedDependencies": [
                    {"uri": f"git+{clone_url}@refs/heads/{branch}", "digest": {"gitCommit": commit}}
                ]
                # the chroot base it was built in (its release's, made by the trusted side)
                + [
                    {"uri": f"conveyor-chroot-base:{name}", "digest": {"sha256": digest}}
                    for name, digest in sorted(bases.items())
                ],
            },
            "runDetails": {
                "builder": {"id": builder_url, "version": {"worker": worker}},
                "metadata": {
                    "invocationId": build_url,
                    "startedOn": started,
                    "finishedOn": finished,
                },
                "byproducts": [{"name": "version", "content": version}]
                + (
                    [{"name": buildinfo[0], "digest": {"sha256": buildinfo[1]}}]
                    if buildinfo
                    else []
                ),
            },
        },
    }


@dataclass
class Proof:
    """What check() proved of one .deb."""

    deb: str
    sha256: str
    commit: str
    keyid: str
    build: str
    buildinfo: str = ""  # what was proved of the build's .buildinfo

    def lines(self) -> list[str]:
        return [
            f"{self.deb}: signed by the repository's key {self.keyid}",
            f"  sha256 {self.sha256}: the .deb as served, as its index and its provenance say",
            f"  commit {self.commit}: the provenance's, the package's and the version's",
            f"  built by {self.build}",
            f"  {self.buildinfo or 'no .buildinfo recorded (published before Conveyor kept it)'}",
        ]


def key_fingerprint(public_key: bytes, home: Path) -> str:
    """Import the published key into a throwaway GnuPG home; its primary key's fingerprint."""
    proc = subprocess.run(
        [
            "gpg",
            "--batch",
            "--homedir",
            str(home),
            "--import",
            "--import-options",
            "import-show",
            "--with-colons",
        ],
        input=public_key,
        capture_output=True,
    )
    fingerprints = [
        line.split(":")[9] for line in proc.stdout.decode().splitlines() if line.startswith("fpr:")
    ]
    if proc.returncode != 0 or not fingerprints:
        raise ProvenanceError(
            f"the repository's published key could not be read: {proc.stderr.decode()[-300:]}"
        )
    return fingerprints[0]


def verified_statement(envelope_text: str, public_key: bytes) -> tuple[dict, str]:
    """(the statement, the signing key's id) of an envelope whose signature the published key
    verifies (securesystemslib: DSSE and GnuPG); ProvenanceError otherwise."""
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import GPGSigner

    try:
        envelope = Envelope.from_dict(json.loads(envelope_text))
    except (ValueError, KeyError, TypeError) as exc:
        raise ProvenanceError(f"the provenance is not a DSSE envelope: {exc}") from exc
    if envelope.payload_type != PAYLOAD_TYPE:
        raise ProvenanceError(f"the envelope holds {envelope.payload_type!r}, not in-toto")
    with tempfile.TemporaryDirectory(prefix="conveyor-verify-") as home:
        fingerprint = key_fingerprint(public_key, Path(home))
        _, key = GPGSigner.import_(fingerprint.lower(), homedir=home)
        try:
            envelope.verify([key], 1)
        except Exception as exc:  # securesystemslib's VerificationError and friends
            raise ProvenanceError(
                f"the provenance's signature does not verify with the repository's published "
                f"key {fingerprint}: {exc}"
            ) from exc
    payload = json.loads(envelope.payload)
    if payload.get("_type") != STATEMENT_TYPE or payload.get("predicateType") != PREDICATE_TYPE:
        raise ProvenanceError("the envelope's payload is not an in-toto SLSA provenance")
    return payload, key.keyid


def check(
    deb: str,
    deb_bytes: bytes,
    index_sha256: str,
    envelope_text: str | None,
    public_key: bytes,
    control_commit: str | None,
    buildinfo_of=None,
) -> Proof:
    """Prove one served .deb (see the module's docstring); ProvenanceError says what failed."""
    if envelope_text is None:
        raise ProvenanceError(f"{deb}: no provenance is served ({provenance_path(deb)})")
    payload, keyid = verified_statement(envelope_text, public_key)
    served = hashlib.sha256(deb_bytes).hexdigest()
    subjects = {s.get("name"): (s.get("digest") or {}).get("sha256") for s in payload["subject"]}
    if deb not in subjects:
        raise ProvenanceError(f"{deb}: the provenance is about {', '.join(subjects)}, not it")
    if served != subjects[deb]:
        raise ProvenanceError(
            f"{deb}: the served .deb's sha256 is {served}, the signed provenance says "
            f"{subjects[deb]}: the file is not the one that was built"
        )
    if served != index_sha256:
        raise ProvenanceError(
            f"{deb}: the served .deb's sha256 is {served}, its index says {index_sha256}"
        )
    definition = payload["predicate"]["buildDefinition"]
    commits = [d["digest"].get("gitCommit") for d in definition["resolvedDependencies"]]
    commit = next((c for c in commits if c), "")
    if not commit or control_commit != commit:
        raise ProvenanceError(
            f"{deb}: the provenance names commit {commit or 'none'}, the package's "
            f"Conveyor-Commit field {control_commit or 'none'}"
        )
    short = deb.split("_")[1].split(".g")[-1].split("+")[0] if ".g" in deb else ""
    if short and not commit.startswith(short):
        raise ProvenanceError(f"{deb}: its version names commit {short}, the provenance {commit}")
    run = payload["predicate"]["runDetails"]
    build = f"{run['metadata'].get('invocationId')} on {run['builder']['version'].get('worker')}"
    proof = Proof(deb=deb, sha256=served, commit=commit, keyid=keyid, build=build)
    records = [b for b in run.get("byproducts", []) if b.get("name", "").endswith(".buildinfo")]
    if records:
        proof.buildinfo = check_buildinfo(deb, served, records[0], buildinfo_of)
    return proof


def check_buildinfo(deb: str, deb_sha256: str, record: dict, buildinfo_of) -> str:
    """The .buildinfo the provenance names, as served (`buildinfo_of(name)` -> bytes or None):
    its sha256 is the signed one, and it lists the .deb with the served .deb's sha256. What it
    proved, in words; ProvenanceError otherwise."""
    from debian import deb822

    name, signed = record["name"], (record.get("digest") or {}).get("sha256")
    data = buildinfo_of(name) if buildinfo_of else None
    if data is None:
        raise ProvenanceError(
            f"{deb}: its .buildinfo {name} is not served ({buildinfo_path(name)})"
        )
    if hashlib.sha256(data).hexdigest() != signed:
        raise ProvenanceError(
            f"{deb}: the served {name} is not the one the provenance names (sha256 {signed})"
        )
    info = deb822.BuildInfo(data.decode("utf-8", "replace"))
    listed = {c["name"]: c["sha256"] for c in info.get("Checksums-Sha256") or []}
    if listed.get(deb) != deb_sha256:
        raise ProvenanceError(
            f"{deb}: its .buildinfo {name} lists sha256 {listed.get(deb) or 'nothing'} for it, "
            f"the served .deb is {deb_sha256}"
        )
    depends = len((info.get("Installed-Build-Depends") or "").split(","))
    return (
        f"buildinfo {name}: as signed; it lists this .deb's sha256, built among {depends} "
        "installed packages"
    )


def control_field(deb_bytes: bytes, name: str) -> str | None:
    """A field of a .deb's control file (python-debian), or None."""
    import io

    from debian.debfile import DebFile

    try:
        return DebFile(fileobj=io.BytesIO(deb_bytes)).debcontrol().get(name)
    except Exception:  # not a .deb at all: its digest check says so first
        return None


def served_debs(settings, package: str, version: str, text_of) -> dict[str, dict]:
    """{.deb file name: its index stanza (with the distributions listing it)} of `package` at
    `version` (a CI version: every target release's), as the served indexes list them."""
    from conveyor import debformats
    from conveyor import targets
    from conveyor.served import index_components

    found: dict[str, dict] = {}
    for dist in settings.distributions:
        releases = settings.targets_of(dist)
        for url in index_components(settings, dist).values():
            for stanza in debformats.parse_packages_stanzas(text_of(url) or ""):
                ci_version = targets.base_of(stanza.get("Version", ""), releases)[0]
                if stanza.get("Package") == package and version in (stanza["Version"], ci_version):
                    entry = found.setdefault(stanza["Filename"].rsplit("/", 1)[-1], dict(stanza))
                    entry.setdefault("listed_in", []).append(dist)
    return found


def verify_served(settings, package: str, version: str, text_of, bytes_of) -> list[Proof]:
    """check() every served .deb of `package` at `version`: ProvenanceError on the first that
    does not prove out, or when none is served."""
    repo = settings.repository
    debs = served_debs(settings, package, version, text_of)
    if not debs:
        raise ProvenanceError(f"no distribution serves {package} {version}")
    public_key = bytes_of(repo.public_key_url)
    if not public_key:
        raise ProvenanceError(f"the repository's key is not served at {repo.public_key_url}")
    proofs = []
    for deb, stanza in sorted(debs.items()):
        deb_bytes = bytes_of(repo.url + stanza["Filename"])
        if deb_bytes is None:
            raise ProvenanceError(f"{deb} is listed but not served ({stanza['Filename']})")
        proofs.append(
            check(
                deb,
                deb_bytes,
                stanza.get("SHA256", ""),
                text_of(repo.url + provenance_path(deb)),
                public_key,
                control_field(deb_bytes, "Conveyor-Commit"),
                lambda name: bytes_of(repo.url + buildinfo_path(name)),
            )
        )
    return proofs
