"""Real signals to a real ``edgepack run``: SIGTERM and SIGHUP clean up like Ctrl-C, exit 128 + N,
one line on stderr, nothing left beside the output or in TMPDIR, even when a second signal comes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
RECIPE = """\
name: sig
device: host-cpu
model: {model}
data: {{train: {train}, val: {val}}}
steps:
  - prune: {{sparsity: 0.5, epochs: 200}}
output: {output}
"""


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny Keras model and data, built in a child process (this module never imports TensorFlow)."""
    folder = tmp_path_factory.mktemp("sigmodel")
    code = (
        "import sys, numpy as np, keras\n"
        "f = sys.argv[1]\n"
        "m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(32, activation='relu'),"
        " keras.layers.Dense(10, activation='softmax')])\n"
        "m.compile(loss='sparse_categorical_crossentropy', optimizer='adam')\n"
        "m.save(f + '/m.keras')\n"
    )
    subprocess.run([sys.executable, "-c", code, str(folder)], check=True, timeout=180,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    rng = np.random.default_rng(0)
    for name, rows in (("train", 3000), ("val", 100)):
        np.savez(folder / f"{name}.npz", x=rng.random((rows, 8, 8, 1), dtype=np.float32),
                 y=rng.integers(0, 10, rows))
    return folder


def start_run(model: Path, folder: Path) -> tuple[subprocess.Popen, Path, Path]:
    tmp = folder / "tmp"
    tmp.mkdir()
    recipe = folder / "sig.yaml"
    recipe.write_text(RECIPE.format(model=model / "m.keras", train=model / "train.npz", val=model / "val.npz",
                                    output=folder / "dist" / "{name}"))
    child = subprocess.Popen([sys.executable, "-m", "edgepack", "run", str(recipe)], cwd=folder,
                             env={**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 180
    while time.time() < deadline and not (any((folder / "dist").glob(".sig.staging-*"))
                                          and list(tmp.glob("edgepack-run-*/edgepack-work-*"))):
        time.sleep(0.2)
    time.sleep(4)  # into the training loop
    return child, tmp, folder / "dist"


@pytest.mark.parametrize("signum, code, word", [(signal.SIGTERM, 143, "terminated"),
                                                 (signal.SIGHUP, 129, "hung up")])
def test_a_termination_signal_cleans_up_and_exits_128_plus_n(model, tmp_path, signum, code, word):
    """Exit 128 + N, one line, nothing left beside the output or in TMPDIR, no process of its group alive."""
    child, tmp, dist = start_run(model, tmp_path)
    assert child.poll() is None, child.communicate()
    group = os.getpgid(child.pid)
    child.send_signal(signum)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == code, stderr
    lines = stderr.strip().splitlines()
    assert lines[-1] == f"edgepack: error: {word}" and "Traceback" not in stderr
    assert list(dist.iterdir()) == [], "no staging folder beside the output"
    assert list(tmp.iterdir()) == [], "nothing left in TMPDIR (edgepack's or TensorFlow's)"
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.killpg(group, 0)


def test_a_second_sigterm_during_cleanup_still_leaves_nothing(model, tmp_path):
    child, tmp, dist = start_run(model, tmp_path)
    child.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 143, stderr
    assert list(dist.iterdir()) == [] and list(tmp.iterdir()) == []


STEPS_RECIPE = """\
name: steps
device: host-cpu
model: {model}
data: {{train: {train}, val: {val}}}
steps:
{steps}output: {output}
"""
# The steps up to the one that receives the signal (the others are left out to keep the test short).
STEPS = {"prune": "  - prune: {sparsity: 0.5, epochs: 40}\n",
         "quantize": "  - quantize: {mode: int8, samples: 20000}\n",
         "evaluate": "  - quantize: {mode: float32}\n  - evaluate: {}\n",
         "profile": "  - quantize: {mode: float32}\n  - profile: {where: local, min_seconds: 120, max_seconds: 150}\n"}
STEP_LINES = {"prune": "] prune", "quantize": "] int8 .tflite", "evaluate": "] evaluate", "profile": "] profile"}
VAL_ROWS = {"evaluate": 100_000}  # ~0.1 s of evaluation: the signal follows its step line at once


def _marked_processes(mark: str) -> list[int]:
    """Processes whose environment carries ``mark`` (every descendant of the run inherits it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if mark.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return [pid for pid in found if pid != os.getpid()]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("step, signum", [("prune", signal.SIGINT), ("quantize", signal.SIGTERM),
                                          ("evaluate", signal.SIGINT), ("profile", signal.SIGTERM)])
def test_a_signal_during_each_step_leaves_no_process(model, tmp_path, step, signum):
    """SIGINT or SIGTERM while ``run`` is in ``step`` (its progress line printed): exit 128 + N, and no process
    that the run started is alive afterwards (found by a mark in their environment, not by name). Each step
    gets one of the two signals, each signal two steps: both take the same path (``cli/signals.py``), and
    every signal's exit code and clean-up are checked on their own by the tests above."""
    mark = f"EDGEPACK_TEST_MARK={tmp_path.name}-{step}-{signum}"
    (tmp_path / "big").mkdir()
    rng = np.random.default_rng(0)
    rows = VAL_ROWS.get(step, 200)
    np.savez(tmp_path / "big" / "val.npz", x=rng.random((rows, 8, 8, 1), dtype=np.float32),
             y=rng.integers(0, 10, rows))
    recipe = tmp_path / "steps.yaml"
    recipe.write_text(STEPS_RECIPE.format(model=model / "m.keras", train=model / "train.npz", steps=STEPS[step],
                                          val=tmp_path / "big" / "val.npz", output=tmp_path / "dist" / "{name}"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), mark.split("=")[0]: mark.split("=")[1]}
    child = subprocess.Popen([sys.executable, "-m", "edgepack", "run", str(recipe)], cwd=tmp_path, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    seen = []
    for line in child.stderr:
        seen.append(line)
        if STEP_LINES[step] in line:
            break
    time.sleep({"prune": 1.5, "profile": 1.5, "quantize": 0.3}.get(step, 0.0))
    assert child.poll() is None, "".join(seen)
    child.send_signal(signum)
    _, rest = child.communicate(timeout=120)
    assert child.returncode == 128 + signum, "".join(seen) + rest
    deadline = time.time() + 5
    while _marked_processes(mark.split("=")[1]) and time.time() < deadline:
        time.sleep(0.1)
    assert _marked_processes(mark.split("=")[1]) == [], f"alive after the {step} step was stopped"
