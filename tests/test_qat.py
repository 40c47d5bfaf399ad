"""``edgepack qat``: quantization-aware training into a full-int8 .tflite, keeping a pruned model's
zeros and a clustered model's centroids. Figures are read from the .tflite here."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import assert_one_line_error, interpreter_accuracy

KERNEL_OPS = ("CONV_2D", "FULLY_CONNECTED")


def kernels(path) -> list[np.ndarray]:
    """The int8 kernels of the conv and dense ops, read from the .tflite (output channels first)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    return [interpreter.get_tensor(op["inputs"][1]) for op in interpreter._get_ops_details()
            if op["op_name"] in KERNEL_OPS]


def float_reference(model, val) -> float:
    """The float model's accuracy, from the model itself (either Keras flavour)."""
    from edgepack.loading.model import load_model

    return float(np.mean(load_model(model).predict(val["x"]).argmax(1) == val["y"]))


@pytest.mark.parametrize("flavor", ["keras3", "tf_keras"])
def test_qat_reaches_one_point_with_every_layer_int8(run, digits, tfkeras_digits, tmp_path, flavor):
    data = digits if flavor == "keras3" else tfkeras_digits
    out = tmp_path / "qat.tflite"
    result = run("qat", data["model"], "--data", data["train"], "-o", out, "--io", "int8", "--epochs", "1", "--json")
    assert result.exit_code == 0, result.stderr
    val = np.load(data["val"])
    drop = (float_reference(data["model"], val) - interpreter_accuracy(out, val["x"], val["y"])) * 100
    assert drop <= 1.0
    assert all(k.dtype == np.int8 for k in kernels(out)), "no float layer"
    assert json.loads(result.stdout)["preserve"] == "none"


def test_a_static_batch_qat_model_keeps_the_keras_names_and_a_batch_of_1(run, digits, tmp_path):
    """The .tflite's signature names its input after the Keras input and its output after the (wrapped)
    output layer, with or without --static-batch; the static one takes exactly one row."""
    from ai_edge_litert.interpreter import Interpreter

    out = tmp_path / "static.tflite"
    result = run("qat", digits["model"], "--data", digits["train"], "-o", out, "--static-batch", "--epochs", "1")
    assert result.exit_code == 0, result.stderr
    interpreter = Interpreter(model_path=str(out))
    assert interpreter.get_signature_list() == {"serving_default": {"inputs": ["image"],
                                                                    "outputs": ["quant_probabilities"]}}
    assert [list(d["shape_signature"]) for d in interpreter.get_input_details()] == [[1, 8, 8, 1]]
    val = np.load(digits["val"])
    assert interpreter_accuracy(out, val["x"], val["y"]) >= float_reference(digits["model"], val) - 0.02


@pytest.fixture(scope="module")
def pruned80(run, digits, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pqat")
    out = folder / "p80.keras"
    assert run("prune", digits["model"], "--data", digits["train"], "-o", out, "--sparsity", "0.8",
               "--epochs", "2").exit_code == 0
    return out


def test_pqat_keeps_the_zeros_of_an_80_percent_pruned_model(run, digits, pruned80, tmp_path):
    out = tmp_path / "pqat.tflite"
    result = run("qat", pruned80, "--data", digits["train"], "-o", out, "--epochs", "1", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["preserve"] == "sparsity"
    weights = np.concatenate([k.ravel() for k in kernels(out)])
    assert np.mean(weights == 0) >= 0.79


def test_cqat_keeps_at_most_16_values_per_kernel_channel(run, digits, tmp_path):
    clustered = tmp_path / "c16.keras"
    assert run("cluster", digits["model"], "--data", digits["train"], "-o", clustered, "--clusters", "16",
               "--epochs", "1").exit_code == 0
    out = tmp_path / "cqat.tflite"
    result = run("qat", clustered, "--data", digits["train"], "-o", out, "--epochs", "1", "--preserve", "clusters")
    assert result.exit_code == 0, result.stderr
    for kernel in kernels(out):
        if kernel[0].size > 16:  # a channel with no more than 16 weights has at most 16 values anyway
            assert max(np.unique(kernel[c]).size for c in range(kernel.shape[0])) <= 16


@pytest.mark.parametrize("args, code, fragments", [
    (["-o", "OUT/x.keras"], 2, ["should end in .tflite"]),
    (["-o", "OUT/x.tflite", "--preserve", "centroids"], 2, ["--preserve"]),
    (["-o", "OUT/x.tflite", "--epochs", "0"], 2, ["--epochs"]),
    (["-o", "OUT/x.tflite", "--equalize", "--preserve", "clusters"], 2, ["--equalize", "centroids"]),
])
def test_bad_qat_options_are_one_line_errors(run, digits, tmp_path, args, code, fragments):
    args = [a.replace("OUT", str(tmp_path)) for a in args]
    assert_one_line_error(run("qat", digits["model"], "--data", digits["train"], *args), code, *fragments)


def test_qat_in_a_recipe_replaces_quantize(run, digits, tmp_path):
    recipe = tmp_path / "q.yaml"
    recipe.write_text(f"name: q\ndevice: coral-usb\nmodel: {digits['model']}\n"
                      f"data: {{train: {digits['train']}, val: {digits['val']}}}\n"
                      "steps:\n  - qat: {io: int8, epochs: 1}\n")
    loaded = __import__("edgepack.recipes.loader", fromlist=["load_recipe"]).load_recipe(recipe)
    assert [p.name for p in loaded.plan] == ["qat", "evaluate", "profile"]
    assert loaded.plan[0].params.static_batch is True
    bad = tmp_path / "bad.yaml"
    bad.write_text(recipe.read_text().replace("io: int8, ", ""))
    assert_one_line_error(run("recipes", "validate", bad), 2, "Edge TPU", "qat: {io: int8}")
