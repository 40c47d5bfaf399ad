"""``edgepack cluster``: distinct values, sparsity preserved, and prune+cluster+int8 accuracy, both flavors."""

from __future__ import annotations

import numpy as np
import pytest

pytest.register_assert_rewrite("compress_fixtures")
pytest_plugins = ["compress_fixtures"]

from compress_fixtures import compress, kernels, load_saved, tiny_model  # noqa: E402
from conftest import assert_one_line_error, interpreter_accuracy  # noqa: E402


def test_help_lists_the_contract_flags(run):
    result = run("cluster", "--help")
    assert result.exit_code == 0
    for flag in ("--clusters", "--init", "kmeans++", "density", "--preserve-sparsity", "--epochs", "--exclude",
                 "--distribute", "--json"):
        assert flag in result.stdout


@pytest.mark.parametrize("flavor", ["keras3", "tf_keras"])
def test_cluster_16_leaves_at_most_16_values_per_kernel(run, flavored, tmp_path, flavor):
    paths = flavored[flavor]
    result = compress(run, "cluster", paths["model"], paths["train"], tmp_path / "c.keras", "--clusters", "16")
    found = kernels(result["path"], flavor)
    assert len(found) == 4  # two Conv2D, two Dense
    for name, kernel in found.items():
        assert np.unique(kernel).size <= 16, (name, np.unique(kernel).size)
    assert result["doc"]["flavor"] == flavor
    assert all(layer["clustered"] for layer in result["doc"]["layers"] if layer["class"] != "BatchNormalization")


@pytest.mark.parametrize("flavor", ["keras3", "tf_keras"])
def test_prune_cluster_int8_keeps_zeros_and_accuracy(run, pruned, flavored, tmp_path, flavor):
    from edgepack.loading.data import DataSpec
    from edgepack.steps.quantize import QuantizeConfig, quantize

    paths = flavored[flavor]
    source = pruned[flavor]["path"]
    result = compress(run, "cluster", source, paths["train"], tmp_path / "pc.keras", "--preserve-sparsity",
                      "--clusters", "16")
    before, after = kernels(source, flavor), kernels(result["path"], flavor)
    for name, kernel in after.items():
        assert np.all(kernel[before[name] == 0] == 0), name  # every pruned zero is still zero
        assert np.mean(kernel == 0) >= 0.79, name
        assert np.unique(kernel).size <= 16, name

    tflite = quantize(QuantizeConfig(model=result["path"], output=tmp_path / "pc_int8.tflite", mode="int8",
                                     calibration=DataSpec(source=str(paths["train"])))).path
    val = np.load(paths["val"])
    original = load_saved(paths["model"], flavor)
    reference = float(np.mean(original.predict(val["x"], verbose=0).argmax(1) == val["y"]))
    accuracy = interpreter_accuracy(tflite, val["x"], val["y"])
    assert (reference - accuracy) * 100 <= 1.5, (reference, accuracy)


def test_init_and_exclude_on_a_small_model(run, digits, tmp_path):
    model = tiny_model(tmp_path / "tiny.keras", compile_loss="sparse_categorical_crossentropy")
    result = compress(run, "cluster", model, digits["train"], tmp_path / "tc.keras", "--clusters", "4",
                      "--init", "linear", "--exclude", "head")
    found = kernels(result["path"], "keras3")
    assert np.unique(found["hidden"]).size <= 4
    assert np.unique(found["head"]).size > 4  # excluded: left alone
    assert result["doc"]["loss"]["source"] == "compile_config"


def test_clusters_below_2_is_exit_2(run, digits, tmp_path):
    result = run("cluster", digits["model"], "--data", digits["train"], "-o", tmp_path / "x.keras", "--clusters", "1")
    assert_one_line_error(result, 2, "--clusters")


def test_bad_regex_is_exit_2(run, digits, tmp_path):
    result = run("cluster", digits["model"], "--data", digits["train"], "-o", tmp_path / "x.keras", "--exclude", "[")
    assert_one_line_error(result, 2, "--exclude", "regular expression")


def test_kernels_smaller_than_the_clusters_is_exit_4(run, digits, tmp_path):
    model = tiny_model(tmp_path / "tiny.keras")
    result = run("cluster", model, "--data", digits["train"], "-o", tmp_path / "x.keras", "--clusters", "5000")
    assert_one_line_error(result, 4, "nothing to cluster", "not more than 5000 clusters")


def test_two_clusters_keeping_the_zeros_is_exit_2_and_never_allocated(run, digits, tmp_path):
    """tfmot keeps one centroid at zero with --preserve-sparsity and refuses 2 clusters: the option is
    refused before any work, and the sensitivity allocation never gives a layer 2."""
    result = run("cluster", digits["model"], "--data", digits["train"], "-o", tmp_path / "c.keras",
                 "--clusters", "2", "--preserve-sparsity")
    assert_one_line_error(result, 2, "at least 3 centroids", "--clusters 2")
    import keras

    from edgepack.steps.cluster import _fits

    model = keras.models.load_model(digits["model"], compile=False)
    layer = next(layer for layer in model.layers if type(layer).__name__ == "Dense")
    assert "at least 3" in _fits(layer, 2, True) and _fits(layer, 2, False) is None
