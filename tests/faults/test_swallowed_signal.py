"""A termination signal whose exception a library swallows (it arrived inside a ``__del__``) still
stops the run at the next safe point, and a bundle is never published after it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgepack.bundle.staging import publish, staging_folder
from edgepack.util import termination
from edgepack.util.termination import Terminated

ROOT = Path(__file__).resolve().parents[2]

SWALLOWED = """
import os, signal, sys
from edgepack.cli.signals import termination_handled
from edgepack.util.termination import Terminated, raise_if_terminated

class Finalised:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        sum(range(1000))  # the handler runs here; Python prints "Exception ignored" and goes on

with termination_handled():
    Finalised()
    print("went on after the swallowed signal", flush=True)
    try:
        raise_if_terminated()
    except Terminated as exc:
        sys.exit(exc.exit_code)
sys.exit(0)
"""


def test_a_signal_swallowed_inside_a_finaliser_is_raised_again_at_the_next_check():
    done = subprocess.run([sys.executable, "-c", SWALLOWED], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "went on after the swallowed signal" in done.stdout
    assert "Exception ignored" in done.stderr, "the first exception really was swallowed"
    assert done.returncode == 143, done.stderr


@pytest.fixture
def recorded_sigterm():
    termination.record(15)
    yield
    termination.clear()


def test_a_bundle_is_not_published_once_a_signal_was_recorded(tmp_path, recorded_sigterm):
    target = tmp_path / "bundle"
    with pytest.raises(Terminated):
        with staging_folder(target) as stage:
            (stage / "model.tflite").write_bytes(b"x")
            publish(stage, target)
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_a_signal_a_library_turned_into_another_error_still_exits_128_plus_n(run, monkeypatch, tmp_path):
    """Keras wraps what a layer call raises ("Exception encountered when calling layer ..."), and edgepack
    then reports the step's failure (exit 4). When a termination signal is what happened, the exit is the
    signal's: 143, one line."""
    import signal

    import edgepack.api
    from edgepack.errors import ModelError

    def interrupted(*args, **kwargs):
        termination.record(signal.SIGTERM)
        raise ModelError("tfmot could not prune m.keras: Exception encountered when calling layer")

    monkeypatch.setattr(edgepack.api, "inspect", interrupted)
    result = run("inspect", tmp_path / "m.tflite")
    assert result.exit_code == 143, (result.exit_code, result.stderr)
    assert result.stderr.strip() == "edgepack: error: terminated"
    assert termination.pending() is None
