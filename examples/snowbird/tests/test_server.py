import json
import threading
import urllib.request

import pytest

import snowbird
from snowbird import server


def test_bind_address_defaults():
    assert server.bind_address({}) == ("127.0.0.1", 8020)


def test_bind_address_from_env():
    env = {"SNOWBIRD_BIND": "0.0.0.0", "SNOWBIRD_PORT": "9000"}
    assert server.bind_address(env) == ("0.0.0.0", 9000)


@pytest.mark.parametrize("value", ["http", "-1", "65536"])
def test_parse_port_rejects(value):
    with pytest.raises(ValueError):
        server.parse_port(value)


def test_real_server_serves_health_and_page(tmp_path):
    from snowbird.app import make_app

    httpd = server.make_server("127.0.0.1", 0, make_app(static_dir=tmp_path))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        base = "http://127.0.0.1:%d" % httpd.server_address[1]
        with urllib.request.urlopen(base + "/health", timeout=5) as r:
            assert json.load(r) == {"status": "ok", "version": snowbird.__version__}
        with urllib.request.urlopen(base + "/", timeout=5) as r:
            assert b"Snowbird" in r.read()
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_main_serves_until_interrupted(monkeypatch, capsys):
    seen = {}

    def fake_serve_forever(self, poll_interval=0.5):
        seen["address"] = self.server_address
        seen["app"] = self.get_app()
        raise KeyboardInterrupt

    monkeypatch.setattr(server.ThreadingWSGIServer, "serve_forever", fake_serve_forever)
    env = {"SNOWBIRD_BIND": "127.0.0.1", "SNOWBIRD_PORT": "8020", "SNOWBIRD_STATIC_DIR": "/x"}
    assert server.main(["--port", "0"], environ=env) == 0
    assert seen["address"][0] == "127.0.0.1"
    assert seen["address"][1] != 8020  # --port beats the environment
    assert "listening on http://127.0.0.1:" in capsys.readouterr().out


def test_main_stops_on_sigterm(monkeypatch):
    import os
    import signal

    def serve_forever(self, poll_interval=0.5):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM should have stopped the server")  # pragma: no cover

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(server.ThreadingWSGIServer, "serve_forever", serve_forever)
    assert server.main(["--bind", "127.0.0.1", "--port", "0"], environ={}) == 0
    assert signal.getsignal(signal.SIGTERM) is before


def test_main_rejects_bad_port(capsys):
    with pytest.raises(SystemExit) as e:
        server.main([], environ={"SNOWBIRD_PORT": "eighty"})
    assert e.value.code == 2
    assert "port must be a number" in capsys.readouterr().err


def test_main_reports_busy_port(capsys):
    busy = server.make_server("127.0.0.1", 0)
    try:
        port = busy.server_address[1]
        assert server.main(["--port", str(port)], environ={}) == 1
        assert "cannot listen" in capsys.readouterr().err
    finally:
        busy.server_close()


def test_python_dash_m_snowbird(monkeypatch, capsys):
    import runpy
    import sys

    monkeypatch.setattr(sys, "argv", ["snowbird", "--version"])
    with pytest.raises(SystemExit) as e:
        runpy.run_module("snowbird", run_name="__main__")
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"snowbird {snowbird.__version__}"
