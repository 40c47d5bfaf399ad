"""``edgepack inspect`` of Keras models: parameters, MACs, sparsity and distinct values."""

from __future__ import annotations

import json

import numpy as np


def test_reports_layers_params_and_macs(run, digits):
    import keras

    result = run("inspect", digits["model"], "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    model = keras.models.load_model(digits["model"])
    assert report["params"] == model.count_params()
    assert report["flavor"] == "keras3" and report["format"] == "keras"
    conv = next(layer for layer in report["layers"] if layer["class"] == "Conv2D")
    assert conv["macs"] == 8 * 8 * 3 * 3 * 1 * 16
    dense = next(layer for layer in report["layers"] if layer["name"] == "probabilities")
    assert dense["macs"] == 64 * 10
    assert report["float32_size_bytes"] == report["params"] * 4


def test_reports_sparsity_and_distinct_values(run, tmp_path):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(10, name="d")])
    kernel = np.zeros((4, 10), np.float32)
    kernel[0, :5] = [1, 2, 3, 1, 2]
    model.get_layer("d").set_weights([kernel, np.zeros(10, np.float32)])
    model.save(tmp_path / "sparse.keras")
    layer = json.loads(run("inspect", tmp_path / "sparse.keras", "--json").stdout)["layers"][0]
    assert layer["sparsity"] == 35 / 40
    assert layer["distinct_values"] == 4


def test_human_output_is_a_table(run, tfkeras_digits):
    result = run("inspect", tfkeras_digits["model"])
    assert result.exit_code == 0, result.stderr
    assert "Conv2D" in result.stdout and "MACs" in result.stdout


def test_a_table_piped_to_a_file_never_cuts_a_number_short(run, tmp_path):
    import keras

    name = "a_dense_layer_with_the_kind_of_long_name_real_models_have_" * 2
    model = keras.Sequential([keras.Input((2048,)), keras.layers.Dense(2646, name=name[:-1])])
    model.save(tmp_path / "wide.keras")
    result = run("inspect", tmp_path / "wide.keras")  # stdout is not a terminal here
    assert result.exit_code == 0, result.stderr
    params = f"{model.count_params():,}"
    assert params in result.stdout and name[:-1] in result.stdout and "…" not in result.stdout


def test_a_plain_savedmodel_reports_its_parameters_and_signatures(run, digits, tmp_path):
    import keras

    model = keras.saving.load_model(digits["model"])
    model.export(tmp_path / "exported")  # a plain SavedModel: no Keras metadata
    result = run("inspect", tmp_path / "exported", "--trust-model", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["params"] == model.count_params()  # every weight, batch-norm statistics included
    serving = report["signatures"]["serving_default"]
    assert list(serving["inputs"].values()) == [[None, 8, 8, 1]] and list(serving["outputs"].values()) == [[None, 10]]
