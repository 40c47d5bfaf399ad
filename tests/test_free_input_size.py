"""A fully convolutional model with free height and width ([-1, -1, -1, 3]): evaluate and profile
size the interpreter to the data; without data, profile says what it needs; the estimate says which
shape it assumed. Accuracy is checked here with an interpreter the test resizes itself."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import assert_one_line_error


@pytest.fixture(scope="module")
def fcn(run, tmp_path_factory):
    import keras

    folder = tmp_path_factory.mktemp("fcn")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 1)(h))
    model = keras.Model(inputs, keras.layers.Softmax()(h))
    model.save(folder / "fcn.keras")
    for size in (16, 24):
        x = np.random.default_rng(size).random((20, size, size, 3)).astype(np.float32)
        np.savez(folder / f"data{size}.npz", x=x, y=np.random.default_rng(1).integers(0, 4, 20))
    assert run("quantize", folder / "fcn.keras", "-o", folder / "fcn.tflite", "--mode", "float32").exit_code == 0
    return folder


def accuracy_here(path, data) -> float:
    from ai_edge_litert.interpreter import Interpreter

    arrays = np.load(data)
    interpreter = Interpreter(model_path=str(path))
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], [1, *arrays["x"].shape[1:]])
    interpreter.allocate_tensors()
    output = interpreter.get_output_details()[0]["index"]
    hits = 0
    for row, label in zip(arrays["x"], arrays["y"]):
        interpreter.set_tensor(detail["index"], row[None])
        interpreter.invoke()
        hits += int(interpreter.get_tensor(output)[0].argmax() == label)
    return hits / len(arrays["y"])


@pytest.mark.parametrize("size", [16, 24])
def test_evaluate_sizes_the_interpreter_to_the_data(run, fcn, size):
    result = run("evaluate", fcn / "fcn.tflite", "--data", fcn / f"data{size}.npz", "--reference", fcn / "fcn.keras",
                 "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["tflite"]["value"] == pytest.approx(accuracy_here(fcn / "fcn.tflite", fcn / f"data{size}.npz"))
    assert report["drop"] == pytest.approx(0.0, abs=1e-9)


def test_profile_measures_at_the_size_of_the_data(run, fcn):
    result = run("profile", fcn / "fcn.tflite", "--data", fcn / "data24.npz", "--runs", "5", "--min-seconds", "0",
                 "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["latency_ms"]["count"] >= 5


def test_profile_without_data_says_the_input_size_is_open(run, fcn):
    assert_one_line_error(run("profile", fcn / "fcn.tflite", "--runs", "5"), 3, "accepts any size", "--data")


def test_the_estimate_says_which_shape_it_assumed(run, fcn):
    result = run("profile", fcn / "fcn.tflite", "--estimate", "--device", "raspberry-pi-4", "--json")
    assert result.exit_code == 0, result.stderr
    notes = " ".join(json.loads(result.stdout)["notes"])
    assert "accepts any size [-1, -1, -1, 3]" in notes and "estimated at the stored shape [1, 1, 1, 3]" in notes
    assert "the batch is dynamic; estimated for batch 1" in notes


@pytest.fixture(scope="module")
def unet(run, tmp_path_factory):
    """A free-size encoder-decoder (stride-2 convolution, pooling, upsampling, transposed convolution, skip
    connection): at the stored placeholder size 1x1 its pooling leaves nothing, and XNNPACK cannot re-plan
    it once prepared, so it must be sized to the data before its first allocation."""
    import keras

    folder = tmp_path_factory.mktemp("unet")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    down = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    inner = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(keras.layers.MaxPooling2D()(down))
    joined = keras.layers.Concatenate()([down, keras.layers.UpSampling2D()(inner)])
    up = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same")(joined)
    keras.Model(inputs, keras.layers.Softmax()(keras.layers.GlobalAveragePooling2D()(up))).save(folder / "unet.keras")
    x = np.random.default_rng(64).random((20, 64, 64, 3)).astype(np.float32)
    np.savez(folder / "data64.npz", x=x, y=np.random.default_rng(1).integers(0, 4, 20))
    assert run("quantize", folder / "unet.keras", "-o", folder / "unet.tflite", "--mode", "float32").exit_code == 0
    return folder


def test_a_graph_xnnpack_cannot_resize_runs_at_the_datas_size(run, unet):
    evaluated = run("evaluate", unet / "unet.tflite", "--data", unet / "data64.npz", "--json")
    assert evaluated.exit_code == 0, evaluated.stderr
    expected = accuracy_here(unet / "unet.tflite", unet / "data64.npz")  # sized before its first allocation
    assert json.loads(evaluated.stdout)["tflite"]["value"] == pytest.approx(expected)
    profiled = run("profile", unet / "unet.tflite", "--data", unet / "data64.npz", "--runs", "5", "--min-seconds", "0",
                   "--json")
    assert profiled.exit_code == 0, profiled.stderr
    assert json.loads(profiled.stdout)["latency_ms"]["count"] >= 5
