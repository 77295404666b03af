import re

import pytest

import snowbird
from snowbird.app import COLUMNS, Board, SnowbirdApp, load_manifest, make_app, static_dir_from_env
from snowbird.assets import build_assets


def test_health(client):
    r = client.get("/health")
    assert r.code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"status": "ok", "version": snowbird.__version__}
    assert r.headers["Content-Length"] == str(len(r.body))


def test_index_lists_seeded_items_and_unbuilt_assets(client):
    r = client.get("/")
    assert r.code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    assert "<title>Snowbird sprint board</title>" in r.text
    assert "Package it with dh-virtualenv" in r.text
    # without a manifest, the page links the package's own files
    assert 'href="/static/app.css"' in r.text
    assert 'src="/static/app.js"' in r.text
    for column in COLUMNS:
        assert f'data-column="{column}"' in r.text


def test_index_uses_manifest_when_built(client, static_dir):
    manifest = build_assets(static_dir)
    r = client.get("/")
    assert f'href="/static/{manifest["app.css"]}"' in r.text
    assert f'src="/static/{manifest["app.js"]}"' in r.text
    assert re.fullmatch(r"app\.[0-9a-f]{8}\.css", manifest["app.css"])


def test_index_escapes_titles(client):
    client.post("/api/items", {"title": "<script>alert(1)</script>"})
    text = client.get("/").text
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_index_shows_points_per_column(client_for):
    app = make_app(static_dir="/nonexistent", board=Board(seed=[("a", 3, "todo"), ("b", 5, "todo")]))
    text = client_for(app).get("/").text
    assert "todo <small>(8 pts)</small>" in text
    assert "done <small>(0 pts)</small>" in text


def test_list_items(client):
    r = client.get("/api/items")
    assert r.code == 200
    body = r.json()
    assert body["count"] == 3 == len(body["items"])
    assert [i["id"] for i in body["items"]] == [1, 2, 3]
    assert set(body["items"][0]) == {"id", "title", "points", "column"}


def test_list_items_filtered_by_column(client):
    body = client.get("/api/items", query="column=doing").json()
    assert body["count"] == 1
    assert body["items"][0]["title"] == "Serve hashed static assets"


def test_list_items_unknown_column(client):
    r = client.get("/api/items", query="column=later")
    assert r.code == 400
    assert "unknown column" in r.json()["error"]


def test_create_item(client):
    r = client.post("/api/items", {"title": "  Write the README ", "points": 2, "column": "doing"})
    assert r.code == 201
    item = r.json()
    assert item == {"id": 4, "title": "Write the README", "points": 2, "column": "doing"}
    assert r.headers["Location"] == "/api/items/4"
    assert client.get("/api/items/4").json() == item
    assert client.get("/api/items").json()["count"] == 4


def test_create_item_defaults(client):
    item = client.post("/api/items", {"title": "x"}).json()
    assert (item["points"], item["column"]) == (1, "todo")


@pytest.mark.parametrize(
    "body, message",
    [
        ({"points": 1}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "at most 200"),
        ({"title": "x", "points": -1}, "points"),
        ({"title": "x", "points": "3"}, "points"),
        ({"title": "x", "points": True}, "points"),
        ({"title": "x", "column": "someday"}, "column"),
        ([1, 2], "JSON object"),
    ],
)
def test_create_item_invalid(client, body, message):
    r = client.post("/api/items", body)
    assert r.code == 400
    assert message in r.json()["error"]
    assert client.get("/api/items").json()["count"] == 3


def test_create_item_bad_json(client):
    r = client.post("/api/items", b"{not json", content_type="application/json")
    assert r.code == 400
    assert r.json() == {"error": "body is not valid JSON"}


def test_create_item_empty_body(client):
    assert client.post("/api/items", b"", content_type="application/json").code == 400


def test_create_item_needs_json_content_type(client):
    r = client.post("/api/items", b"title=x", content_type="application/x-www-form-urlencoded")
    assert r.code == 415


@pytest.mark.parametrize("length, code", [("abc", 400), (str(10**6), 413)])
def test_create_item_bad_content_length(client, length, code):
    r = client.post("/api/items", b"{}", content_type="application/json", environ={"CONTENT_LENGTH": length})
    assert r.code == code


def test_item_not_found(client):
    r = client.get("/api/items/99")
    assert r.code == 404
    assert r.json() == {"error": "no item 99"}


def test_unknown_path_is_404_text(client):
    r = client.get("/nope")
    assert r.code == 404
    assert r.headers["Content-Type"].startswith("text/plain")
    assert "nothing at /nope" in r.text


def test_unknown_api_path_is_404_json(client):
    r = client.get("/api/other")
    assert r.code == 404
    assert "error" in r.json()


@pytest.mark.parametrize("method, path", [("DELETE", "/"), ("POST", "/health"), ("PUT", "/api/items")])
def test_method_not_allowed(client, method, path):
    r = client.request(method, path)
    assert r.code == 405
    assert "Allow" in r.headers


def test_head_has_headers_but_no_body(client):
    r = client.request("HEAD", "/health")
    assert r.code == 200
    assert r.body == b""
    assert int(r.headers["Content-Length"]) > 0


def test_static_from_package(client):
    r = client.get("/static/app.css")
    assert r.code == 200
    assert r.headers["Content-Type"] == "text/css; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-cache"
    assert b"sprint board" in r.body
    js = client.get("/static/app.js")
    assert js.headers["Content-Type"] == "text/javascript; charset=utf-8"


def test_static_hashed_copy_is_immutable(client, static_dir):
    manifest = build_assets(static_dir)
    r = client.get("/static/" + manifest["app.js"])
    assert r.code == 200
    assert "immutable" in r.headers["Cache-Control"]
    assert r.body == (static_dir / manifest["app.js"]).read_bytes()


def test_static_does_not_serve_manifest_or_other_files(client, static_dir):
    build_assets(static_dir)
    (static_dir / "secret.txt").write_text("no")
    assert client.get("/static/manifest.json").code == 404
    assert client.get("/static/secret.txt").code == 404


@pytest.mark.parametrize("name", ["../app.py", "..%2fapp.py", ".hidden", "", "a/b.css", "missing.css"])
def test_static_rejects_bad_names(client, name):
    assert client.get("/static/" + name).code == 404


def test_static_unknown_type(tmp_path, monkeypatch, client_for):
    import snowbird.app as appmod

    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "blob.zzz-unknown").write_bytes(b"\x00\x01")
    (pkg / "logo.svg").write_bytes(b"<svg/>")
    monkeypatch.setattr(appmod, "PACKAGE_STATIC", pkg)
    c = client_for(make_app(static_dir=tmp_path / "none"))
    assert c.get("/static/blob.zzz-unknown").headers["Content-Type"] == "application/octet-stream"
    assert c.get("/static/logo.svg").headers["Content-Type"] == "image/svg+xml"


def test_load_manifest_tolerates_junk(tmp_path):
    assert load_manifest(tmp_path) == {}
    (tmp_path / "manifest.json").write_text("[not json")
    assert load_manifest(tmp_path) == {}
    (tmp_path / "manifest.json").write_text("[1, 2]")
    assert load_manifest(tmp_path) == {}
    (tmp_path / "manifest.json").write_text('{"a.css": "a.1.css", "b": 3}')
    assert load_manifest(tmp_path) == {"a.css": "a.1.css"}


def test_static_dir_from_env(monkeypatch, tmp_path):
    assert str(static_dir_from_env({})) == "/var/lib/snowbird/static"
    assert static_dir_from_env({"SNOWBIRD_STATIC_DIR": str(tmp_path)}) == tmp_path
    monkeypatch.setenv("SNOWBIRD_STATIC_DIR", str(tmp_path))
    app = make_app()
    assert isinstance(app, SnowbirdApp)
    assert app.static_dir == tmp_path


def test_board_is_independent_per_app():
    a, b = Board(), Board()
    a.add("only in a")
    assert len(a.items()) == 4
    assert len(b.items()) == 3
    assert b.get(4) is None
