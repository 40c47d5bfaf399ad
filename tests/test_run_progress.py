"""Progress inside `edgepack run` on a terminal (a real pseudo-terminal): the prune step's live bar is
drawn under its step line, and the profile step says what it does. (In a pipe the same progress is
plain lines: tests/test_prune.py and tests/test_run.py.)"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time

from conftest import ROOT

RECIPE = """\
name: bar
device: host-cpu
model: {model}
data: {{train: {train}, val: {val}}}
steps:
  - prune: {{sparsity: 0.5, epochs: 3}}
output: {output}
"""


def write_recipe(folder, digits):
    path = folder / "bar.yaml"
    path.write_text(RECIPE.format(
        model=digits["model"], train=digits["train"], val=digits["val"], output=folder / "dist" / "{name}"))
    return path


def read_all(fd: int, process: subprocess.Popen, timeout: float) -> bytes:
    chunks, deadline = [], time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    return b"".join(chunks)


def test_run_draws_a_live_training_bar_on_a_terminal(digits, tmp_path):
    recipe = write_recipe(tmp_path, digits)
    main, child_end = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "edgepack", "run", str(recipe), "--estimate"], cwd=tmp_path,
                               stdin=child_end, stdout=child_end, stderr=child_end, close_fds=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120", "TERM": "xterm"})
    os.close(child_end)
    screen = read_all(main, process, 300).decode("utf-8", "replace")
    process.wait(timeout=60)
    os.close(main)
    assert process.returncode == 0, screen[-3000:]
    step_line = screen.index("prune 0.5")
    assert "━" in screen[step_line:], "a progress bar is drawn after the step line"
    assert re.search(r"\x1b\[[0-9;]*[A-Za-z]", screen), "drawn in place with terminal control codes"
    assert re.search(r"prune epoch [123]/3", screen)
    assert "profile: estimating from the device profile" in screen and "profile: p50 " in screen
