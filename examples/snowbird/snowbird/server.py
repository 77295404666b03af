"""``snowbird``: serve the app with wsgiref.

Binds to $SNOWBIRD_BIND (default 127.0.0.1) and $SNOWBIRD_PORT (default 8020);
``--bind`` and ``--port`` override them.
"""

import argparse
import os
import signal
import socketserver
import sys
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
from wsgiref.simple_server import make_server as _wsgiref_make_server

from snowbird import __version__
from snowbird.app import make_app

DEFAULT_BIND = "127.0.0.1"
DEFAULT_PORT = 8020


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class RequestHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def parse_port(value):
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"port must be a number, not {value!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be from 0 to 65535, not {port}")
    return port


def bind_address(environ):
    """(host, port) from SNOWBIRD_BIND and SNOWBIRD_PORT."""
    host = environ.get("SNOWBIRD_BIND") or DEFAULT_BIND
    port = parse_port(environ.get("SNOWBIRD_PORT") or DEFAULT_PORT)
    return host, port


def make_server(host, port, app=None):
    """A threading wsgiref server for ``app`` (default: a new snowbird app)."""
    return _wsgiref_make_server(
        host,
        port,
        app if app is not None else make_app(),
        server_class=ThreadingWSGIServer,
        handler_class=RequestHandler,
    )


def _stop(signum, frame):
    raise KeyboardInterrupt


def main(argv=None, environ=None):
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog="snowbird", description="Serve the snowbird sprint board.")
    parser.add_argument("--bind", help=f"address to listen on (env SNOWBIRD_BIND, default {DEFAULT_BIND})")
    parser.add_argument("--port", help=f"port (env SNOWBIRD_PORT, default {DEFAULT_PORT})")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(argv)
    try:
        host, port = bind_address(environ)
        if args.bind:
            host = args.bind
        if args.port is not None:
            port = parse_port(args.port)
    except ValueError as e:
        parser.error(str(e))
    try:
        server = make_server(host, port)
    except OSError as e:
        print(f"snowbird: cannot listen on {host}:{port}: {e}", file=sys.stderr)
        return 1
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _stop)
    try:
        name, real_port = server.server_address[:2]
        print(f"snowbird {__version__} listening on http://{name}:{real_port}/", flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0
