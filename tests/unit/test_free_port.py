"""tests/integration/helpers.free_port: processes side by side (pytest-xdist workers, two test
runs) never get the same port, and a port handed out is free."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from tests.integration.helpers import PORTS
from tests.integration.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
GRAB = (
    "import sys\n"
    "from tests.integration.helpers import free_port\n"
    "print(' '.join(str(free_port()) for _ in range(40)), flush=True)\n"
    "sys.stdin.read()\n"
)  # holds its ports until told to end


def test_processes_side_by_side_never_share_a_port():
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", GRAB],
            cwd=ROOT,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    try:
        got = [set(map(int, proc.stdout.readline().split())) for proc in procs]
        mine = {free_port() for _ in range(40)}
    finally:
        for proc in procs:
            proc.communicate("")
    assert [len(ports) for ports in got] == [40, 40, 40] and len(mine) == 40
    everyone = [mine, *got]
    for i, a in enumerate(everyone):
        for b in everyone[i + 1 :]:
            assert not a & b
    assert all(port in PORTS for ports in everyone for port in ports)


def test_a_port_handed_out_can_be_bound():
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
