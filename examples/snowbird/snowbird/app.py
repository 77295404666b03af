"""The WSGI application: a sprint board with an HTML page and a JSON API.

Routes:

``GET /``                 the board (HTML), linking the static assets
``GET /health``           ``{"status": "ok", "version": ...}``
``GET /api/items``        every item; ``?column=todo`` filters
``POST /api/items``       adds an item from a JSON body ``{"title", "points", "column"}``
``GET /api/items/<id>``   one item
``GET /static/<name>``    a static asset (built, content-hashed copies first)
"""

import html
import json
import mimetypes
import os
import re
import threading
from pathlib import Path
from urllib.parse import parse_qs

from snowbird import __version__

PACKAGE_STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_STATIC_DIR = "/var/lib/snowbird/static"
MANIFEST = "manifest.json"
COLUMNS = ("todo", "doing", "done")
MAX_BODY = 64 * 1024
MAX_TITLE = 200

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")
_ITEM_PATH = re.compile(r"^/api/items/(\d+)$")
_TYPES = {".css": "text/css", ".js": "text/javascript", ".json": "application/json"}

SEED_ITEMS = (
    ("Sketch the sprint board", 2, "done"),
    ("Serve hashed static assets", 3, "doing"),
    ("Package it with dh-virtualenv", 5, "todo"),
)


class HTTPError(Exception):
    """An error answer: status line and a message for the body."""

    def __init__(self, status, message, headers=()):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = list(headers)


class Board:
    """The sprint board's items, kept in memory (thread-safe)."""

    def __init__(self, seed=SEED_ITEMS):
        self._lock = threading.Lock()
        self._items = []
        self._next_id = 1
        for title, points, column in seed:
            self.add(title, points, column)

    def add(self, title, points=1, column="todo"):
        if not isinstance(title, str) or not title.strip():
            raise ValueError("title must be a non-empty string")
        title = title.strip()
        if len(title) > MAX_TITLE:
            raise ValueError(f"title must be at most {MAX_TITLE} characters")
        if isinstance(points, bool) or not isinstance(points, int) or not 0 <= points <= 100:
            raise ValueError("points must be an integer from 0 to 100")
        if column not in COLUMNS:
            raise ValueError(f"column must be one of {', '.join(COLUMNS)}")
        with self._lock:
            item = {"id": self._next_id, "title": title, "points": points, "column": column}
            self._next_id += 1
            self._items.append(item)
            return dict(item)

    def get(self, item_id):
        with self._lock:
            for item in self._items:
                if item["id"] == item_id:
                    return dict(item)
        return None

    def items(self, column=None):
        with self._lock:
            return [dict(i) for i in self._items if column is None or i["column"] == column]

    def points(self):
        """Story points per column."""
        totals = dict.fromkeys(COLUMNS, 0)
        for item in self.items():
            totals[item["column"]] += item["points"]
        return totals


def static_dir_from_env(environ=None):
    environ = os.environ if environ is None else environ
    return Path(environ.get("SNOWBIRD_STATIC_DIR") or DEFAULT_STATIC_DIR)


def load_manifest(static_dir):
    """The asset manifest (original name -> hashed name), or {} when absent or unreadable."""
    try:
        with open(Path(static_dir) / MANIFEST, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(manifest, dict):
        return {}
    return {k: v for k, v in manifest.items() if isinstance(k, str) and isinstance(v, str)}


class SnowbirdApp:
    """The WSGI callable."""

    def __init__(self, static_dir=None, board=None):
        self.static_dir = Path(static_dir) if static_dir is not None else static_dir_from_env()
        self.board = board if board is not None else Board()

    # -- WSGI -----------------------------------------------------------------

    def __call__(self, environ, start_response):
        try:
            status, headers, body = self.route(environ)
        except HTTPError as e:
            status, headers, body = self.error(environ, e)
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        if environ.get("REQUEST_METHOD") == "HEAD":
            return [b""]
        return [body]

    def route(self, environ):
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "") or "/"
        if path == "/":
            self.allow(method, "GET")
            return self.index()
        if path == "/health":
            self.allow(method, "GET")
            return self.json("200 OK", {"status": "ok", "version": __version__})
        if path == "/api/items":
            self.allow(method, "GET", "POST")
            if method == "POST":
                return self.create_item(environ)
            return self.list_items(environ)
        match = _ITEM_PATH.match(path)
        if match:
            self.allow(method, "GET")
            item = self.board.get(int(match.group(1)))
            if item is None:
                raise HTTPError("404 Not Found", f"no item {match.group(1)}")
            return self.json("200 OK", item)
        if path.startswith("/static/"):
            self.allow(method, "GET")
            return self.static(path[len("/static/") :])
        raise HTTPError("404 Not Found", f"nothing at {path}")

    @staticmethod
    def allow(method, *allowed):
        if method == "HEAD" and "GET" in allowed:
            return
        if method not in allowed:
            raise HTTPError(
                "405 Method Not Allowed", f"{method} not allowed", [("Allow", ", ".join(allowed))]
            )

    # -- answers ------------------------------------------------------------

    @staticmethod
    def json(status, data, headers=()):
        body = json.dumps(data, sort_keys=True).encode("utf-8")
        return status, [("Content-Type", "application/json"), *headers], body

    def error(self, environ, e):
        path = environ.get("PATH_INFO", "") or "/"
        if path.startswith("/api/") or path == "/health":
            return self.json(e.status, {"error": e.message}, e.headers)
        body = f"{e.status}\n{e.message}\n".encode("utf-8")
        return e.status, [("Content-Type", "text/plain; charset=utf-8"), *e.headers], body

    def list_items(self, environ):
        query = _parse_query(environ.get("QUERY_STRING", ""))
        column = query.get("column")
        if column is not None and column not in COLUMNS:
            raise HTTPError("400 Bad Request", f"unknown column {column!r}")
        items = self.board.items(column)
        return self.json("200 OK", {"items": items, "count": len(items)})

    def create_item(self, environ):
        ctype = environ.get("CONTENT_TYPE", "").split(";")[0].strip()
        if ctype != "application/json":
            raise HTTPError("415 Unsupported Media Type", "send application/json")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise HTTPError("400 Bad Request", "bad Content-Length") from None
        if length > MAX_BODY:
            raise HTTPError("413 Content Too Large", "body too large")
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise HTTPError("400 Bad Request", "body is not valid JSON") from None
        if not isinstance(data, dict):
            raise HTTPError("400 Bad Request", "body must be a JSON object")
        try:
            item = self.board.add(data.get("title"), data.get("points", 1), data.get("column", "todo"))
        except ValueError as e:
            raise HTTPError("400 Bad Request", str(e)) from None
        return self.json("201 Created", item, [("Location", f"/api/items/{item['id']}")])

    def asset_url(self, name, manifest):
        return "/static/" + manifest.get(name, name)

    def index(self):
        manifest = load_manifest(self.static_dir)
        totals = self.board.points()
        columns = []
        for column in COLUMNS:
            cards = "".join(
                f'<li class="card" data-id="{item["id"]}">'
                f'<span class="points">{item["points"]}</span>{html.escape(item["title"])}</li>'
                for item in self.board.items(column)
            )
            columns.append(
                f'<section class="column" data-column="{column}">'
                f"<h2>{column} <small>({totals[column]} pts)</small></h2>"
                f"<ul>{cards}</ul></section>"
            )
        page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Snowbird sprint board</title>
<link rel="stylesheet" href="{self.asset_url("app.css", manifest)}">
<script defer src="{self.asset_url("app.js", manifest)}"></script>
</head>
<body>
<header><h1>Snowbird</h1><span class="version">v{__version__}</span></header>
<main class="board">{"".join(columns)}</main>
<form class="new-item">
<input name="title" placeholder="New item" required maxlength="{MAX_TITLE}">
<input name="points" type="number" min="0" max="100" value="1">
<button type="submit">Add</button>
</form>
</body>
</html>
"""
        return "200 OK", [("Content-Type", "text/html; charset=utf-8")], page.encode("utf-8")

    def static(self, name):
        if not _SAFE_NAME.match(name):
            raise HTTPError("404 Not Found", "no such asset")
        hashed = set(load_manifest(self.static_dir).values())
        if name in hashed and (self.static_dir / name).is_file():
            path = self.static_dir / name
            cache = "public, max-age=31536000, immutable"
        elif (PACKAGE_STATIC / name).is_file():
            path = PACKAGE_STATIC / name
            cache = "no-cache"
        else:
            raise HTTPError("404 Not Found", "no such asset")
        suffix = path.suffix.lower()
        ctype = _TYPES.get(suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if ctype.startswith("text/"):
            ctype += "; charset=utf-8"
        return "200 OK", [("Content-Type", ctype), ("Cache-Control", cache)], path.read_bytes()


def _parse_query(query):
    return {k: v[-1] for k, v in parse_qs(query).items()}


def make_app(static_dir=None, board=None):
    """A new WSGI application; ``static_dir`` defaults to $SNOWBIRD_STATIC_DIR."""
    return SnowbirdApp(static_dir=static_dir, board=board)
