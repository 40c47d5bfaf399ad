"""Models with several outputs or inputs: outputs are matched by signature name, never by position;
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


def test_a_two_input_model_is_refused_in_one_line(run, digits, tmp_path):
    import keras

    left, right = keras.Input((4,), name="left"), keras.Input((3,), name="right")
    model = keras.Model([left, right], keras.layers.Dense(2)(keras.layers.Concatenate()([left, right])))
    model.save(tmp_path / "two_in.keras")
    np.savez(tmp_path / "data.npz", x=np.zeros((4, 4), np.float32), y=np.zeros(4, np.int64))
    assert run("quantize", tmp_path / "two_in.keras", "-o", tmp_path / "f.tflite", "--mode", "float32").exit_code == 0
    assert_one_line_error(run("evaluate", tmp_path / "f.tflite", "--data", tmp_path / "data.npz"), 3,
                          "2 inputs (", "single-input")
    result = run("quantize", tmp_path / "two_in.keras", "-o", tmp_path / "i.tflite", "--mode", "int8",
                 "--calibration", tmp_path / "data.npz")
    assert result.exit_code in (2, 3, 4) and len(result.stderr.strip().splitlines()) == 1, result.stderr
