"""``edgepack quantize`` / ``convert``: every mode, both Keras flavors, and the bad inputs."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from conftest import assert_one_line_error, interpreter_accuracy


def _runs(path) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


@pytest.mark.parametrize("name", ["float32", "float16", "dynamic", "int8", "int8_io", "int16x8"])
def test_every_mode_produces_a_file_the_interpreter_runs(tflite_models, name):
    assert _runs(tflite_models[name]).shape == (1, 10)


def test_modes_shrink_the_model_as_expected(tflite_models):
    size = {name: os.path.getsize(path) for name, path in tflite_models.items()}
    assert size["float16"] < 0.6 * size["float32"]
    assert size["int8"] < 0.35 * size["float32"]
    assert size["dynamic"] < 0.35 * size["float32"]


def test_int8_io_model_has_int8_input_with_scale(tflite_models):
    from ai_edge_litert.interpreter import Interpreter

    detail = Interpreter(model_path=str(tflite_models["int8_io"])).get_input_details()[0]
    assert detail["dtype"] == np.int8
    assert detail["quantization"][0] > 0


def test_int8_keras3_loses_at_most_one_point(digits, tflite_models):
    import keras

    val = np.load(digits["val"])
    reference = float(np.mean(keras.models.load_model(digits["model"]).predict(val["x"], verbose=0)
                              .argmax(1) == val["y"]))
    for name in ("int8", "int8_io"):
        assert (reference - interpreter_accuracy(tflite_models[name], val["x"], val["y"])) * 100 <= 1.0


def test_int8_tf_keras_model_loses_at_most_one_point(run, tfkeras_digits, tmp_path):
    import tf_keras

    out = tmp_path / "tfk_int8.tflite"
    result = run("quantize", tfkeras_digits["model"], "-o", out, "--mode", "int8", "--io", "uint8",
                 "--calibration", tfkeras_digits["train"])
    assert result.exit_code == 0, result.stderr
    val = np.load(tfkeras_digits["val"])
    model = tf_keras.models.load_model(tfkeras_digits["model"])
    reference = float(np.mean(model.predict(val["x"], verbose=0).argmax(1) == val["y"]))
    assert (reference - interpreter_accuracy(out, val["x"], val["y"])) * 100 <= 1.0


def test_resolved_config_is_written_beside_the_model(run, digits, tmp_path):
    out = tmp_path / "m.tflite"
    result = run("quantize", digits["model"], "-o", out, "--mode", "dynamic", "--json")
    assert result.exit_code == 0, result.stderr
    printed = json.loads(result.stdout)
    sidecar = json.loads((tmp_path / "m.tflite.edgepack.json").read_text())
    assert sidecar["config"]["mode"] == "dynamic"
    assert sidecar["output_sha256"] == printed["sha256"]
    assert sidecar["provenance"]["libraries"]["tensorflow"].startswith("2.")


def test_convert_is_float32(run, digits, tmp_path):
    result = run("convert", digits["model"], "-o", tmp_path / "f.tflite", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["mode"] == "float32"


def test_h5_files_from_both_flavors_convert(run, digits, tfkeras_digits, tmp_path):
    import keras
    import tf_keras

    keras.models.load_model(digits["model"]).save(tmp_path / "k3.h5")
    tf_keras.models.load_model(tfkeras_digits["model"]).save(tmp_path / "k2.h5")
    for name in ("k3", "k2"):
        result = run("convert", tmp_path / f"{name}.h5", "-o", tmp_path / f"{name}.tflite")
        assert result.exit_code == 0, result.stderr
        assert _runs(tmp_path / f"{name}.tflite").shape == (1, 10)


def test_savedmodel_needs_trust_model_and_then_converts(run, tfkeras_digits, tmp_path):
    import tf_keras

    tf_keras.models.load_model(tfkeras_digits["model"]).save(tmp_path / "sm", save_format="tf")
    assert_one_line_error(run("convert", tmp_path / "sm", "-o", tmp_path / "sm.tflite"), 4, "SavedModel",
                          "--trust-model")
    result = run("convert", tmp_path / "sm", "-o", tmp_path / "sm.tflite", "--trust-model")
    assert result.exit_code == 0, result.stderr
    assert _runs(tmp_path / "sm.tflite").shape == (1, 10)


def test_int8_without_calibration_is_exit_2(run, digits, tmp_path):
    assert_one_line_error(run("quantize", digits["model"], "-o", tmp_path / "x.tflite", "--mode", "int8"), 2,
                          "--calibration")
    assert not (tmp_path / "x.tflite").exists()


def test_integer_io_needs_int8_mode(run, digits, tmp_path):
    assert_one_line_error(run("quantize", digits["model"], "-o", tmp_path / "x.tflite", "--mode", "float16",
                              "--io", "int8"), 2, "--io int8 needs --mode int8")


def test_missing_model_is_exit_4(run, tmp_path):
    assert_one_line_error(run("convert", tmp_path / "nope.keras", "-o", tmp_path / "x.tflite"), 4,
                          "model not found", "nope.keras")


def test_calibration_data_of_the_wrong_shape_is_exit_3_showing_both_shapes(run, digits, tmp_path):
    np.savez(tmp_path / "flat.npz", x=np.zeros((20, 64), np.float32), y=np.zeros(20, np.int64))
    stderr = assert_one_line_error(run("quantize", digits["model"], "-o", tmp_path / "x.tflite", "--mode", "int8",
                                       "--calibration", tmp_path / "flat.npz"), 3, "(20, 64)", "(N, 8, 8, 1)")
    assert "flat.npz" in stderr


def test_unwritable_output_is_exit_8_before_loading(run, digits, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert_one_line_error(run("convert", digits["model"], "-o", blocked / "x.tflite"), 8, "cannot write")


def test_a_failed_conversion_leaves_the_previous_file_untouched(run, digits, tmp_path):
    out = tmp_path / "keep.tflite"
    out.write_bytes(b"previous good model")
    np.savez(tmp_path / "bad.npz", x=np.zeros((5, 3), np.float32))
    result = run("quantize", digits["model"], "-o", out, "--mode", "int8", "--calibration", tmp_path / "bad.npz")
    assert result.exit_code == 3
    assert out.read_bytes() == b"previous good model"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".keep")] == []


def test_static_batch_gives_static_shapes_and_an_edgetpu_ready_int8_model(run, digits, tfkeras_digits, tmp_path):
    for source in (digits, tfkeras_digits):
        out = tmp_path / "static.tflite"
        result = run("quantize", source["model"], "-o", out, "--mode", "int8", "--io", "int8",
                     "--calibration", source["train"], "--static-batch")
        assert result.exit_code == 0, result.stderr
        report = json.loads(run("inspect", out, "--json").stdout)
        assert report["inputs"][0]["shape_signature"] == [1, 8, 8, 1]
        assert "SHAPE" not in report["operators"]
        assert report["edgetpu"]["ready"] is True, report["edgetpu"]["reasons"]
        val = np.load(source["val"])
        assert interpreter_accuracy(out, val["x"], val["y"]) > 0.9


def _square_model(tmp_path):
    """A model whose NEG and SQUARE have no int8 kernel: int8 leaves them in float."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    h = keras.ops.negative(keras.ops.square(keras.layers.Dense(16, name="d1")(inputs)))
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(h))
    model.save(tmp_path / "sq.keras")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "cal.npz", x=rng.random((32, 8)).astype(np.float32), y=rng.integers(0, 4, 32))
    return model


@pytest.mark.parametrize("path", ["recipe", "savedmodel"])
def test_the_float_op_warning_appears_on_every_path_that_converts(run, tmp_path, path):
    model = _square_model(tmp_path)
    if path == "savedmodel":
        model.export(tmp_path / "sq_saved", verbose=False)
        result = run("quantize", tmp_path / "sq_saved", "-o", tmp_path / "sq.tflite", "--mode", "int8",
                     "--calibration", tmp_path / "cal.npz", "--trust-model")
    else:
        (tmp_path / "r.yaml").write_text("name: sq\ndevice: host-cpu\nmodel: sq.keras\n"
                                         "data: {train: cal.npz, val: cal.npz}\n"
                                         f"steps:\n  - quantize: {{mode: int8, samples: 32}}\n  - profile: {{where: estimate}}\noutput: {tmp_path / 'dist'}\n")
        result = run("run", tmp_path / "r.yaml")
    assert result.exit_code == 0, result.stderr
    assert "warning: int8 left" in result.stderr and "NEG" in result.stderr and "SQUARE" in result.stderr
    if path == "recipe":
        report = (tmp_path / "dist" / "report.md").read_text()
        assert "warning: left in float by int8" in report and "NEG#" in report and "SQUARE#" in report


def test_int8_names_the_operators_it_left_in_float(run, tmp_path):
    _square_model(tmp_path)
    out = tmp_path / "sq.tflite"
    result = run("quantize", tmp_path / "sq.keras", "-o", out, "--mode", "int8", "--calibration", tmp_path / "cal.npz",
                 "--json")
    assert result.exit_code == 0, result.stderr
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(out))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    floats = sorted(f"{op['op_name']}#{op['index']}" for op in interpreter._get_ops_details()
                    if op["op_name"] not in ("QUANTIZE", "DEQUANTIZE")
                    and tensors[op["outputs"][0]]["dtype"] == np.float32)
    assert floats and sorted(json.loads(result.stdout)["float_ops"]) == floats
    assert "warning: int8 left" in result.stderr and all(name in result.stderr for name in floats)


def test_a_pipeline_starts_the_converter_before_it_is_needed_and_only_where_it_converts():
    """``prepare`` starts the converter's process (it imports TensorFlow as it starts) before the steps
    that come first; accuracy control and int4 convert in this process and start none."""
    from edgepack.quantization import conversion_worker
    from edgepack.steps.quantize import QuantizeParams, QuantizeStep

    step = QuantizeStep()
    for params, starts in [(QuantizeParams(mode="int8", max_drop=1.0), False),
                           (QuantizeParams(mode="int8", weights="int4"), False),
                           (QuantizeParams(mode="int8"), True)]:
        conversion_worker._stop_worker()
        step.prepare(params)
        worker = conversion_worker._worker
        assert (worker is not None and worker.alive()) is starts, params
    pid = conversion_worker._worker.process.pid
    step.prepare(QuantizeParams(mode="float16"))
    assert conversion_worker._worker.process.pid == pid, "a running converter is kept"


def test_a_converter_that_died_before_its_request_arrived_is_a_crash_not_a_broken_pipe(tmp_path):
    """Started early, the converter may die while it imports TensorFlow: the request then finds a
    closed pipe, and the reply is the crash (its signal), as when it dies while converting."""
    from edgepack.modes import QuantMode
    from edgepack.quantization.conversion_worker import ConversionRequest, _Worker

    worker = _Worker()
    worker.kill()
    request = ConversionRequest(model=tmp_path / "m.keras", mode=QuantMode.INT8, output=tmp_path / "m.tflite",
                                folder=tmp_path)
    assert worker.ask(request, 5) is None and worker.process.returncode == -9
