# Conveyor worker. Copy (or link) this file into the worker's basedir and start it with
#   CONVEYOR_WORKER_NAME=local CONVEYOR_MASTER=127.0.0.1:9989 \
#   CONVEYOR_WORKER_PASSWORD_FILE=/path/to/secret buildbot-worker start BASEDIR
# Name, password and the master's address come from the environment, never from this file.
import os

from buildbot_worker.bot import Worker
from twisted.application import service
from twisted.python.log import FileLogObserver
from twisted.python.log import ILogObserver
from twisted.python.logfile import LogFile


def _setting(name):
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"conveyor worker: set {name} in the environment")
    return value


# The steps' PATH is the worker's environment's: its bin/ (Conveyor's tools and uv, copied
# there by ops/setup.py install_worker_tools), then the system's. Not this virtualenv's bin/:
# a project's build must find the system's python3 (pybuild runs `python3.X -m build`).
basedir = os.path.abspath(os.path.dirname(__file__))
application = service.Application('buildbot-worker')  # this exact text: buildbot-worker looks for it
logfile = LogFile.fromFullPath(os.path.join(basedir, "twistd.log"), rotateLength=10000000,
                               maxRotatedFiles=10)
application.setComponent(ILogObserver, FileLogObserver(logfile).emit)

workername = _setting("CONVEYOR_WORKER_NAME")
host, _, port = _setting("CONVEYOR_MASTER").rpartition(":")
if os.environ.get("CONVEYOR_WORKER_PASSWORD_FILE"):
    with open(os.environ["CONVEYOR_WORKER_PASSWORD_FILE"]) as fh:
        passwd = fh.read().strip()
else:
    passwd = _setting("CONVEYOR_WORKER_PASSWORD")

# CONVEYOR_WORKER_BIND: the address this host connects from (one of several on a machine)
bind = os.environ.get("CONVEYOR_WORKER_BIND")
connection_string = None
if bind:
    connection_string = "tcp:host={}:port={}:bindAddress={}".format(
        host.replace(":", r"\:"), port, bind.replace(":", r"\:"))
    host, port = None, None

s = Worker(host, int(port) if port else None, workername, passwd, basedir, keepalive=600,
           umask=0o022, maxdelay=10, numcpus=None, allow_shutdown=None, maxRetries=None,
           protocol="pb", useTls=0, delete_leftover_dirs=0, connection_string=connection_string,
           proxy_connection_string=None)
s.setServiceParent(application)
