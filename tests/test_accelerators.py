"""Edge TPU and GPU readiness, in inspect and in Coral / phone-GPU recipe runs.

No Edge TPU, Edge TPU compiler or GPU is on this machine: the compiler is played by a STAND-IN
executable (see test_edgetpu_compiler.py), and GPU delegation is the static prediction only.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import assert_one_line_error
from test_edgetpu_compiler import ALL_MAPPED, _stand_in

CORAL = """\
name: coral
device: coral-usb
model: {model}
data: {{train: {train}, val: {val}}}
steps:
  - quantize: {{mode: int8, io: int8, samples: 100}}
gates: {{max_accuracy_drop: 5.0}}
output: {output}
"""

GPU = """\
name: phone-gpu
device: android-phone-gpu
model: {model}
data: {{val: {val}}}
steps:
  - quantize: {{mode: float16}}
output: {output}
"""


@pytest.fixture(scope="module")
def leaky_model(tmp_path_factory, digits):
    """A small CNN with a LeakyReLU, an op the Edge TPU does not run."""
    import keras

    keras.utils.set_random_seed(0)
    train = np.load(digits["train"])
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3, padding="same"),
                              keras.layers.LeakyReLU(negative_slope=0.1), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(train["x"], train["y"], epochs=2, verbose=0)
    path = tmp_path_factory.mktemp("leaky") / "leaky.keras"
    model.save(path)
    return path


def _gpu(run, path) -> dict:
    return json.loads(run("inspect", path, "--json").stdout)["gpu"]


def test_gpu_prediction_float_static_batch_is_fully_delegated(run, digits, tmp_path):
    for mode in ("float32", "float16"):
        out = tmp_path / f"{mode}.tflite"
        assert run("quantize", digits["model"], "-o", out, "--mode", mode, "--static-batch").exit_code == 0
        gpu = _gpu(run, out)
        assert gpu["fully_delegated"] and gpu["ops_on_gpu"] == gpu["ops_total"], gpu["cpu_ops"]


def test_gpu_prediction_dynamic_batch_leaves_shape_ops_on_the_cpu(run, tflite_models):
    gpu = _gpu(run, tflite_models["float32"])
    assert not gpu["fully_delegated"]
    assert "SHAPE" in {op["op"] for op in gpu["cpu_ops"]}
    assert 0 < gpu["ops_on_gpu"] < gpu["ops_total"]


def test_gpu_prediction_int8_model_is_not_delegated(run, tflite_models):
    gpu = _gpu(run, tflite_models["int8_io"])
    assert gpu["ops_on_gpu"] == 0 and "int8" in gpu["cpu_ops"][0]["reason"]


def test_coral_recipe_with_an_unsupported_op_fails_naming_it(run, leaky_model, digits, tmp_path):
    recipe = tmp_path / "coral.yaml"
    recipe.write_text(CORAL.format(model=leaky_model, train=digits["train"], val=digits["val"],
                                   output=tmp_path / "dist" / "coral"))
    stderr = assert_one_line_error(run("run", recipe), 7, "LEAKY_RELU", progress=True)
    assert "CPU" in stderr
    report = json.loads((tmp_path / "dist" / "coral.failed" / "report.json").read_text())
    assert report["edgetpu"]["prediction"]["first_unsupported"]["op"] == "LEAKY_RELU"
    assert "LEAKY_RELU" in (tmp_path / "dist" / "coral.failed" / "report.html").read_text()
    import keras  # the fix-it row names the Keras layer the test built, and the fix

    leaky = next(layer.name for layer in keras.models.load_model(leaky_model).layers
                 if isinstance(layer, keras.layers.LeakyReLU))
    fix = next(f for f in report["edgetpu"]["fixes"] if f["op"] == "LEAKY_RELU")
    assert fix["layer"] == leaky and fix["fix"] == "use ReLU or PReLU instead of LeakyReLU"
    markdown = (tmp_path / "dist" / "coral.failed" / "report.md").read_text()
    assert "Fix-it" in markdown and f"| {leaky} |" in markdown and 'id="fixes"' in \
        (tmp_path / "dist" / "coral.failed" / "report.html").read_text()


def test_coral_recipe_reports_the_prediction_and_that_no_compiler_is_installed(run, digits, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    recipe = tmp_path / "coral.yaml"
    recipe.write_text(CORAL.format(model=digits["model"], train=digits["train"], val=digits["val"],
                                   output=tmp_path / "dist" / "coral"))
    result = run("run", recipe, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["edgetpu"]["prediction"]["ready"] is True
    assert "not installed" in report["edgetpu"]["compiler_note"]
    assert "Edge TPU prediction" in (tmp_path / "dist" / "coral" / "report.md").read_text()


def test_coral_recipe_with_a_stand_in_compiler_bundles_model_edgetpu(run, digits, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stand_in(bin_dir, ALL_MAPPED)  # says 7 ops, all mapped: the static-batch digits CNN has 7
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    recipe = tmp_path / "coral.yaml"
    recipe.write_text(CORAL.format(model=digits["model"], train=digits["train"], val=digits["val"],
                                   output=tmp_path / "dist" / "coral"))
    result = run("run", recipe, "--json")
    assert result.exit_code == 0, result.stderr
    bundle = tmp_path / "dist" / "coral"
    assert (bundle / "model_edgetpu.tflite").exists()
    assert "model_edgetpu.tflite" in (bundle / "SHA256SUMS").read_text()
    assert run("verify", bundle).exit_code == 0
    comparison = json.loads(result.stdout)["edgetpu"]["comparison"]
    assert comparison["compiler_ops_on_edgetpu"] == 7 and comparison["agrees"] is True


def test_phone_gpu_recipe_reports_predicted_delegation(run, digits, tmp_path):
    recipe = tmp_path / "gpu.yaml"
    recipe.write_text(GPU.format(model=digits["model"], val=digits["val"], output=tmp_path / "dist" / "gpu"))
    result = run("run", recipe, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["gpu"]["prediction"]["fully_delegated"] is True
    assert report["latency"]["estimated"] is True
    assert "GPU delegation (predicted)" in (tmp_path / "dist" / "gpu" / "report.html").read_text()
