"""No edgepack child outlives edgepack, however edgepack dies: the converter worker and every child that
``run_child`` starts (latency probe, arena measurement, ssh) are killed by the kernel when their parent
dies, SIGKILL included (no cleanup code runs then)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PARENT = """
import sys, threading, time
from edgepack.quantization.conversion_worker import _Worker
from edgepack.util.child_process import run_child

worker = _Worker()
threading.Thread(target=run_child, args=(["sleep", "300"],), kwargs={"timeout": 600}, daemon=True).start()
time.sleep(1.0)
print("ready", flush=True)
time.sleep(300)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}/stat").exists() else "X"
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_children_die_with_a_killed_parent(how):
    parent = subprocess.Popen([sys.executable, "-c", PARENT], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert parent.stdout.readline().strip() == "ready"
        children = [int(pid) for pid in subprocess.run(["ps", "--ppid", str(parent.pid), "-o", "pid="],
                                                       capture_output=True, text=True).stdout.split()]
        assert len(children) == 2, children  # the converter worker and the sleep
        parent.send_signal(how)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 5
        while any(alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in children if alive(pid)], "a child outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
