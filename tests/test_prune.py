"""``edgepack prune``: sparsity reached in the saved file (both Keras flavors), 2:4, and every bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.register_assert_rewrite("compress_fixtures")
pytest_plugins = ["compress_fixtures"]

from compress_fixtures import compress, kernels, load_saved, tiny_model, write_npz  # noqa: E402
from conftest import assert_one_line_error  # noqa: E402


def test_help_lists_the_contract_flags(run):
    result = run("prune", "--help")
    assert result.exit_code == 0
    for flag in ("--sparsity", "--schedule", "--structure", "--epochs", "--batch-size", "--exclude", "--val",
                 "--distribute", "--json", "2:4", "polynomial", "--unsupported", "skip|refuse", "--output-name"):
        assert flag in result.stdout


@pytest.mark.parametrize("flavor", ["keras3", "tf_keras"])
def test_prune_to_80_percent_zeros_in_the_saved_file(pruned, flavor):
    result = pruned[flavor]
    found = kernels(result["path"], flavor)  # loaded with the Keras that wrote it
    assert len(found) == 4 and "probabilities" in found  # two Conv2D, two Dense
    for name, kernel in found.items():
        assert np.mean(kernel == 0) >= 0.79, (name, np.mean(kernel == 0))
    doc = result["doc"]
    assert doc["flavor"] == flavor and doc["step"] == "prune"
    assert doc["loss"]["name"] == "sparse_categorical_crossentropy" and doc["loss"]["source"] == "compile_config"
    # progress and the loss choice went to stderr; stdout held the JSON document only
    assert "epoch 2/2" in result["stderr"] and "sparse_categorical_crossentropy" in result["stderr"]


def test_prune_output_has_no_wrappers_and_reports_metrics(pruned, flavored):
    model = load_saved(pruned["keras3"]["path"], "keras3")
    assert not any("prune" in layer.name for layer in model.layers)
    assert [type(layer).__name__ for layer in model.layers][:2] == ["InputLayer", "Conv2D"]
    doc = pruned["keras3"]["doc"]
    metrics = doc["metrics"]
    assert metrics["metric"] == "accuracy" and metrics["samples"] == 450
    val = np.load(flavored["keras3"]["val"])
    own = float(np.mean(model.predict(val["x"], verbose=0).argmax(1) == val["y"]))
    assert abs(own - metrics["after"]) < 1e-6
    sidecar = json.loads(open(doc["config_path"]).read())
    assert sidecar["config"]["sparsity"] == 0.8 and sidecar["output_sha256"] == doc["sha256"]
    import tensorflow as tf  # where it trained, named from TensorFlow's own device list

    gpus = tf.config.list_physical_devices("GPU")
    assert doc["trained_on"] == sidecar["trained_on"] and doc["trained_on"].startswith("GPU: " if gpus else "CPU: ")
    assert sidecar["schedule_steps"]["kind"] == "polynomial"


def test_two_four_structure_and_exclude(run, digits, tmp_path):
    result = compress(run, "prune", digits["model"], digits["train"], tmp_path / "p24.keras",
                      "--structure", "2:4", "--epochs", "1", "--exclude", "^probabilities$")
    found = kernels(result["path"], "keras3")
    first_conv = next(name for name, kernel in found.items() if kernel.shape[-2] == 1)
    checked = [name for name in found if name not in (first_conv, "probabilities")]
    assert len(checked) == 2  # the second Conv2D and the hidden Dense
    for name in checked:  # every group of 4 consecutive input channels holds >= 2 zeros
        groups = np.moveaxis(found[name], -2, -1).reshape(-1, 4)
        assert (np.sum(groups == 0, axis=1) >= 2).all(), name
    assert np.mean(found["probabilities"] == 0) < 0.05  # excluded: kept dense
    notes = {layer["name"]: layer["note"] for layer in result["doc"]["layers"]}
    assert notes["probabilities"] == "excluded by --exclude"
    assert "multiples of 4" in notes[first_conv]  # one input channel: 2:4 does not apply


def test_inferred_loss_and_h5_output(run, digits, tmp_path):
    import keras

    model = tiny_model(tmp_path / "tiny.keras")  # no compile config
    result = compress(run, "prune", model, digits["train"], tmp_path / "tiny_pruned.h5",
                      "--sparsity", "0.6", "--epochs", "1", "--schedule", "constant")
    loss = result["doc"]["loss"]
    assert (loss["name"], loss["from_logits"], loss["source"]) == ("sparse_categorical_crossentropy", False, "data")
    assert "integer labels" in loss["reason"]
    saved = keras.models.load_model(result["path"], compile=False)
    assert np.mean(saved.get_layer("hidden").kernel.numpy() == 0) >= 0.59


def test_float_targets_use_mean_squared_error(run, tmp_path):
    x = np.random.default_rng(0).random((64, 8, 8, 1), dtype=np.float32)
    data = write_npz(tmp_path / "reg.npz", x, x.reshape(64, -1).mean(axis=1, keepdims=True))
    model = tiny_model(tmp_path / "reg.keras", out_units=1, activation=None)
    result = compress(run, "prune", model, data, tmp_path / "reg_pruned.keras", "--epochs", "1", "--val", data)
    assert result["doc"]["loss"]["name"] == "mean_squared_error"
    assert result["doc"]["metrics"]["metric"] == "mse"


@pytest.mark.parametrize("value", ["1.0", "-0.1"])
def test_sparsity_outside_range_is_exit_2(run, digits, tmp_path, value):
    result = run("prune", digits["model"], "--data", digits["train"], "-o", tmp_path / "x.keras", "--sparsity", value)
    assert_one_line_error(result, 2, "--sparsity")


@pytest.mark.parametrize("args, fragment", [(["--exclude", "dense("], "not a valid regular expression"),
                                            (["--structure", "2:4", "--sparsity", "0.8"], "2:4"),
                                            (["--schedule", "cubic"], "--schedule")])
def test_bad_options_are_exit_2(run, digits, tmp_path, args, fragment):
    result = run("prune", digits["model"], "--data", digits["train"], "-o", tmp_path / "x.keras", *args)
    assert_one_line_error(result, 2, fragment)


def test_nothing_to_prune_is_exit_4(run, digits, tmp_path):
    import keras

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.MaxPooling2D(), keras.layers.Flatten()])
    model.save(tmp_path / "nothing.keras")
    result = run("prune", tmp_path / "nothing.keras", "--data", digits["train"], "-o", tmp_path / "x.keras")
    assert_one_line_error(result, 4, "nothing to prune", "Conv1D, Conv2D or Dense")


def test_excluding_every_layer_is_exit_4(run, digits, tmp_path):
    result = run("prune", digits["model"], "--data", digits["train"], "-o", tmp_path / "x.keras", "--exclude", ".")
    assert_one_line_error(result, 4, "nothing to prune", "--exclude")


def test_labels_beyond_the_outputs_are_exit_3(run, digits, tmp_path):
    train = np.load(digits["train"])
    y = train["y"].copy()
    y[0] = 12
    data = write_npz(tmp_path / "bad.npz", train["x"], y)
    result = run("prune", digits["model"], "--data", data, "-o", tmp_path / "x.keras")
    assert_one_line_error(result, 3, "labels range from 0 to 12", "10 output")
    assert not (tmp_path / "x.keras").exists()


def test_one_hot_width_mismatch_is_exit_3(run, digits, tmp_path):
    train = np.load(digits["train"])
    data = write_npz(tmp_path / "onehot.npz", train["x"], np.eye(12, dtype=np.float32)[train["y"]])
    model = tiny_model(tmp_path / "tiny.keras")
    result = run("prune", model, "--data", data, "-o", tmp_path / "x.keras")
    assert_one_line_error(result, 3, "one-hot targets have width 12", "10 classes")


def test_data_without_targets_is_exit_3(run, digits, tmp_path):
    data = write_npz(tmp_path / "xonly.npz", np.load(digits["train"])["x"])
    result = run("prune", digits["model"], "--data", data, "-o", tmp_path / "x.keras")
    assert_one_line_error(result, 3, "no targets")


def _depthwise_model(keras):
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.DepthwiseConv2D(3, depth_multiplier=4, padding="same", name="depthwise")(inputs)
    h = keras.layers.Flatten()(h)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="head")(h))


@pytest.fixture(scope="module")
def rnn(tmp_path_factory, digits):
    """A model with a DepthwiseConv2D (tfmot prunes and clusters no depthwise kernel) and the digits."""
    import keras

    folder = tmp_path_factory.mktemp("depthwise")
    keras.utils.set_random_seed(0)
    _depthwise_model(keras).save(folder / "m.keras")
    train = np.load(digits["train"])
    data = write_npz(folder / "train.npz", train["x"][:256], train["y"][:256])
    return {"model": folder / "m.keras", "train": data, "folder": folder}


def test_unsupported_layer_is_left_dense_and_listed_by_default(run, rnn):
    import keras

    result = run("prune", rnn["model"], "--data", rnn["train"], "-o", rnn["folder"] / "p.keras", "--epochs", "1",
                 "--sparsity", "0.7")
    assert result.exit_code == 0, result.stderr
    assert "left dense" in result.stdout and "depthwise" in result.stdout
    saved = keras.models.load_model(rnn["folder"] / "p.keras", compile=False)
    assert np.mean(saved.get_layer("head").kernel.numpy() == 0) >= 0.69
    for weight in saved.get_layer("depthwise").weights:  # fine-tuned, never pruned
        assert np.mean(weight.numpy() == 0) < 0.05, weight.name
    sidecar = json.loads((rnn["folder"] / "p.keras.edgepack.json").read_text())
    assert sidecar["skipped"]["depthwise"].startswith("unsupported: tfmot 0.8.1 neither prunes nor clusters "
                                                      "depthwise kernels")


def test_unsupported_refuse_is_exit_4_naming_the_layer(run, rnn, tmp_path):
    result = run("prune", rnn["model"], "--data", rnn["train"], "-o", tmp_path / "x.keras", "--unsupported", "refuse")
    assert_one_line_error(result, 4, "layer 'depthwise' (DepthwiseConv2D) cannot be pruned", "--exclude '^depthwise$'")
    assert not (tmp_path / "x.keras").exists()


def test_a_layer_class_of_its_own_is_exit_4_in_either_mode(run, digits, tmp_path):
    import keras

    @keras.saving.register_keras_serializable(package="edgepack_tests")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return x * 2.0

    inputs = keras.Input((8, 8, 1))
    h = Doubler(name="twice")(keras.layers.Flatten()(inputs))
    keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(h)).save(tmp_path / "m.keras")
    result = run("prune", tmp_path / "m.keras", "--data", digits["train"], "-o", tmp_path / "x.keras", "--trust-model")
    assert_one_line_error(result, 4, "layer 'twice' (Doubler) is a class of its own", "--unsupported skip too")
