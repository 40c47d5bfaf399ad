"""``edgepack evaluate``: the figures it reports, the gate, and the bad inputs."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from conftest import assert_one_line_error, edgepack_subprocess, interpreter_accuracy


def test_reports_the_accuracy_computed_independently(run, digits, tflite_models):
    val = np.load(digits["val"])
    for name in ("float32", "int8", "int8_io"):
        result = run("evaluate", tflite_models[name], "--data", digits["val"], "--json")
        assert result.exit_code == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["samples"] == len(val["y"])
        assert report["tflite"]["value"] == pytest.approx(interpreter_accuracy(tflite_models[name], val["x"], val["y"]))
        assert report["runtime"]["name"] == "ai-edge-litert"


def test_batched_and_unbatched_runs_agree(run, digits, tflite_models):
    batched = json.loads(run("evaluate", tflite_models["int8"], "--data", digits["val"], "--json").stdout)
    single = json.loads(run("evaluate", tflite_models["int8"], "--data", digits["val"], "--json",
                            "--batch-size", "1").stdout)
    assert batched["batch_size"] > 1 and single["batch_size"] == 1
    assert batched["tflite"]["value"] == single["tflite"]["value"]


def test_reference_and_drop_pass_the_gate(run, digits, tflite_models):
    result = run("evaluate", tflite_models["int8"], "--data", digits["val"], "--reference", digits["model"],
                 "--max-drop", "1.0", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["drop"] == pytest.approx((report["reference"]["value"] - report["tflite"]["value"]) * 100)
    assert report["passed"] is True


def test_a_drop_past_the_threshold_exits_7_and_still_reports(run, digits, untrained_digits, tmp_path):
    from edgepack.steps.quantize import QuantizeConfig, quantize

    bad = quantize(QuantizeConfig(model=untrained_digits, output=tmp_path / "bad.tflite")).path
    result = run("evaluate", bad, "--data", digits["val"], "--reference", digits["model"], "--max-drop", "1.0",
                 "--json")
    assert_one_line_error(result, 7, "accuracy drop", "exceeds --max-drop 1.0")
    assert json.loads(result.stdout)["passed"] is False


def test_relative_drop_is_a_percentage_of_the_reference(run, digits, untrained_digits, tmp_path):
    from edgepack.steps.quantize import QuantizeConfig, quantize

    bad = quantize(QuantizeConfig(model=untrained_digits, output=tmp_path / "bad.tflite")).path
    report = json.loads(run("evaluate", bad, "--data", digits["val"], "--reference", digits["model"],
                            "--max-drop", "99", "--relative", "--json").stdout)
    expected = (report["reference"]["value"] - report["tflite"]["value"]) / report["reference"]["value"] * 100
    assert report["drop"] == pytest.approx(expected)
    assert report["passed"] is True


def test_regression_model_evaluates_with_mae_and_mse(run, regression, tmp_path):
    from edgepack.steps.quantize import QuantizeConfig, quantize

    tflite = quantize(QuantizeConfig(model=regression["model"], output=tmp_path / "reg.tflite")).path
    val = np.load(regression["val"])
    result = run("evaluate", tflite, "--data", regression["val"], "--metric", "mae", "--reference",
                 regression["model"], "--max-drop", "0.05", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tflite))
    interpreter.resize_tensor_input(0, [len(val["x"]), 8, 8, 1])
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], val["x"])
    interpreter.invoke()
    predicted = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[:, 0]
    assert report["tflite"]["value"] == pytest.approx(np.mean(np.abs(predicted - val["y"])), rel=1e-5)
    assert report["drop_unit"] == "increase"
    mse = json.loads(run("evaluate", tflite, "--data", regression["val"], "--metric", "mse", "--json").stdout)
    assert mse["tflite"]["value"] == pytest.approx(np.mean((predicted - val["y"]) ** 2), rel=1e-5)


def test_top5_is_at_least_accuracy(run, digits, tflite_models):
    acc = json.loads(run("evaluate", tflite_models["int8"], "--data", digits["val"], "--json").stdout)
    top5 = json.loads(run("evaluate", tflite_models["int8"], "--data", digits["val"], "--metric", "top5",
                          "--json").stdout)
    assert top5["tflite"]["value"] >= acc["tflite"]["value"]


def test_evaluate_without_reference_never_imports_tensorflow(digits, tflite_models):
    code = ("import sys\nfrom edgepack.cli import cli\n"
            f"try:\n    cli.main(['evaluate', {str(tflite_models['int8'])!r}, '--data', {str(digits['val'])!r}])\n"
            "except SystemExit as e:\n    assert e.code == 0, e.code\n"
            "print('TF' if 'tensorflow' in sys.modules else 'NO-TF', file=sys.stderr)")
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stderr.strip().splitlines()[-1] == "NO-TF", result.stderr


@pytest.mark.parametrize("content", [b"", "truncated", "random"])
def test_corrupt_tflite_is_exit_4(run, digits, tflite_models, tmp_path, content):
    if content == "truncated":
        content = tflite_models["int8"].read_bytes()[:5000]
    elif content == "random":
        content = random.Random(0).randbytes(20000)
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(content)
    assert_one_line_error(run("evaluate", bad, "--data", digits["val"]), 4, "bad.tflite")


def test_truncated_body_with_valid_header_is_exit_4(run, digits, tflite_models, tmp_path):
    data = tflite_models["float32"].read_bytes()
    bad = tmp_path / "half.tflite"
    bad.write_bytes(data[: len(data) // 2])
    assert_one_line_error(run("evaluate", bad, "--data", digits["val"]), 4, "half.tflite")


def test_pickled_npz_is_exit_3(run, tflite_models, tmp_path):
    np.savez(tmp_path / "pickled.npz", x=np.array([{"a": 1}, None], dtype=object), y=np.zeros(2))
    assert_one_line_error(run("evaluate", tflite_models["int8"], "--data", tmp_path / "pickled.npz"), 3,
                          "pickled", "pickled.npz")


def test_data_that_does_not_fit_the_model_is_exit_3_with_both_shapes(run, tflite_models, tmp_path):
    np.savez(tmp_path / "wrong.npz", x=np.zeros((10, 8, 8), np.float32), y=np.zeros(10, np.int64))
    assert_one_line_error(run("evaluate", tflite_models["int8"], "--data", tmp_path / "wrong.npz"), 3,
                          "(10, 8, 8)", "(N, 8, 8, 1)", "channel axis")


def test_labels_beyond_the_outputs_are_exit_3(run, tflite_models, tmp_path):
    np.savez(tmp_path / "labels.npz", x=np.zeros((4, 8, 8, 1), np.float32), y=np.array([0, 1, 2, 12]))
    assert_one_line_error(run("evaluate", tflite_models["int8"], "--data", tmp_path / "labels.npz"), 3, "0..12")


def test_missing_data_is_exit_3(run, tflite_models, tmp_path):
    assert_one_line_error(run("evaluate", tflite_models["int8"], "--data", tmp_path / "none.npz"), 3,
                          "data not found")


def test_missing_key_names_the_keys_present(run, tflite_models, tmp_path):
    np.savez(tmp_path / "k.npz", images=np.zeros((2, 8, 8, 1), np.float32))
    assert_one_line_error(run("evaluate", tflite_models["int8"], "--data", tmp_path / "k.npz"), 3,
                          "no array 'x'", "images", "--x-key")


@pytest.mark.parametrize("args, fragment", [
    (["--max-drop", "1"], "--reference"),
    (["--max-drop", "-1", "--reference", "r.keras"], "--max-drop"),
    (["--max-drop", "nan", "--reference", "r.keras"], "finite"),
    (["--relative"], "--relative needs --max-drop"),
])
def test_inconsistent_gate_options_are_exit_2(run, digits, tflite_models, args, fragment):
    assert_one_line_error(run("evaluate", tflite_models["int8"], "--data", digits["val"], *args), 2, fragment)


def test_code_data_needs_trust_code(run, digits, tflite_models, tmp_path):
    (tmp_path / "mydata.py").write_text(
        "import numpy as np\n"
        f"def load():\n    d = np.load({str(digits['val'])!r})\n    return d['x'], d['y']\n")
    assert_one_line_error(run("evaluate", tflite_models["int8"], "--data", "mydata:load", cwd=tmp_path), 2,
                          "--trust-code")
    result = run("evaluate", tflite_models["int8"], "--data", "mydata:load", "--trust-code", "--json", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["samples"] == len(np.load(digits["val"])["y"])


def test_entry_point_gate_failure_exit_code(digits, untrained_digits, tmp_path):
    from edgepack.steps.quantize import QuantizeConfig, quantize

    bad = quantize(QuantizeConfig(model=untrained_digits, output=tmp_path / "bad.tflite")).path
    result = edgepack_subprocess("evaluate", bad, "--data", digits["val"], "--reference", digits["model"],
                                 "--max-drop", "1")
    assert result.returncode == 7
    assert result.stderr.count("\n") == 1 and "exceeds --max-drop" in result.stderr
