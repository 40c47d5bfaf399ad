"""The Edge TPU estimate streams the parameters that do not fit the on-chip cache over the link.

Two real full-int8 Dense models (int8 I/O, batch 1): one with about 10.5 MB of weights (two
5.2 MB layers: the first fits coral-usb's 7 MiB cache, the second no longer fits what is left and
streams), one with about 1 MB (all cached). The test finds each layer's weight and bias tensors by
name in the interpreter's tensor details, sizes them itself, and computes the transfer time from
the profile's figures.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import assert_one_line_error

FEATURES = 2048
pytestmark = pytest.mark.filterwarnings("ignore:Statistics for quantized inputs")  # int8 I/O, as Coral wants


def _build(folder, name: str, widths: list[int]):
    """A full-int8 .tflite (int8 I/O, batch 1) of Dense layers ``{name}_layer{i}``, calibrated on random data."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    inputs = keras.Input((FEATURES,), batch_size=1)
    x = inputs
    for position, units in enumerate(widths):
        x = keras.layers.Dense(units, activation="relu", name=f"{name}_layer{position}")(x)
    converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inputs, x))
    samples = np.random.default_rng(0).random((4, 1, FEATURES)).astype(np.float32)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([sample] for sample in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    path = folder / f"{name}.tflite"
    path.write_bytes(converter.convert())
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("streaming")
    return {"big": _build(folder, "big", [2560, 2048, 10]), "small": _build(folder, "small", [512, 10])}


def layer_parameter_bytes(path, layer: str) -> int:
    """Bytes of the constant tensors (kernel and bias) of ``layer``, found by name in the .tflite."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    produced = {i for op in interpreter._get_ops_details() for i in op["outputs"]}
    inputs = {d["index"] for d in interpreter.get_input_details()}
    total = 0
    for tensor in interpreter.get_tensor_details():
        constant = tensor["index"] not in produced and tensor["index"] not in inputs
        if constant and layer in tensor["name"]:
            total += int(np.prod(tensor["shape"])) * np.dtype(tensor["dtype"]).itemsize
    return total


def estimate(run, model, device="coral-usb") -> dict:
    result = run("profile", model, "--estimate", "--device", device, "--op-profile", "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_a_model_beyond_the_cache_streams_its_last_layers_every_inference(run, models, tmp_path):
    from edgepack.devices import load_device
    from edgepack.devices.loader import device_files

    figures = load_device("coral-usb").estimate
    first, second = (layer_parameter_bytes(models["big"], f"big_layer{i}") for i in (0, 1))
    assert first > 5e6 and second > 4e6, (first, second)
    room = figures.onchip_cache_mib * 2**20
    assert first <= room < first + second  # the first layer fits the cache, the second no longer does
    expected_ms = second / (figures.link_bandwidth_mbs * 1e6) * 1e3

    report = estimate(run, models["big"])
    streamed = [op for op in report["op_profile"]["ops"] if op["bound"] == "link"]
    assert [op["op"] for op in streamed] == ["FULLY_CONNECTED"] and streamed[0]["ms"] >= expected_ms
    note = next(n for n in report["notes"] if "on-chip cache" in n)
    assert f"{second / 1e6:.1f} MB of them (1 operator) stream" in note and f"{expected_ms:.1f} ms" in note

    # The same device with a cache that holds everything: the estimate loses the transfer time,
    # less the few microseconds the operator would have taken anyway.
    roomy = tmp_path / "roomy.yaml"
    text = device_files()["coral-usb"].read_text()
    roomy.write_text(text.replace("onchip_cache_mib: 7.0", "onchip_cache_mib: 64.0"))
    cached = estimate(run, models["big"], str(roomy))
    added = report["latency_ms"]["p50"] - cached["latency_ms"]["p50"]
    assert expected_ms * 0.98 < added < expected_ms, (added, expected_ms)
    assert not any("on-chip cache" in n for n in cached["notes"])


def test_a_model_within_the_cache_streams_nothing(run, models):
    from edgepack.devices import load_device

    total = sum(layer_parameter_bytes(models["small"], f"small_layer{i}") for i in (0, 1))
    assert 0.9e6 < total < load_device("coral-usb").estimate.onchip_cache_mib * 2**20
    report = estimate(run, models["small"])
    assert not any(op["bound"] == "link" for op in report["op_profile"]["ops"])
    assert not any("on-chip cache" in n for n in report["notes"])


@pytest.mark.parametrize("change, fragment", [
    ("onchip_cache_mib: 7.0", "onchip_cache_mib: -1.0"),
    ("link_bandwidth_mbs: 500.0", "link_bandwidth_mbs: 0"),
    ("  link_bandwidth_mbs: 500.0\n", ""),
])
def test_a_bad_streaming_figure_is_a_one_line_exit_2(run, models, tmp_path, change, fragment):
    from edgepack.devices.loader import device_files

    text = device_files()["coral-usb"].read_text()
    assert change in text
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace(change, fragment))
    key = "onchip_cache_mib" if "cache" in change else "link_bandwidth_mbs"
    assert_one_line_error(run("profile", models["small"], "--estimate", "--device", str(bad)), 2, key)


def test_a_cpu_device_with_a_parameter_cache_is_a_one_line_exit_2(run, models, tmp_path):
    from edgepack.devices.loader import device_files

    text = device_files()["raspberry-pi-4"].read_text()
    bad = tmp_path / "cpu.yaml"
    bad.write_text(text.replace("estimate:\n", "estimate:\n  onchip_cache_mib: 1\n  link_bandwidth_mbs: 100\n", 1))
    assert_one_line_error(run("profile", models["small"], "--estimate", "--device", str(bad)), 2, "cpu device")
