"""ops/services.py: a process killed by SIGTERM or SIGHUP still runs its `finally:`, where a
bench (bench/*.py) stops the master and workers it started."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from tests.integration.helpers import ROOT

SCRIPT = """
import sys, time
sys.path.insert(0, {root!r})
from ops import services
services.stopped_by_signals()
try:
    print("started", flush=True)
    time.sleep(30)
finally:
    print("services stopped", flush=True)
"""


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGHUP])
def test_a_killed_bench_still_stops_what_it_started(number):
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT.format(root=str(ROOT))], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline() == "started\n"
        started = time.monotonic()
        proc.send_signal(number)
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert out == "services stopped\n"
    assert proc.returncode == 128 + number
    assert time.monotonic() - started < 10  # ended by the signal, not by the sleep
