"""Shared fixtures: real models trained in seconds on sklearn's digits, and a CLI runner."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

import numpy as np
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]


def _load_example():
    spec = importlib.util.spec_from_file_location("digits_build", ROOT / "examples" / "digits" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


digits_build = _load_example()


class Cli:
    """Runs edgepack in-process (TensorFlow stays imported between tests) with stderr kept apart."""

    def __init__(self):
        self.runner = CliRunner()

    def __call__(self, *args, cwd: Path | None = None):
        from edgepack.cli import cli

        old = Path.cwd()
        if cwd:
            os.chdir(cwd)
        try:
            return self.runner.invoke(cli, [str(a) for a in args])
        finally:
            os.chdir(old)


@pytest.fixture(scope="session")
def run():
    """``run("quantize", ...)`` -> click Result with exit_code, stdout, stderr."""
    return Cli()


@pytest.fixture(scope="session")
def digits(tmp_path_factory) -> dict:
    """A trained Keras 3 digits CNN (model.keras) with train.npz and val.npz."""
    return digits_build.build(tmp_path_factory.mktemp("digits"), flavor="keras3", epochs=8)


@pytest.fixture(scope="session")
def tfkeras_digits(tmp_path_factory) -> dict:
    """The same CNN built and saved by tf_keras (Keras 2)."""
    return digits_build.build(tmp_path_factory.mktemp("digits_tfk"), flavor="tf_keras", epochs=8)


@pytest.fixture(scope="session")
def regression(tmp_path_factory) -> dict:
    """A Keras 3 regression model predicting the digit's value as a float, and its val data."""
    import keras

    out = tmp_path_factory.mktemp("regression")
    (x_train, y_train), (x_val, y_val) = digits_build.digits_split()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    model.fit(x_train, y_train.astype("float32"), epochs=20, batch_size=64, verbose=0)
    model.save(out / "reg.keras")
    np.savez(out / "train.npz", x=x_train, y=y_train.astype("float32"))
    np.savez(out / "val.npz", x=x_val, y=y_val.astype("float32"))
    return {"model": out / "reg.keras", "train": out / "train.npz", "val": out / "val.npz"}


@pytest.fixture(scope="session")
def bn_residual(tmp_path_factory) -> dict:
    """The BatchNorm residual CNN (Keras 3, 16x16 digits) with train.npz and val.npz
    (``batchnorm_model.py``), trained once for the BatchNorm and the channel-pruning tests."""
    from batchnorm_model import build

    return build(tmp_path_factory.mktemp("bn-residual"))


@pytest.fixture(scope="session")
def untrained_digits(tmp_path_factory, digits) -> Path:
    """The digits CNN with random weights: a float model about 80 points worse than ``digits``."""
    import keras

    keras.utils.set_random_seed(1)
    model = digits_build.make_cnn(keras)
    path = tmp_path_factory.mktemp("untrained") / "untrained.keras"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def tflite_models(tmp_path_factory, digits) -> dict:
    """The Keras 3 digits model converted in every mode (int8 with float I/O and with int8 I/O)."""
    from edgepack.loading.data import DataSpec
    from edgepack.steps.quantize import QuantizeConfig, quantize

    out = tmp_path_factory.mktemp("tflite")
    calibration = DataSpec(source=str(digits["train"]))
    models = {}
    for name, mode, io in [("float32", "float32", "float32"), ("float16", "float16", "float32"),
                           ("dynamic", "dynamic", "float32"), ("int8", "int8", "float32"),
                           ("int8_io", "int8", "int8"), ("int16x8", "int16x8", "float32")]:
        config = QuantizeConfig(model=digits["model"], output=out / f"{name}.tflite", mode=mode, io=io,
                                calibration=calibration if mode in ("int8", "int16x8") else None)
        models[name] = quantize(config).path
    return models


def interpreter_accuracy(tflite_path: Path, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy computed independently of edgepack: one sample at a time through LiteRT."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tflite_path))
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    correct = 0
    for row, label in zip(x, y):
        value = row[None].astype(np.float32)
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            value = np.clip(np.round(value / scale) + zero, -128 if inp["dtype"] == np.int8 else 0,
                            127 if inp["dtype"] == np.int8 else 255).astype(inp["dtype"])
        interpreter.set_tensor(inp["index"], value)
        interpreter.invoke()
        correct += int(np.argmax(interpreter.get_tensor(out["index"])[0]) == label)
    return correct / len(y)


def without_steps(recipe: Path, *steps: str) -> None:
    """Rewrite the recipe file without the lines of the named steps (``  - prune: {...}``)."""
    recipe.write_text("".join(line for line in recipe.read_text().splitlines(keepends=True)
                              if not line.startswith(tuple(f"  - {step}:" for step in steps))))


def edgepack_subprocess(*args, cwd=None, env=None, timeout=180):
    """Run the real ``python -m edgepack`` in a child process (for start-up and import checks)."""
    import subprocess

    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "edgepack", *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result, code: int, *fragments: str, progress: bool = False) -> str:
    """The contract's error shape: the exit code, one line on stderr, no traceback.

    With ``progress``, progress lines may come first; the error is then the one and last line
    starting with ``edgepack: error:``."""
    stderr = result.stderr.strip()
    assert result.exit_code == code, (result.exit_code, result.stdout, stderr)
    if progress:
        errors = [line for line in stderr.splitlines() if line.startswith("edgepack: error:")]
        assert len(errors) == 1 and stderr.splitlines()[-1] == errors[0], stderr
        stderr = errors[0]
    assert len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith("edgepack: error: "), stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in stderr, (fragment, stderr)
    return stderr
