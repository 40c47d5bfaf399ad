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
    child, tmp, dist = start_run(model, tmp_path)
    assert child.poll() is None, child.communicate()
    child.send_signal(signum)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == code, stderr
    lines = stderr.strip().splitlines()
    assert lines[-1] == f"edgepack: error: {word}" and "Traceback" not in stderr
    assert list(dist.iterdir()) == [], "no staging folder beside the output"
    assert list(tmp.iterdir()) == [], "nothing left in TMPDIR (edgepack's or TensorFlow's)"


def test_a_second_sigterm_during_cleanup_still_leaves_nothing(model, tmp_path):
    child, tmp, dist = start_run(model, tmp_path)
    child.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 143, stderr
    assert list(dist.iterdir()) == [] and list(tmp.iterdir()) == []


def test_no_process_outlives_a_terminated_run(model, tmp_path):
    child, tmp, dist = start_run(model, tmp_path)
    group = os.getpgid(child.pid)
    child.send_signal(signal.SIGTERM)
    child.communicate(timeout=120)
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.killpg(group, 0)
