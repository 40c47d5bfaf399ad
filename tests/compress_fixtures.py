"""Fixtures and helpers shared by test_prune.py and test_cluster.py (loaded with ``pytest_plugins``).

Loaded as a plugin so the session fixtures (pruned digits models) are computed once for both
modules. Everything checked here reads the saved files with Keras itself, never edgepack's report.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

KERNEL_CLASSES = ("Conv1D", "Conv2D", "Dense")


def load_saved(path: Path, flavor: str):
    """Load a saved model with the Keras that wrote it (not through edgepack)."""
    if flavor == "keras3":
        import keras

        return keras.models.load_model(path, compile=False)
    import tf_keras

    return tf_keras.models.load_model(path, compile=False)


def kernels(path: Path, flavor: str) -> dict[str, np.ndarray]:
    """Every Conv/Dense kernel of the saved model, by layer name."""
    model = load_saved(path, flavor)
    return {layer.name: np.asarray(layer.kernel.numpy()) for layer in model.layers
            if type(layer).__name__ in KERNEL_CLASSES}


def compress(run, command: str, model: Path, train: Path, output: Path, *args) -> dict:
    """Run ``edgepack COMMAND`` with --json; return the parsed document, stdout and stderr."""
    result = run(command, model, "--data", train, "-o", output, *args, "--json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return {"doc": json.loads(result.stdout), "stderr": result.stderr, "path": output}


def tiny_model(path: Path, *, out_units: int = 10, activation: str | None = "softmax", compile_loss=None,
               extra=None) -> Path:
    """A small Keras 3 model on 8x8x1 inputs, saved without a compile config unless ``compile_loss``."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1), name="image")
    h = keras.layers.Flatten()(inputs)
    if extra is not None:
        h = extra(h)
    h = keras.layers.Dense(24, activation="relu", name="hidden")(h)
    outputs = keras.layers.Dense(out_units, activation=activation, name="head")(h)
    model = keras.Model(inputs, outputs)
    if compile_loss:
        model.compile(optimizer="adam", loss=compile_loss)
    model.save(path)
    return path


def write_npz(path: Path, x: np.ndarray, y=None) -> Path:
    """Save x (and y when given) as an .npz data file."""
    if y is None:
        np.savez(path, x=x)
    else:
        np.savez(path, x=x, y=y)
    return path


@pytest.fixture(scope="session")
def flavored(digits, tfkeras_digits):
    """The trained digits models by flavor."""
    return {"keras3": digits, "tf_keras": tfkeras_digits}


@pytest.fixture(scope="session")
def pruned(run, flavored, tmp_path_factory) -> dict:
    """Both digits models after ``prune --sparsity 0.8 --epochs 2`` (with --val), by flavor."""
    out = tmp_path_factory.mktemp("pruned")
    return {flavor: compress(run, "prune", paths["model"], paths["train"], out / f"{flavor}.keras",
                             "--sparsity", "0.8", "--epochs", "2", "--val", paths["val"])
            for flavor, paths in flavored.items()}
