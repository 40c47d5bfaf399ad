"""The estimate of a model converted with a dynamic batch counts the work a batch of 1 really does:
a ConvNeXt-style block (a Dense over a 4-D tensor) gives about the same figure with a dynamic and a
static batch, and the MACs it counts are the ones the test computes from the layers."""

from __future__ import annotations

import json

import pytest


def convnext_block(keras, batch):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 48), batch_size=batch)
    h = keras.layers.DepthwiseConv2D(7, padding="same")(inputs)
    h = keras.layers.Dense(48)(keras.layers.Dense(192, activation="gelu")(h))  # pointwise MLP on [B, 28, 28, C]
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Add()([inputs, h]))
    return keras.Model(inputs, keras.layers.Dense(10)(h))


@pytest.fixture(scope="module")
def estimates(run, tmp_path_factory):
    import keras

    folder = tmp_path_factory.mktemp("convnext")
    convnext_block(keras, None).save(folder / "block.keras")
    found = {}
    for name, flags in (("dynamic", ["--no-static-batch"]), ("static", ["--static-batch"])):
        out = folder / f"{name}.tflite"
        assert run("quantize", folder / "block.keras", "-o", out, "--mode", "float32", *flags).exit_code == 0
        result = run("profile", out, "--estimate", "--device", "raspberry-pi-4", "--op-profile", "--json")
        assert result.exit_code == 0, result.stderr
        found[name] = json.loads(result.stdout)
    return found


def test_a_dynamic_batch_is_estimated_like_a_batch_of_one(estimates):
    dynamic, static = (estimates[k]["latency_ms"]["p50"] for k in ("dynamic", "static"))
    assert abs(dynamic - static) / static < 0.25, (dynamic, static)


def test_the_dense_layers_over_the_feature_map_count_every_position(estimates):
    positions = 28 * 28
    expected = positions * 48 * 192 * 2 + 28 * 28 * 48 * 7 * 7 + 48 * 10  # two Dense, the depthwise, the head
    for name in ("dynamic", "static"):
        ops = estimates[name]["op_profile"]["ops"]
        assert sum(op.get("macs", 0) for op in ops) == expected, name
