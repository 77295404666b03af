import hashlib
import json
import re

import pytest

from snowbird.app import PACKAGE_STATIC
from snowbird.assets import build_assets, hashed_name, main


def test_hashed_name():
    digest = hashlib.sha256(b"body{}").hexdigest()[:8]
    assert hashed_name("app.css", b"body{}") == f"app.{digest}.css"
    assert hashed_name("vendor.min.js", b"x").startswith("vendor.min.")
    assert hashed_name("LICENSE", b"x") == "LICENSE." + hashlib.sha256(b"x").hexdigest()[:8]
    assert hashed_name(".env", b"x").startswith(".env.")


def test_build_assets_copies_package_static(tmp_path):
    target = tmp_path / "out" / "static"  # created, parents too
    manifest = build_assets(target)
    assert set(manifest) == {"app.css", "app.js"}
    for original, hashed in manifest.items():
        assert re.fullmatch(r"app\.[0-9a-f]{8}\.(css|js)", hashed)
        data = (target / hashed).read_bytes()
        assert data == (PACKAGE_STATIC / original).read_bytes()
        assert hashed == hashed_name(original, data)
    assert json.loads((target / "manifest.json").read_text()) == manifest
    assert not list(target.glob(".tmp-*"))


def test_build_assets_is_idempotent(tmp_path):
    first = build_assets(tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert build_assets(tmp_path) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == files


def test_build_assets_prunes_stale_copies(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "site.css").write_text("a{}")
    (src / ".swp").write_text("ignored")
    (src / "sub").mkdir()
    out = tmp_path / "out"
    old = build_assets(out, src)["site.css"]
    (out / "keep.txt").write_text("not ours")
    (src / "site.css").write_text("a{color:red}")
    new = build_assets(out, src)["site.css"]
    assert new != old
    assert not (out / old).exists()
    assert (out / new).read_text() == "a{color:red}"
    assert (out / "keep.txt").exists()
    assert json.loads((out / "manifest.json").read_text()) == {"site.css": new}


def test_build_assets_missing_source(tmp_path):
    with pytest.raises(FileNotFoundError):
        build_assets(tmp_path / "out", tmp_path / "missing")


def test_write_failure_leaves_no_temp_file(tmp_path, monkeypatch):
    import snowbird.assets as assets

    def boom(*a):
        raise OSError("disk full")

    monkeypatch.setattr(assets.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        build_assets(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_main_builds_and_reports(tmp_path, capsys):
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert f"app.css -> {manifest['app.css']}" in out
    assert "(2 assets)" in out


def test_main_quiet(tmp_path, capsys):
    assert main(["-q", str(tmp_path)]) == 0
    assert capsys.readouterr().out == ""


def test_main_error(tmp_path, capsys):
    assert main(["--source", str(tmp_path / "missing"), str(tmp_path / "out")]) == 1
    assert "no static directory" in capsys.readouterr().err


def test_main_needs_target(capsys):
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 2
