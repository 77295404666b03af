import io
import json
from wsgiref.util import setup_testing_defaults

import pytest

from snowbird.app import Board, make_app


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.code = int(status.split()[0])
        self.headers = dict(headers)
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8")

    def json(self):
        return json.loads(self.body)


class Client:
    """Calls a WSGI app in-process, the way a server would."""

    def __init__(self, app):
        self.app = app

    def request(self, method, path, body=b"", content_type=None, query="", environ=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode("utf-8")
            content_type = content_type or "application/json"
        extra = environ
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
        }
        if content_type:
            environ["CONTENT_TYPE"] = content_type
        environ.update(extra or {})
        setup_testing_defaults(environ)
        captured = {}

        def start_response(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers

        chunks = self.app(environ, start_response)
        return Response(captured["status"], captured["headers"], b"".join(chunks))

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=b"", **kw):
        return self.request("POST", path, body, **kw)


@pytest.fixture
def static_dir(tmp_path):
    d = tmp_path / "static"
    d.mkdir()
    return d


@pytest.fixture
def app(static_dir):
    return make_app(static_dir=static_dir, board=Board())


@pytest.fixture
def client(app):
    return Client(app)


@pytest.fixture
def client_for():
    """Make a Client for another app."""
    return Client
