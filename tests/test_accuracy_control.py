"""Accuracy-aware quantization on a model that is hard for int8: sensitivity, --float-ops, accuracy
control, and their bad inputs. Accuracy and float layers are measured here from the .tflite."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from conftest import assert_one_line_error, interpreter_accuracy
from hard_model import build_hard_model

COMPUTE_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"}


@pytest.fixture(scope="module")
def hard(tmp_path_factory, digits):
    folder = tmp_path_factory.mktemp("hard")
    built = build_hard_model(folder, digits["train"])
    import keras

    val = np.load(digits["val"])
    model = keras.saving.load_model(built["model"])
    built["float_accuracy"] = float(np.mean(model.predict(val["x"], verbose=0).argmax(axis=1) == val["y"]))
    built["val"] = val
    return built


def float_compute_ops(path) -> list[str]:
    """Names of the compute ops whose weights are float32, read from the .tflite itself."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    return [f"{op['op_name']}:{tensors[op['outputs'][0]]['name']}" for op in interpreter._get_ops_details()
            if op["op_name"] in COMPUTE_OPS and tensors[op["inputs"][1]]["dtype"] == np.float32]


def drop_points(hard, path) -> float:
    return (hard["float_accuracy"] - interpreter_accuracy(path, hard["val"]["x"], hard["val"]["y"])) * 100


def test_plain_int8_loses_more_than_5_points_on_the_hard_model(run, hard, digits, tmp_path):
    out = tmp_path / "plain.tflite"
    assert run("quantize", hard["model"], "-o", out, "--mode", "int8", "--calibration", digits["train"]).exit_code == 0
    assert drop_points(hard, out) > 5
    assert float_compute_ops(out) == []


def test_accuracy_control_meets_1_point_with_at_most_10_percent_of_layers_float(run, hard, digits, tmp_path):
    out = tmp_path / "controlled.tflite"
    result = run("quantize", hard["model"], "-o", out, "--mode", "int8", "--io", "int8", "--calibration",
                 digits["train"], "--val", digits["val"], "--max-drop", "1", "--json")
    assert result.exit_code == 0, result.stderr
    assert drop_points(hard, out) < 1
    floats = float_compute_ops(out)
    assert 1 <= len(floats) <= 0.10 * hard["layers"], floats
    assert any("dense" in name for name in floats)
    report = json.loads(result.stdout)["mixed"]
    assert report["control"]["met"] is True and report["control"]["drop_before"] > 5
    assert len(report["control"]["trace"]) >= 2 and report["control"]["trace"][-1]["drop"] < 1
    assert "layers kept in float" in result.stderr or report["float_layers"]
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(out))
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    assert not any("epl" in t["name"] for t in interpreter.get_tensor_details()), "layer markers are taken out"


def activation_types(path) -> dict[str, str]:
    """Compute op output tensor name -> its dtype, read from the .tflite itself."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    return {tensors[op["outputs"][0]]["name"]: tensors[op["outputs"][0]]["dtype"].__name__
            for op in interpreter._get_ops_details() if op["op_name"] in COMPUTE_OPS}


def test_promote_int16x8_meets_the_target_with_16_bit_activations_instead_of_float(run, hard, digits, tmp_path):
    out = tmp_path / "wide.tflite"
    result = run("quantize", hard["model"], "-o", out, "--mode", "int8", "--calibration", digits["train"],
                 "--val", digits["val"], "--max-drop", "1", "--promote", "int16x8", "--promote", "float", "--json")
    assert result.exit_code == 0, result.stderr
    assert drop_points(hard, out) < 1
    assert float_compute_ops(out) == []
    types = activation_types(out)
    wide = [name for name, dtype in types.items() if dtype == "int16"]
    assert any("dense" in name for name in wide), types
    assert len(wide) <= 0.10 * hard["layers"] and sum(dtype == "int8" for dtype in types.values()) >= 16
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(out))
    assert interpreter.get_input_details()[0]["dtype"] == np.float32
    assert not any("epl" in t["name"] for t in interpreter.get_tensor_details()), "layer markers are taken out"
    control = json.loads(result.stdout)["mixed"]["control"]
    assert control["promote"] == ["int16x8", "float"] and "dense" in control["int16_layers"]


def test_float_ops_keeps_the_matching_layers_float_and_the_rest_int8(run, hard, digits, tmp_path):
    out = tmp_path / "chosen.tflite"
    result = run("quantize", hard["model"], "-o", out, "--mode", "int8", "--calibration", digits["train"],
                 "--float-ops", "^dense$", "--float-ops", "probab")
    assert result.exit_code == 0, result.stderr
    floats = float_compute_ops(out)
    assert len(floats) == 2 and all("dense" in n or "probabilities" in n for n in floats), floats
    assert drop_points(hard, out) < 1


def test_sensitivity_ranks_the_damaged_layer_first(run, hard, digits, tmp_path):
    result = run("sensitivity", hard["model"], "--calibration", digits["train"], "--data", digits["val"],
                 "--no-weights", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ranking"][0] == hard["damaged"]
    _explore_with_the_sensitivity_file(run, hard, digits, tmp_path, result.stdout, report)
    assert report["int8_drop"] > 5
    dense = next(layer for layer in report["layers"] if layer["layer"] == "dense")
    assert dense["int8_drop_if_float"] < 1 and dense["float_unit"] == ["dense", "dropout", "probabilities"] or \
        dense["float_unit"] == ["dense", "probabilities"]


def test_sensitivity_measures_pruning_and_clustering_per_layer(run, digits):
    result = run("sensitivity", digits["model"], "--data", digits["val"], "--no-int8", "--json")
    assert result.exit_code == 0, result.stderr
    layers = {layer["layer"]: layer for layer in json.loads(result.stdout)["layers"]}
    assert set(layers["dense"]["prune_drop"]) == {"0.5", "0.8", "0.9"}
    assert set(layers["dense"]["cluster_drop"]) == {"8", "16", "32"}
    assert layers["dense"]["prune_drop"]["0.9"] >= layers["dense"]["prune_drop"]["0.5"] - 1


def test_edgetpu_readiness_puts_the_partition_at_the_float_layers(run, hard, digits, tmp_path):
    out = tmp_path / "coral.tflite"
    assert run("quantize", hard["model"], "-o", out, "--mode", "int8", "--io", "int8", "--static-batch",
               "--calibration", digits["train"], "--float-ops", "^dense$").exit_code == 0
    report = json.loads(run("inspect", out, "--json").stdout)["edgetpu"]
    assert report["ready"] is False and report["first_unsupported"]["op"] in ("DEQUANTIZE", "FULLY_CONNECTED")
    assert report["ops_mappable"] == report["first_unsupported"]["index"] > 10


def test_a_target_that_cannot_be_met_exits_7_and_keeps_the_best_model_beside(run, hard, digits, tmp_path):
    out = tmp_path / "strict.tflite"
    result = run("quantize", hard["model"], "-o", out, "--mode", "int8", "--calibration", digits["train"],
                 "--val", digits["val"], "--max-drop", "1", "--max-float-ops", "1")
    assert_one_line_error(result, 7, "accuracy control could not", "strict.failed.tflite", progress=True)
    assert not out.exists()
    failed = tmp_path / "strict.failed.tflite"
    record = json.loads((tmp_path / "strict.failed.tflite.edgepack.json").read_text())
    assert failed.exists() and record["mixed_precision"]["control"]["met"] is False
    assert len(float_compute_ops(failed)) <= 1


@pytest.mark.parametrize("args, fragments", [
    (["--float-ops", "densee"], ["--float-ops 'densee' matches no layer", "dense"]),
    (["--float-ops", "("], ["--float-ops", "regular expression"]),
    (["--max-drop", "-1", "--val", "VAL"], ["--max-drop", "finite number >= 0"]),
    (["--max-drop", "nan", "--val", "VAL"], ["--max-drop", "finite number >= 0"]),
    (["--max-drop", "1"], ["--max-drop needs --val"]),
    (["--max-float-ops", "2"], ["--max-float-ops limits accuracy control, which needs --max-drop"]),
    (["--mode", "float16", "--float-ops", "dense"], ["--float-ops and --max-drop", "need --mode int8"]),
    (["--promote", "int16x8"], ["--promote", "needs --max-drop"]),
    (["--promote", "float", "--promote", "int16x8", "--max-drop", "1", "--val", "VAL"], ["--promote", "lowest first"]),
    (["--promote", "int16x8", "--io", "uint8", "--max-drop", "1", "--val", "VAL"], ["int16x8", "not uint8"]),
    (["--promote", "int32", "--max-drop", "1", "--val", "VAL"], ["--promote", "int16x8"]),
])
def test_bad_accuracy_control_options_are_exit_2(run, digits, tmp_path, args, fragments):
    args = [str(digits["val"]) if a == "VAL" else a for a in args]
    mode = [] if "--mode" in args else ["--mode", "int8"]
    result = run("quantize", digits["model"], "-o", tmp_path / "x.tflite", *mode, "--calibration", digits["train"],
                 *args)
    assert_one_line_error(result, 2, *fragments)


def test_a_recipe_with_accuracy_control_passes_its_gate(run, hard, digits, tmp_path):
    recipe = tmp_path / "hard.yaml"
    recipe.write_text(f"name: hard\ndevice: host-cpu\nmodel: {hard['model']}\n"
                      f"data: {{train: {digits['train']}, val: {digits['val']}}}\n"
                      f"steps:\n  - sensitivity: {{weights: false}}\n  - quantize: {{mode: int8, io: int8, max_drop: 1}}\n"
                      f"  - profile: {{where: estimate}}\ngates: {{max_accuracy_drop: 1}}\n")
    result = run("run", recipe, "-o", tmp_path / "bundle", "--json")
    assert result.exit_code == 0, result.stderr
    assert drop_points(hard, tmp_path / "bundle" / "model.tflite") < 1
    resolved = (tmp_path / "bundle" / "recipe.resolved.yaml").read_text()
    assert "max_drop: 1" in resolved and "ranking_samples: 100" in resolved
    report = json.loads((tmp_path / "bundle" / "report.json").read_text())
    assert report["sensitivity"]["ranking"][0] == "dense"
    control = report["mixed_precision"]["control"]
    assert control["met"] and [step["drop"] for step in control["trace"]][0] > 5
    html = (tmp_path / "bundle" / "report.html").read_text()
    assert 'id="control-trace"' in html and 'id="sensitivity-chart"' in html and "layers kept in float" in html
    assert "## Layers kept in float" in (tmp_path / "bundle" / "report.md").read_text()
    _explore_shows_the_decisions(run, tmp_path / "bundle", report)


def _explore_with_the_sensitivity_file(run, hard, digits, tmp_path, text, report):
    """explore MODEL --sensitivity FILE overlays the damaged layer's int8 error on its operator."""
    (tmp_path / "s.json").write_text(text)
    model = tmp_path / "plain.tflite"
    assert run("quantize", hard["model"], "-o", model, "--mode", "int8", "--calibration", digits["train"]).exit_code == 0
    result = run("explore", model, "--sensitivity", tmp_path / "s.json", "-o", tmp_path / "x", "--json")
    assert result.exit_code == 0, result.stderr
    overlay = json.loads(open(json.loads(result.stdout)["files"]["int8_error"]).read())
    values = {v["value"] for v in next(iter(overlay.values()))["results"].values()}
    damaged = next(row["int8_error"] for row in report["layers"] if row["layer"] == hard["damaged"])
    assert damaged in values
    (tmp_path / "bad.json").write_text('{"layers": 3}')
    assert_one_line_error(run("explore", model, "--sensitivity", tmp_path / "bad.json"), 2,
                          "is not a sensitivity result", "edgepack sensitivity MODEL --json")


def _explore_shows_the_decisions(run, bundle, report):
    """explore --bundle overlays each operator's layer's int8 error and accuracy control's choice; the
    operators marked float are the .tflite's float compute operators (read from the interpreter)."""
    from ai_edge_litert.interpreter import Interpreter

    from test_explore import check_with_model_explorer

    result = run("explore", "--bundle", bundle, "--json")
    assert result.exit_code == 0, result.stderr
    files = json.loads(result.stdout)["files"]
    assert {"int8_error", "accuracy_control"} <= set(files)
    checked = check_with_model_explorer(bundle / "model.tflite", [files["int8_error"], files["accuracy_control"]])
    assert all(set(facts["keys"]) <= set(facts["node_ids"]) for facts in checked.values())
    control = {int(k): v["value"] for k, v in next(iter(json.load(open(files["accuracy_control"])).values()))
               ["results"].items()}
    interpreter = Interpreter(model_path=str(bundle / "model.tflite"))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    float_compute = {op["index"] for op in interpreter._get_ops_details() if op["op_name"] in COMPUTE_OPS
                     and tensors[op["inputs"][1]]["dtype"] == np.float32}
    assert float_compute and float_compute == {index for index, value in control.items() if value == 32}
    errors = {int(k): v["value"] for k, v in next(iter(json.load(open(files["int8_error"])).values()))
              ["results"].items()}
    by_layer = {row["layer"]: row["int8_error"] for row in report["sensitivity"]["layers"]}
    ops = {op["index"]: op for op in interpreter._get_ops_details()}
    assert errors and float_compute & set(errors)
    for index, value in errors.items():  # the op's own tensor names hold the layer whose error it shows
        names = [tensors[i]["name"] for i in (*ops[index]["outputs"], *ops[index]["inputs"]) if i >= 0]
        layers = {layer for layer, error in by_layer.items() if error == pytest.approx(value)}
        assert any(re.search(rf"(^|/){re.escape(layer)}(_\d+)?/", name) for layer in layers for name in names), \
            (index, value, names)


def test_fallback_qat_runs_when_float_layers_cannot_meet_the_target(run, hard, digits, tmp_path):
    out = tmp_path / "fallback.tflite"
    result = run("quantize", hard["model"], "-o", out, "--mode", "int8", "--calibration", digits["train"],
                 "--val", digits["val"], "--max-drop", "1", "--max-float-ops", "1", "--fallback", "qat")
    assert result.exit_code in (0, 7), result.stderr
    written = out if result.exit_code == 0 else tmp_path / "fallback.failed.tflite"
    record = json.loads(written.with_name(written.name + ".edgepack.json").read_text())["mixed_precision"]
    assert record["fallback"]["method"] == "qat" and record["fallback"]["float_layers_drop"] > 5
    measured = drop_points(hard, written)
    assert abs(measured - min(record["fallback"]["drop"], record["fallback"]["float_layers_drop"])) < 0.5


def test_qat_brings_the_hard_model_within_1_point_with_every_layer_int8(run, hard, digits, tmp_path):
    out = tmp_path / "qat.tflite"
    result = run("qat", hard["model"], "--data", digits["train"], "-o", out, "--epochs", "2", "--json")
    assert result.exit_code == 0, result.stderr
    assert float_compute_ops(out) == []
    assert drop_points(hard, out) <= 1.0
    pairs = {(p["first"], p["second"]) for p in json.loads(result.stdout)["equalized"]}
    assert ("dense", "probabilities") in pairs and ("conv15", "dense") in pairs


def test_cross_layer_equalization_keeps_the_function_and_shrinks_the_exploded_range(hard):
    import tf_keras

    from edgepack.compress import bridge
    from edgepack.loading.model import load_model
    from edgepack.quantization.equalize import equalize_model

    model = bridge.rebuild(load_model(hard["model"]).model, bridge.TF_KERAS)
    x = hard["val"]["x"][:64]
    before = model.predict(x, verbose=0)

    def spread(layer_name: str) -> float:
        ranges = np.abs(model.get_layer(layer_name).get_weights()[0]).max(axis=0)
        return float(ranges.max() / np.median(ranges))

    exploded = spread("dense")
    equalize_model(model)
    assert isinstance(model, tf_keras.Model)
    np.testing.assert_allclose(model.predict(x, verbose=0), before, rtol=1e-3, atol=1e-5)
    assert exploded > 100 and spread("dense") < exploded / 20
