"""``snowbird-build-assets TARGET_DIR``: content-hashed copies of the static assets.

Each file of the package's ``static/`` directory is copied to TARGET_DIR under a
name carrying the first 8 hex digits of its SHA-256 (``app.css`` ->
``app.3f2a9c1d.css``), and ``manifest.json`` maps original to hashed names. The
app links the hashed names, so browsers may cache them for ever. Copies listed
by an earlier manifest that the new one no longer lists are removed.
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

from snowbird import __version__
from snowbird.app import MANIFEST, PACKAGE_STATIC, load_manifest

HASH_DIGITS = 8


def hashed_name(name, data):
    """``app.css`` + content -> ``app.<8 hex digits>.css``."""
    digest = hashlib.sha256(data).hexdigest()[:HASH_DIGITS]
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        return f"{name}.{digest}"
    return f"{stem}.{digest}.{suffix}"


def _write_atomic(path, data):
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def build_assets(target_dir, source_dir=PACKAGE_STATIC):
    """Build the hashed copies and the manifest in ``target_dir``; return the manifest."""
    source_dir, target_dir = Path(source_dir), Path(target_dir)
    if not source_dir.is_dir():
        raise FileNotFoundError(f"no static directory {source_dir}")
    target_dir.mkdir(parents=True, exist_ok=True)
    old = load_manifest(target_dir)
    manifest = {}
    for src in sorted(source_dir.iterdir()):
        if not src.is_file() or src.name.startswith("."):
            continue
        data = src.read_bytes()
        name = hashed_name(src.name, data)
        dest = target_dir / name
        if not (dest.is_file() and dest.read_bytes() == data):
            _write_atomic(dest, data)
        manifest[src.name] = name
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    _write_atomic(target_dir / MANIFEST, text.encode("utf-8"))
    current = set(manifest.values())
    for stale in sorted(set(old.values()) - current):
        path = target_dir / stale
        if path.parent == target_dir and path.is_file():
            path.unlink()
    return manifest


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="snowbird-build-assets",
        description="Copy snowbird's static assets to content-hashed names and write manifest.json.",
    )
    parser.add_argument("target_dir", metavar="TARGET_DIR", help="where to put the built assets")
    parser.add_argument(
        "--source", default=str(PACKAGE_STATIC), help="static directory (default: the package's)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(argv)
    try:
        manifest = build_assets(args.target_dir, args.source)
    except OSError as e:
        print(f"snowbird-build-assets: {e}", file=sys.stderr)
        return 1
    if not args.quiet:
        for original, hashed in manifest.items():
            print(f"{original} -> {hashed}")
        print(f"wrote {Path(args.target_dir) / MANIFEST} ({len(manifest)} assets)")
    return 0
