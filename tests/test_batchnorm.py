"""BatchNorm moving statistics after fine-tuning (issue 18).

Pruning, clustering and QAT change the weights under every BatchNormalization layer; without a
re-estimation the moving statistics lag behind and the saved model fails in inference mode. Each
test computes the accuracy itself with plain Keras (or the LiteRT interpreter for QAT's .tflite),
and re-estimates the statistics its own way: one training-mode pass over every training row at
once, each layer's input mean and variance assigned directly.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from compress_fixtures import load_saved
from conftest import interpreter_accuracy

WITHIN = 0.03  # the 3 points


@pytest.fixture(scope="module")
def bn_model(bn_residual) -> dict:
    return bn_residual


def batchnorm_of(model) -> list:
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def own_reestimate(model, x: np.ndarray) -> None:
    """The test's own re-estimation: every BatchNorm input over all of ``x`` in one training-mode pass."""
    import keras

    layers = batchnorm_of(model)
    inputs = keras.Model(model.inputs, [layer.input for layer in layers])(x, training=True)
    for layer, tensor in zip(layers, inputs):
        tensor = np.asarray(tensor)
        axes = tuple(range(tensor.ndim - 1))
        layer.moving_mean.assign(tensor.mean(axes))
        layer.moving_variance.assign(tensor.var(axes))


def accuracy(model, data: dict) -> float:
    return float(np.mean(model.predict(data["x"], verbose=0).argmax(axis=1) == data["y"]))


def saved_and_reestimated(path, bn_model) -> tuple[float, float, int]:
    """(accuracy as saved, accuracy after the test's own re-estimation, BatchNorm layers in the file)."""
    model = load_saved(path, "keras3")
    val, train = np.load(bn_model["val"]), np.load(bn_model["train"])
    saved = accuracy(model, val)
    own_reestimate(model, train["x"])
    return saved, accuracy(model, val), len(batchnorm_of(model))


def fine_tune(run, command: str, bn_model: dict, output, *args) -> dict:
    result = run(command, bn_model["model"], "--data", bn_model["train"], "--val", bn_model["val"], "-o", output,
                 "--epochs", "3", *args, "--json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


@pytest.mark.parametrize("command, args", [("prune", ("--sparsity", "0.8")), ("cluster", ("--clusters", "8"))])
def test_saved_model_carries_statistics_of_its_weights(run, bn_model, tmp_path, command, args):
    doc = fine_tune(run, command, bn_model, tmp_path / "out.keras", *args)
    saved, reestimated, layers = saved_and_reestimated(tmp_path / "out.keras", bn_model)
    assert abs(saved - reestimated) <= WITHIN, (saved, reestimated)
    assert doc["batchnorm"]["layers"] == layers == 6
    assert doc["batchnorm"]["scored_on"] == "val"
    assert doc["batchnorm"]["after"] == pytest.approx(saved, abs=1e-9)
    sidecar = json.loads((tmp_path / "out.keras.edgepack.json").read_text())
    assert sidecar["batchnorm"]["layers"] == layers and sidecar["config"]["bn_batches"] == 100


def test_without_reestimation_pruning_leaves_stale_statistics(run, bn_model, tmp_path):
    """The model shows the problem: turned off, the saved model is far below its own re-estimation."""
    doc = fine_tune(run, "prune", bn_model, tmp_path / "off.keras", "--sparsity", "0.8", "--no-bn-reestimate")
    saved, reestimated, _ = saved_and_reestimated(tmp_path / "off.keras", bn_model)
    assert doc["batchnorm"] is None
    assert reestimated - saved > 0.2, (saved, reestimated)


def test_qat_converts_the_reestimated_statistics(run, bn_model, tmp_path):
    """QAT keeps BatchNormalization in the fake-quantized model (the converter folds it into the
    convolution), so the .tflite is where stale statistics would show: its accuracy, read in the
    interpreter, stays within 3 points of the float model's; turned off, it does not."""
    import keras

    val = np.load(bn_model["val"])
    float_accuracy = accuracy(keras.models.load_model(bn_model["model"], compile=False), val)
    found = {}
    for name, extra in (("on", ()), ("off", ("--no-bn-reestimate",))):
        doc = fine_tune(run, "qat", bn_model, tmp_path / f"{name}.tflite", "--learning-rate", "1e-2", *extra)
        found[name] = (interpreter_accuracy(tmp_path / f"{name}.tflite", val["x"], val["y"]), doc["batchnorm"])
    assert float_accuracy - found["on"][0] <= WITHIN, (float_accuracy, found)
    assert found["on"][1]["layers"] == 6 and found["off"][1] is None
    assert found["on"][0] - found["off"][0] > WITHIN, found


def _nested_model(keras):
    """Dense -> BatchNorm, then a sub-model with its own BatchNorm, then a frozen BatchNorm."""
    inputs = keras.Input((8,))
    h = keras.layers.BatchNormalization(name="outer_bn")(keras.layers.Dense(16, name="d1")(inputs))
    inner_in = keras.Input((16,))
    inner = keras.Model(inner_in, keras.layers.BatchNormalization(name="inner_bn")(
        keras.layers.Dense(6, name="d2")(inner_in)), name="inner")
    frozen = keras.layers.BatchNormalization(name="frozen_bn")
    frozen.trainable = False
    return keras.Model(inputs, frozen(inner(h)))


@pytest.mark.parametrize("flavor", ["keras3", "tf_keras"])
def test_reestimate_matches_the_data_statistics(flavor):
    """Nested and frozen layers are re-estimated to the mean and variance of their input; momentum
    and trainable are restored."""
    from edgepack.compress.batchnorm import reestimate

    keras = __import__("keras" if flavor == "keras3" else "tf_keras")
    keras.utils.set_random_seed(0)
    model = _nested_model(keras)
    x = (np.random.default_rng(1).normal(size=(960, 8)) * 3 + 2).astype(np.float32)
    report = reestimate(model, x, batches=100, batch_size=64)
    assert (report.layers, report.inference_only, report.batches, report.rows) == (3, 0, 15, 960)
    outer = model.get_layer("outer_bn")
    before_outer = keras.Model(model.inputs, model.get_layer("d1").output)(x).numpy()
    np.testing.assert_allclose(outer.moving_mean.numpy(), before_outer.mean(0), atol=1e-4)
    np.testing.assert_allclose(outer.moving_variance.numpy(), before_outer.var(0), rtol=1e-3)
    frozen = model.get_layer("frozen_bn")
    assert frozen.trainable is False and frozen.momentum == 0.99 and outer.momentum == 0.99
    assert not np.allclose(frozen.moving_variance.numpy(), 1.0)


def test_a_submodel_called_in_inference_mode_is_left_alone():
    """tf_keras keeps a call's training=False inside a model (Keras 3 3.x trains through it, as its own
    fit does): such layers are counted apart and left as they were."""
    import tf_keras as keras

    from edgepack.compress.batchnorm import reestimate

    keras.utils.set_random_seed(0)
    inner_in = keras.Input((8,))
    inner = keras.Model(inner_in, keras.layers.BatchNormalization(name="base_bn")(inner_in), name="base")
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.BatchNormalization(name="head_bn")(inner(inputs, training=False)))
    report = reestimate(model, np.full((64, 8), 5.0, np.float32), batches=4, batch_size=16)
    assert (report.layers, report.inference_only) == (1, 1)
    np.testing.assert_array_equal(inner.get_layer("base_bn").moving_mean.numpy(), np.zeros(8))


def test_a_mirrored_fine_tuning_reestimates_too(run, bn_model, tmp_path):
    """Under tf.distribute (--distribute mirrored) the statistics are re-estimated the same way."""
    doc = fine_tune(run, "prune", bn_model, tmp_path / "m.keras", "--sparsity", "0.5", "--distribute", "mirrored")
    saved, reestimated, layers = saved_and_reestimated(tmp_path / "m.keras", bn_model)
    assert doc["batchnorm"]["layers"] == layers == 6 and doc["distribute"] == "mirrored"
    assert abs(saved - reestimated) <= WITHIN, (saved, reestimated)
