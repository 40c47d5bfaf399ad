"""``quantize --weights int4``: int4 weights (LiteRT Quantizer) on fully-connected and convolution operators,
int8 activations, accuracy control's ladder int4 -> int8 -> float, and the inputs it refuses. Sizes, weight
types and accuracy are read from the .tflite here, never from edgepack's report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_one_line_error, interpreter_accuracy


def weight_types(path: Path) -> dict[str, str]:
    """``{operator#index: dtype of its weight tensor}`` for every FULLY_CONNECTED / CONV_2D /
    DEPTHWISE_CONV_2D, read with the flatbuffer schema (the weight is the operator's input 1)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(Path(path).read_bytes(), 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    types = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    graph = model.subgraphs[0]
    found = {}
    for index, op in enumerate(graph.operators):
        code = model.operatorCodes[op.opcodeIndex]
        name = names[max(code.builtinCode, code.deprecatedBuiltinCode)]
        if name in ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D"):
            found[f"{name}#{index}"] = types[graph.tensors[op.inputs[1]].type]
    return found


@pytest.fixture(scope="module")
def conv1d(tmp_path_factory, digits) -> Path:
    """A convolution-heavy Conv1D net on digits read as 8 steps of 8 features."""
    import keras

    train = np.load(digits["train"])
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1), name="image")
    h = keras.layers.Reshape((8, 8), name="rows")(inputs)
    for index, width in enumerate((64, 128, 128)):
        h = keras.layers.Conv1D(width, 3, padding="same", activation="relu", name=f"conv{index}")(h)
    h = keras.layers.GlobalAveragePooling1D(name="pool")(h)
    outputs = keras.layers.Dense(10, activation="softmax", name="probabilities")(h)
    model = keras.Model(inputs, outputs, name="conv1d_digits")
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(train["x"], train["y"], epochs=12, batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("conv1d") / "conv1d.keras"
    model.save(path)
    return path


@pytest.mark.parametrize("which", ["digits", "conv1d"])
def test_int4_is_at_least_1_5x_smaller_than_int8_within_1_point(run, tmp_path, digits, conv1d, which):
    model = digits["model"] if which == "digits" else conv1d
    val = np.load(digits["val"])
    common = ["--mode", "int8", "--calibration", digits["train"]]
    int8 = tmp_path / "int8.tflite"
    assert run("quantize", model, "-o", int8, *common).exit_code == 0
    int4 = tmp_path / "int4.tflite"
    result = run("quantize", model, "-o", int4, *common, "--weights", "int4", "--val", digits["val"],
                 "--max-drop", "1", "--json")
    assert result.exit_code == 0, result.stderr
    assert int8.stat().st_size / int4.stat().st_size >= 1.5, (int8.stat().st_size, int4.stat().st_size)
    types = weight_types(int4)
    assert types and all(dtype == "int4" for op, dtype in types.items() if not op.startswith("DEPTHWISE")), types
    assert all(dtype == "int8" for dtype in weight_types(int8).values())
    float_accuracy = float(np.mean(np.argmax(_keras_predict(model, val["x"]), axis=1) == val["y"]))
    assert float_accuracy - interpreter_accuracy(int4, val["x"], val["y"]) <= 0.01 + 1e-9
    record = json.loads(result.stdout)
    assert sorted(record["int4_ops"]) == sorted(types)
    _estimates_charge_int4_convolutions(int8, int4)


def _estimates_charge_int4_convolutions(int8: Path, int4: Path) -> None:
    """The latency estimate runs an int4 CONV_2D at the profile's int4_conv figure (XNNPACK has no int4
    convolution kernel: 3x slower measured here), an int4 FULLY_CONNECTED at int8 speed on half the bytes."""
    from edgepack.devices.loader import load_device
    from edgepack.latency.estimate import estimate_latency
    from edgepack.latency.op_counts import model_work

    host = load_device("host-cpu")
    ops = {name: estimate_latency(model_work(path), host, 1).ops for name, path in (("int8", int8), ("int4", int4))}
    convs = {name: [op for op in found if op.op == "CONV_2D"] for name, found in ops.items()}
    assert convs["int4"] and all(op.dtype == "int4_conv" for op in convs["int4"])
    assert all(op.dtype == "int8" for op in convs["int8"])
    assert sum(op.ms for op in convs["int4"]) > sum(op.ms for op in convs["int8"])
    assert all(op.dtype == "int8" for op in ops["int4"] if op.op == "FULLY_CONNECTED")


def _keras_predict(path: Path, x: np.ndarray) -> np.ndarray:
    import keras

    return keras.saving.load_model(path).predict(x, verbose=0)


def test_int4_runs_with_int8_io_and_fc_only_keeps_convolutions_int8(run, tmp_path, digits):
    out = tmp_path / "fc.tflite"
    result = run("quantize", digits["model"], "-o", out, "--mode", "int8", "--io", "int8", "--calibration",
                 digits["train"], "--weights", "int4", "--int4-ops", "fc")
    assert result.exit_code == 0, result.stderr
    types = weight_types(out)
    assert {op: t for op, t in types.items() if op.startswith("FULLY")} and \
        all(t == "int4" for op, t in types.items() if op.startswith("FULLY_CONNECTED"))
    assert all(t == "int8" for op, t in types.items() if op.startswith("CONV_2D"))
    val = np.load(digits["val"])
    assert interpreter_accuracy(out, val["x"], val["y"]) > 0.9
    shown = json.loads(run("inspect", out, "--json").stdout)
    assert shown["tensor_dtypes"].get("int4") == 2
    assert any("int4" in reason for reason in shown["edgetpu"]["reasons"])
    assert any("int4" in op["reason"] for op in shown["gpu"]["cpu_ops"])


def damaged_for_int4(digits, folder: Path) -> tuple[Path, str]:
    """The digits CNN with the Dense rows fed by one conv channel scaled up 20x (and that channel scaled
    down 20x, so the float function is unchanged): per-channel int4 rounds the Dense layer's other
    weights to zero; int8's finer steps do not."""
    import keras

    model = keras.saving.load_model(digits["model"])
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    dense = next(layer for layer in model.layers if isinstance(layer, keras.layers.Dense))
    last = convs[-1]
    kernel, bias = last.get_weights()
    channels = kernel.shape[-1]
    kernel[..., 0] /= 20.0
    bias[0] /= 20.0
    last.set_weights([kernel, bias])
    weights = dense.get_weights()
    weights[0][0::channels, :] *= 20.0  # Flatten of NHWC: rows p * C + c belong to channel c
    dense.set_weights(weights)
    path = folder / "damaged.keras"
    model.save(path)
    return path, dense.name


def test_accuracy_control_raises_a_layer_int4_hurts_only_to_int8(run, tmp_path, digits):
    model, dense = damaged_for_int4(digits, tmp_path)
    val = np.load(digits["val"])
    plain = tmp_path / "plain.tflite"
    assert run("quantize", model, "-o", plain, "--mode", "int8", "--calibration", digits["train"],
               "--weights", "int4").exit_code == 0
    float_accuracy = float(np.mean(np.argmax(_keras_predict(model, val["x"]), axis=1) == val["y"]))
    assert float_accuracy - interpreter_accuracy(plain, val["x"], val["y"]) > 0.02, "int4 should hurt this model"
    out = tmp_path / "ladder.tflite"
    result = run("quantize", model, "-o", out, "--mode", "int8", "--calibration", digits["train"], "--weights",
                 "int4", "--val", digits["val"], "--max-drop", "1", "--json")
    assert result.exit_code == 0, result.stderr
    control = json.loads(result.stdout)["mixed"]["control"]
    assert control["promote"] == ["int8", "float"] and dense in control["int8_layers"]
    assert control["float_layers"] == []
    assert float_accuracy - interpreter_accuracy(out, val["x"], val["y"]) <= 0.01 + 1e-9
    types = weight_types(out)
    assert "int8" in types.values() and "int4" in types.values(), types


@pytest.mark.parametrize("args, fragment", [
    (["--mode", "float16", "--weights", "int4"], "mode int8"),
    (["--mode", "int8", "--weights", "int4", "--block-size", "48"], "power of two"),
    (["--mode", "int8", "--weights", "int4", "--block-size", "16"], "power of two"),
    (["--mode", "int8", "--weights", "int4", "--block-size", "32"], "blockwise"),
    (["--mode", "int8", "--block-size", "64"], "needs --weights int4"),
    (["--mode", "int8", "--promote", "int8", "--max-drop", "1"], "needs --weights int4"),
])
def test_bad_int4_options_exit_2_in_one_line(run, tmp_path, digits, args, fragment):
    result = run("quantize", digits["model"], "-o", tmp_path / "x.tflite", "--calibration", digits["train"],
                 "--val", digits["val"], *args)
    assert_one_line_error(result, 2, fragment)
    assert not (tmp_path / "x.tflite").exists()


def test_recipes_validate_refuses_int4_without_int8(run, tmp_path, digits):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: r\ndevice: host-cpu\nmodel: {digits['model']}\ndata: {{train: {digits['train']}}}\n"
                      f"steps:\n  - quantize: {{mode: float16, weights: int4}}\n")
    assert_one_line_error(run("recipes", "validate", recipe), 2, "weights int4 needs mode int8")


def test_a_model_with_over_256_kb_of_int4_weights_loads_and_runs(run, tmp_path):
    """LiteRT Quantizer writes such weights after the flatbuffer; the file edgepack writes keeps them."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((1024,))
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Dense(1024, activation="relu")(inputs)))
    model.save(tmp_path / "wide.keras")
    x = np.random.default_rng(0).uniform(-1, 1, (32, 1024)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    out = tmp_path / "wide.tflite"
    result = run("quantize", tmp_path / "wide.keras", "-o", out, "--mode", "int8", "--weights", "int4",
                 "--calibration", tmp_path / "x.npz", "--samples", "32")
    assert result.exit_code == 0, result.stderr
    assert set(weight_types(out).values()) == {"int4"}
    assert out.stat().st_size < 1024 * 1024 * 0.6  # 1M int4 weights: 512 KB, not the 1 MB of int8
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(out))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x[:1])
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
    want = model.predict(x[:1], verbose=0)[0]
    assert np.corrcoef(got, want)[0, 1] > 0.95


def test_int4_weights_beside_int16_activations(run, tmp_path, digits):
    """--mode int16x8 --weights int4: LiteRT runs int4 weights with 16-bit activations too (checked here in
    the interpreter: accuracy within 1 point of the float model)."""
    from ai_edge_litert.interpreter import Interpreter

    out = tmp_path / "w4a16.tflite"
    result = run("quantize", digits["model"], "-o", out, "--mode", "int16x8", "--weights", "int4",
                 "--calibration", digits["train"])
    assert result.exit_code == 0, result.stderr
    types = weight_types(out)
    assert types and set(types.values()) == {"int4"}, types
    dtypes = {np.dtype(d["dtype"]).name for d in Interpreter(model_path=str(out)).get_tensor_details()}
    assert "int16" in dtypes
    val = np.load(digits["val"])
    float_accuracy = float(np.mean(np.argmax(_keras_predict(digits["model"], val["x"]), axis=1) == val["y"]))
    assert float_accuracy - interpreter_accuracy(out, val["x"], val["y"]) <= 0.01 + 1e-9
