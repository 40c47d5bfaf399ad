"""The fix-it list: each operator that falls back from the Edge TPU or the GPU delegate, the Keras layer that
made it, and what to change — in inspect, explore and a run's report.

Operators are identified independently: by index and name from the LiteRT interpreter's own operator
list, and the layer by the name the test gave it in Keras.
"""

from __future__ import annotations

import json

import pytest


def _ops(path) -> dict[int, str]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    return {op["index"]: op["op_name"] for op in interpreter._get_ops_details()}


@pytest.fixture(scope="module")
def gelu_tflite(tmp_path_factory):
    """A float MLP with a GELU activation layer named ``act_gelu``: GELU runs neither on the GPU
    delegate nor on the Edge TPU."""
    import keras

    from edgepack.util.tf import import_tf

    tf = import_tf()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    h = keras.layers.Dense(16, name="hidden")(inputs)
    h = keras.layers.Activation("gelu", name="act_gelu")(h)
    model = keras.Model(inputs, keras.layers.Dense(4, name="head")(h))
    path = tmp_path_factory.mktemp("gelu") / "gelu.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


def _fixes(run, path, device) -> list[dict]:
    result = run("inspect", path, "--device", device, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["fixes"]


def test_gelu_falls_back_from_the_gpu_with_its_layer_and_a_fix(run, gelu_tflite):
    ops = _ops(gelu_tflite)
    gelu = next(index for index, name in ops.items() if name == "GELU")
    fixes = {(fix["target"], fix["index"]): fix for fix in _fixes(run, gelu_tflite, "linux-gpu-server")}
    gpu = fixes[("gpu", gelu)]
    assert gpu["op"] == "GELU" and gpu["layer"] == "act_gelu"
    assert "ReLU" in gpu["fix"] and "swish" in gpu["fix"]
    # the delegate takes one run of operators: the head after the GELU stays on the CPU too, and says why
    after = fixes[("gpu", gelu + 1)]
    assert after["op"] == ops[gelu + 1] and after["layer"] == "head" and "one run" in after["fix"]
    assert fixes[("edgetpu", gelu)]["fix"] == "use ReLU instead of GELU"


def test_a_dynamic_batch_flatten_is_fixed_by_a_static_batch(run, tflite_models, digits):
    import keras

    flatten = next(layer.name for layer in keras.models.load_model(digits["model"]).layers
                   if isinstance(layer, keras.layers.Flatten))
    ops = _ops(tflite_models["int8_io"])
    shape = next(index for index, name in ops.items() if name == "SHAPE")
    fix = next(f for f in _fixes(run, tflite_models["int8_io"], "coral-usb")
               if f["target"] == "edgetpu" and f["index"] == shape)
    assert fix["layer"] == flatten and "--static-batch" in fix["fix"]


def test_inspect_lists_the_devices_fallbacks_and_counts_them_without_a_device(run, gelu_tflite):
    listed = run("inspect", gelu_tflite, "--device", "linux-gpu-server")
    assert listed.exit_code == 0
    assert "fix-it: operators that fall back from the GPU" in listed.stdout and "act_gelu" in listed.stdout
    counted = run("inspect", gelu_tflite)
    assert "1 the GPU delegate" not in counted.stdout and "fix-it" in counted.stdout
    assert "fall back from the" not in counted.stdout


def test_explore_names_layer_and_fix_for_each_fallback(run, gelu_tflite, tmp_path):
    result = run("explore", gelu_tflite, "-o", tmp_path / "x", "--json")
    assert result.exit_code == 0, result.stderr
    gelu = next(f for f in json.loads(result.stdout)["fallbacks"] if f["op"] == "GELU" and f["target"] == "gpu")
    assert gelu["layer"] == "act_gelu" and "swish" in gelu["fix"]
