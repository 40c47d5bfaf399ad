"""Models with several outputs or inputs: outputs and inputs are matched by signature name, never by position;
what edgepack cannot do yet is refused in one line with the contract's exit code. Figures are
computed here from the .tflite through the interpreter's signature (by name)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import assert_one_line_error


@pytest.fixture(scope="module")
def two_outputs(tmp_path_factory, digits):
    """A digits model with a `box` regression output (first in Keras) and a `face` classifier (second);
    the converter puts `face` first among the .tflite's output tensors."""
    import keras

    folder = tmp_path_factory.mktemp("two_outputs")
    train, val = dict(np.load(digits["train"])), dict(np.load(digits["val"]))
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1), name="image")
    h = keras.layers.Dense(32, activation="relu", name="trunk")(keras.layers.Flatten()(inputs))
    box = keras.layers.Dense(4, name="box")(h)
    face = keras.layers.Dense(10, activation="softmax", name="face")(h)
    model = keras.Model(inputs, [box, face])
    model.compile(optimizer="adam", loss=["mse", "sparse_categorical_crossentropy"])

    def boxes(x):
        return np.stack([x.mean((1, 2, 3)), x.std((1, 2, 3)), x[:, :4].mean((1, 2, 3)), x[:, 4:].mean((1, 2, 3))], 1)

    model.fit(train["x"], [boxes(train["x"]), train["y"]], epochs=6, batch_size=32, verbose=0)
    model.save(folder / "two.keras")
    np.savez(folder / "val.npz", x=val["x"], y=val["y"], y_box=boxes(val["x"]).astype(np.float32))
    np.savez(folder / "train.npz", x=train["x"], y=train["y"])
    return {"model": folder / "two.keras", "val": folder / "val.npz", "train": folder / "train.npz",
            "keras": model, "x": val["x"], "y": val["y"], "boxes": boxes(val["x"])}


@pytest.fixture(scope="module")
def two_tflite(run, two_outputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("two_tflite") / "two.tflite"
    result = run("quantize", two_outputs["model"], "-o", out, "--mode", "float32")
    assert result.exit_code == 0, result.stderr
    return out


def signature_outputs(path, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every output of the .tflite by signature key, one row at a time (independent of edgepack)."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path)).get_signature_runner("serving_default")
    rows = [runner(image=row[None].astype(np.float32)) for row in x]
    return {key: np.concatenate([r[key] for r in rows]) for key in rows[0]}


def test_the_converter_really_reorders_the_outputs(two_tflite):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(two_tflite))
    assert [int(d["shape"][-1]) for d in interpreter.get_output_details()] == [10, 4], "face first, box second"


def test_evaluate_without_output_on_a_two_output_model_names_the_outputs(run, two_outputs, two_tflite):
    result = run("evaluate", two_tflite, "--data", two_outputs["val"], "--reference", two_outputs["model"])
    assert_one_line_error(result, 2, "has 2 outputs (box, face)", "--output NAME")


def test_evaluate_computes_the_metric_on_the_named_output(run, two_outputs, two_tflite):
    result = run("evaluate", two_tflite, "--data", two_outputs["val"], "--reference", two_outputs["model"],
                 "--output", "face", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    face = signature_outputs(two_tflite, two_outputs["x"])["output_1"]
    assert report["output"] == "face"
    assert report["tflite"]["value"] == pytest.approx(float(np.mean(face.argmax(1) == two_outputs["y"])))
    keras_face = two_outputs["keras"].predict(two_outputs["x"], verbose=0)[1]
    assert report["reference"]["value"] == pytest.approx(float(np.mean(keras_face.argmax(1) == two_outputs["y"])))
    assert abs(report["drop"]) < 0.5


def test_the_regression_output_reads_its_own_targets(run, two_outputs, two_tflite):
    result = run("evaluate", two_tflite, "--data", two_outputs["val"], "--reference", two_outputs["model"],
                 "--output", "box", "--metric", "mae", "--json")
    assert result.exit_code == 0, result.stderr
    box = signature_outputs(two_tflite, two_outputs["x"])["output_0"]
    expected = float(np.mean(np.abs(box - two_outputs["boxes"])))
    assert json.loads(result.stdout)["tflite"]["value"] == pytest.approx(expected, rel=1e-4)


def test_an_output_name_that_does_not_exist_lists_the_real_ones(run, two_outputs, two_tflite):
    result = run("evaluate", two_tflite, "--data", two_outputs["val"], "--reference", two_outputs["model"],
                 "--output", "score")
    assert_one_line_error(result, 2, "no output 'score'", "box, face")


def test_a_recipe_gates_the_named_output(run, two_outputs, tmp_path):
    recipe = tmp_path / "two.yaml"
    base = (f"name: two\ndevice: host-cpu\nmodel: {two_outputs['model']}\n"
            f"data: {{train: {two_outputs['train']}, val: {two_outputs['val']}{{output}}}}\n"
            f"gates: {{max_accuracy_drop: 1.0}}\noutput: {tmp_path / 'dist' / '{name}'}\n")
    recipe.write_text(base.replace("{output}", ""))
    assert_one_line_error(run("run", recipe), 2, "has 2 outputs (box, face)", progress=True)
    recipe.write_text(base.replace("{output}", ", output: face"))
    result = run("run", recipe, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    face = signature_outputs(tmp_path / "dist" / "two" / "model.tflite", two_outputs["x"])["output_1"]
    assert report["final"] == pytest.approx(float(np.mean(face.argmax(1) == two_outputs["y"])))


# --- several inputs ----------------------------------------------------------------------------------

TOP_SCALE = 50.0  # the `top` input spans 0..50, `bottom` 0..1: int8 calibration by position would swap them


def halves(x: np.ndarray) -> dict[str, np.ndarray]:
    """The digit's upper half (x50) and lower half as two inputs of the same shape (32,)."""
    flat = x.reshape(len(x), 64)
    return {"top": flat[:, :32] * TOP_SCALE, "bottom": flat[:, 32:].copy()}


@pytest.fixture(scope="module")
def two_inputs(tmp_path_factory, digits):
    """A Keras 3 model with inputs `top` and `bottom` of the same shape, each through its own Dense:
    feeding one the other's array gives a wrong figure, not an error. The .npz files list `bottom`
    first, the model `top` first."""
    import keras

    folder = tmp_path_factory.mktemp("two_inputs")
    train, val = dict(np.load(digits["train"])), dict(np.load(digits["val"]))
    keras.utils.set_random_seed(0)
    top, bottom = keras.Input((32,), name="top"), keras.Input((32,), name="bottom")
    h = keras.layers.Concatenate()([keras.layers.Dense(24, activation="relu", name="top_dense")(top),
                                    keras.layers.Dense(24, activation="relu", name="bottom_dense")(bottom)])
    model = keras.Model([top, bottom], keras.layers.Dense(10, activation="softmax", name="digit")(h))
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(halves(train["x"]), train["y"], epochs=12, batch_size=32, verbose=0)
    model.save(folder / "two_in.keras")
    for name, part in (("train", train), ("val", val)):
        arrays = halves(part["x"])
        np.savez(folder / f"{name}.npz", bottom=arrays["bottom"], top=arrays["top"], y=part["y"])
    return {"model": folder / "two_in.keras", "val": folder / "val.npz", "train": folder / "train.npz",
            "keras": model, "inputs": halves(val["x"]), "y": val["y"], "folder": folder}


@pytest.fixture(scope="module")
def two_in_tflite(run, two_inputs):
    out = two_inputs["folder"] / "two_in.tflite"
    result = run("quantize", two_inputs["model"], "-o", out, "--mode", "float32")
    assert result.exit_code == 0, result.stderr
    return out


def signature_accuracy(path, inputs: dict[str, np.ndarray], y: np.ndarray) -> float:
    """Accuracy of the .tflite fed through its signature by input name, one row at a time, each input
    quantized here with its own scale when the model takes integers (independent of edgepack)."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path)).get_signature_runner("serving_default")
    details, output = runner.get_input_details(), runner.get_output_details()
    key = next(iter(output))
    hits = 0
    for row in range(len(y)):
        feed = {}
        for name, detail in details.items():
            value = inputs[name][row:row + 1].astype(np.float32)
            scale, zero = detail["quantization"]
            if detail["dtype"] == np.int8:
                value = np.clip(np.round(value / scale) + zero, -128, 127).astype(np.int8)
            feed[name] = value
        scores = runner(**feed)[key]
        hits += int(np.argmax(scores[0]) == y[row])
    return hits / len(y)


def test_the_tflite_names_its_inputs_after_the_keras_inputs(two_in_tflite):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(two_in_tflite))
    assert sorted(interpreter.get_signature_list()["serving_default"]["inputs"]) == ["bottom", "top"]


def test_evaluate_feeds_each_input_the_array_of_its_name(run, two_inputs, two_in_tflite):
    result = run("evaluate", two_in_tflite, "--data", two_inputs["val"], "--reference", two_inputs["model"], "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    expected = signature_accuracy(two_in_tflite, two_inputs["inputs"], two_inputs["y"])
    keras_scores = two_inputs["keras"].predict(two_inputs["inputs"], verbose=0)
    assert expected > 0.85, "the model is trained: a figure near 10% would mean swapped inputs"
    assert report["samples"] == len(two_inputs["y"])
    assert report["tflite"]["value"] == pytest.approx(expected)
    assert report["reference"]["value"] == pytest.approx(float(np.mean(keras_scores.argmax(1) == two_inputs["y"])))
    assert abs(report["drop"]) < 0.5


def test_int8_calibration_reads_each_input_by_name(run, two_inputs):
    out = two_inputs["folder"] / "two_in_int8.tflite"
    result = run("quantize", two_inputs["model"], "-o", out, "--mode", "int8", "--io", "int8",
                 "--calibration", two_inputs["train"])
    assert result.exit_code == 0, result.stderr
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_path=str(out)).get_signature_runner("serving_default").get_input_details()
    scales = {name: detail["quantization"][0] for name, detail in details.items()}
    assert 20 < scales["top"] / scales["bottom"] < 100, scales  # each input calibrated on its own range
    expected = signature_accuracy(out, two_inputs["inputs"], two_inputs["y"])
    assert expected > 0.85
    report = json.loads(run("evaluate", out, "--data", two_inputs["val"], "--reference", two_inputs["model"],
                            "--json").stdout)
    assert report["tflite"]["value"] == pytest.approx(expected)
    assert report["drop"] < 3.0


def test_a_missing_input_array_lists_the_arrays_present_and_the_inputs_wanted(run, two_inputs, two_in_tflite,
                                                                                tmp_path):
    np.savez(tmp_path / "half.npz", top=two_inputs["inputs"]["top"], y=two_inputs["y"])
    assert_one_line_error(run("evaluate", two_in_tflite, "--data", tmp_path / "half.npz"), 3,
                          "no array for input 'bottom'", "arrays present: top, y", "inputs wanted: bottom, top")


def test_an_input_array_of_the_wrong_shape_names_the_input(run, two_inputs, two_in_tflite, tmp_path):
    np.savez(tmp_path / "bad.npz", top=two_inputs["inputs"]["top"], bottom=two_inputs["inputs"]["bottom"][:, :31],
             y=two_inputs["y"])
    assert_one_line_error(run("evaluate", two_in_tflite, "--data", tmp_path / "bad.npz"), 3,
                          "input 'bottom' have shape", "expects (N, 32)")


def test_a_tf_keras_two_input_model_is_matched_by_name(run, tmp_path):
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    left, right = tf_keras.Input((4,), name="left"), tf_keras.Input((4,), name="right")
    joined = tf_keras.layers.Concatenate()([tf_keras.layers.Dense(3, name="l")(left), right])
    tf_keras.Model([left, right], tf_keras.layers.Dense(1, name="value")(joined)).save(tmp_path / "tfk.h5")
    rng = np.random.default_rng(0)
    arrays = {"right": rng.normal(size=(40, 4)).astype(np.float32), "left": rng.normal(size=(40, 4)).astype(np.float32)}
    np.savez(tmp_path / "data.npz", **arrays, y=rng.normal(size=(40, 1)).astype(np.float32))
    assert run("quantize", tmp_path / "tfk.h5", "-o", tmp_path / "tfk.tflite", "--mode", "float32").exit_code == 0
    result = run("evaluate", tmp_path / "tfk.tflite", "--data", tmp_path / "data.npz", "--reference",
                 tmp_path / "tfk.h5", "--metric", "mae", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(tmp_path / "tfk.tflite")).get_signature_runner("serving_default")
    predicted = np.concatenate([runner(left=arrays["left"][i:i + 1], right=arrays["right"][i:i + 1])["value"]
                                for i in range(40)])
    target = np.load(tmp_path / "data.npz")["y"]
    assert report["tflite"]["value"] == pytest.approx(float(np.mean(np.abs(predicted - target))), rel=1e-5)
    assert report["drop"] == pytest.approx(0.0, abs=1e-5)


def test_a_recipe_scores_a_two_input_model(run, two_inputs, tmp_path):
    recipe = tmp_path / "two_in.yaml"
    recipe.write_text(f"name: two-in\ndevice: host-cpu\nmodel: {two_inputs['model']}\n"
                      f"data: {{train: {two_inputs['train']}, val: {two_inputs['val']}}}\n"
                      f"steps: [{{quantize: {{mode: float32}}}}]\ngates: {{max_accuracy_drop: 1.0}}\n"
                      f"output: {tmp_path / 'dist' / '{name}'}\n")
    result = run("run", recipe, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    tflite = tmp_path / "dist" / "two-in" / "model.tflite"
    assert report["final"] == pytest.approx(signature_accuracy(tflite, two_inputs["inputs"], two_inputs["y"]))


@pytest.mark.parametrize("command, code, fragment", [
    ("prune", 4, "2 inputs"), ("cluster", 4, "2 inputs"), ("qat", 4, "2 inputs"), ("sensitivity", 4, "2 inputs"),
    ("quantize-max-drop", 4, "2 inputs"), ("profile-data", 3, "2 inputs"),
])
def test_commands_without_several_inputs_refuse_a_two_input_model_in_one_line(run, two_inputs, two_in_tflite,
                                                                              tmp_path, command, code, fragment):
    model, data = two_inputs["model"], two_inputs["train"]
    args = {"prune": ["prune", model, "--data", data, "-o", tmp_path / "p.keras", "--epochs", "1"],
            "cluster": ["cluster", model, "--data", data, "-o", tmp_path / "c.keras", "--epochs", "1"],
            "qat": ["qat", model, "--data", data, "-o", tmp_path / "q.tflite", "--epochs", "1"],
            "sensitivity": ["sensitivity", model, "--calibration", data, "--data", data],
            "quantize-max-drop": ["quantize", model, "-o", tmp_path / "x.tflite", "--mode", "int8", "--calibration",
                                  data, "--val", data, "--max-drop", "1"],
            "profile-data": ["profile", two_in_tflite, "--data", data, "--device", "host-cpu"]}[command]
    assert_one_line_error(run(*args), code, fragment)


def test_profile_and_inspect_take_a_two_input_model(run, two_inputs, two_in_tflite):
    for args in (["profile", two_in_tflite, "--device", "host-cpu", "--max-seconds", "1"],
                 ["profile", two_in_tflite, "--device", "raspberry-pi-4", "--estimate"],
                 ["inspect", two_inputs["model"]], ["inspect", two_in_tflite]):
        result = run(*args)
        assert result.exit_code == 0, (args, result.stderr)
