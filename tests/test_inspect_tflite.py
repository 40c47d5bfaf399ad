"""``inspect`` on .tflite files: histogram, dtypes, I/O details, quantization, Edge TPU readiness."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import gzip
import hashlib
import json
import subprocess
import sys
import types

import numpy as np
import pytest

from edgepack.errors import ModelError, RuntimeUnavailable
from edgepack.inspection import edgetpu, tflite_graph, tflite_model
from edgepack.inspection.tflite_graph import Graph, OpInfo, TensorInfo
from edgepack.inspection.tflite_model import inspect_tflite

CNN_OPS = {"CONV_2D": 1, "MAX_POOL_2D": 1, "RESHAPE": 1, "FULLY_CONNECTED": 1, "SOFTMAX": 1}


def _digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    return (load_digits().images[:32, :, :, None] / 16.0).astype(np.float32)


def _cnn(keras, activation: str = "relu", batch_size: int | None = 1):
    """Conv2D, activation, MaxPool, Flatten, Dense(10), Softmax: fixed weights from the seed."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(8, 8, 1), batch_size=batch_size)
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = keras.layers.LeakyReLU()(x) if activation == "leaky" else keras.layers.ReLU()(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)  # 128 features: Dense has 1,280 weights, enough for dynamic range
    x = keras.layers.Dense(10)(x)
    return keras.Model(inputs, keras.layers.Softmax()(x))


def _convert(tf, model, mode: str, calibration: np.ndarray) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode.startswith("int"):
        converter.representative_dataset = lambda: ([x[None]] for x in calibration)
    if mode.startswith("int8"):
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if mode == "int8":
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    if mode == "int16x8":
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    return converter.convert()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Paths of the test models by name: one CNN in six modes, a LeakyReLU CNN, a dynamic batch."""
    import keras
    import tensorflow as tf

    folder = tmp_path_factory.mktemp("tflite")
    calibration = _digits()
    cnn = _cnn(keras)
    built = {mode: _convert(tf, cnn, mode, calibration)
             for mode in ("float32", "dynamic", "float16", "int8", "int8_float_io", "int16x8")}
    built["leaky_int8"] = _convert(tf, _cnn(keras, "leaky"), "int8", calibration)
    built["dynamic_batch_int8"] = _convert(tf, _cnn(keras, batch_size=None), "int8", calibration)
    paths = {}
    for name, data in built.items():
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(data)
    return paths


@pytest.fixture(scope="module")
def reports(models):
    return {name: inspect_tflite(path).model_dump() for name, path in models.items()}


def _rewrite_opcodes(src, dst, change):
    """Write ``src`` to ``dst`` with ``change(schema, operator_code)`` applied to each operator code."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(src.read_bytes(), 0)
    for code in model.operatorCodes:
        change(schema, code)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    dst.write_bytes(bytes(builder.Output()))
    return dst


# --- what the report says ---------------------------------------------------------------------


def test_int8_cnn_histogram_dtypes_and_io(reports, models):
    report = reports["int8"]
    assert report["kind"] == "tflite" and report["path"] == str(models["int8"])
    assert report["operators"] == CNN_OPS and report["operator_count"] == 5
    assert report["subgraphs"] == 1
    assert set(report["tensor_dtypes"]) == {"int8", "int32"}
    assert report["full_integer"] is True and report["float_tensor_count"] == 0
    (inp,), (out,) = report["inputs"], report["outputs"]
    assert inp["dtype"] == "int8" and inp["shape"] == [1, 8, 8, 1] == inp["shape_signature"]
    assert isinstance(inp["scale"], float) and inp["scale"] > 0
    assert isinstance(inp["zero_point"], int) and -128 <= inp["zero_point"] <= 127
    assert out["dtype"] == "int8" and out["shape"] == [1, 10] and out["scale"] > 0


def test_size_gzip_and_sha256_describe_the_file(reports, models):
    data = models["int8"].read_bytes()
    report = reports["int8"]
    assert report["size_bytes"] == len(data)
    assert report["gzip_size_bytes"] == len(gzip.compress(data, compresslevel=9))
    assert report["sha256"] == hashlib.sha256(data).hexdigest()


def test_every_report_is_plain_json(reports):
    for report in reports.values():
        assert json.loads(json.dumps(report)) == report


@pytest.mark.parametrize("name, scheme", [
    ("float32", "float32"), ("dynamic", "dynamic-range"), ("float16", "float16"),
    ("int8", "full-integer"), ("int8_float_io", "int8 (float I/O)"), ("int16x8", "int16x8"),
])
def test_quantization_scheme_of_each_mode(reports, name, scheme):
    assert reports[name]["quantization"] == scheme


def test_mode_specific_details(reports):
    assert reports["float16"]["operators"]["DEQUANTIZE"] == 3
    assert reports["float16"]["tensor_dtypes"]["float16"] == 3
    assert reports["dynamic"]["tensor_dtypes"]["int8"] == 1  # the Dense kernel
    assert "int16" in reports["int16x8"]["tensor_dtypes"]
    assert {"QUANTIZE", "DEQUANTIZE"} <= set(reports["int16x8"]["operators"])


def test_float_model_is_not_full_integer_nor_edgetpu_ready(reports):
    report = reports["float32"]
    assert report["operators"] == CNN_OPS
    assert report["full_integer"] is False and report["float_tensor_count"] > 0
    assert report["inputs"][0]["scale"] is None and report["inputs"][0]["zero_point"] is None
    readiness = report["edgetpu"]
    assert readiness["ready"] is False
    assert any("float32" in reason and "--mode int8" in reason for reason in readiness["reasons"])
    assert readiness["first_unsupported"]["index"] == 0 and readiness["ops_mappable"] == 0


# --- Edge TPU readiness -----------------------------------------------------------------------


def test_full_int8_cnn_is_edgetpu_ready(reports):
    readiness = reports["int8"]["edgetpu"]
    assert readiness["ready"] is True and readiness["reasons"] == []
    assert readiness["ops_mappable"] == readiness["ops_total"] == 5
    assert readiness["first_unsupported"] is None


def test_unsupported_op_cuts_the_graph_there(reports):
    report = reports["leaky_int8"]
    assert report["full_integer"] is True and report["operators"]["LEAKY_RELU"] == 1
    readiness = report["edgetpu"]
    assert readiness["ready"] is False
    assert readiness["first_unsupported"]["index"] == 1
    assert readiness["first_unsupported"]["op"] == "LEAKY_RELU"
    assert readiness["ops_mappable"] == 1 and readiness["ops_total"] == 6
    assert any("LEAKY_RELU" in reason and "CPU" in reason for reason in readiness["reasons"])


def test_int8_with_float_io_asks_for_integer_io(reports):
    report = reports["int8_float_io"]
    assert report["full_integer"] is False and report["inputs"][0]["dtype"] == "float32"
    readiness = report["edgetpu"]
    assert readiness["ready"] is False
    assert readiness["first_unsupported"]["op"] == "QUANTIZE"
    assert any("--io int8" in reason for reason in readiness["reasons"])


def test_dynamic_batch_is_a_reason(reports):
    report = reports["dynamic_batch_int8"]
    assert report["inputs"][0]["shape_signature"][0] == -1
    assert report["edgetpu"]["ready"] is False
    assert any("dynamic shape" in reason for reason in report["edgetpu"]["reasons"])


def test_supported_list_follows_coral_table():
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D", "SOFTMAX",
            "RESHAPE", "QUANTIZE", "TRANSPOSE"} <= edgetpu.SUPPORTED_OPS
    assert not {"LEAKY_RELU", "HARD_SWISH", "DEQUANTIZE", "GATHER", "SHAPE"} & edgetpu.SUPPORTED_OPS


def test_readiness_on_a_hand_made_graph():
    tensors = [TensorInfo(i, f"t{i}", "uint8", [1, 4], [1, 4], False) for i in range(4)]
    ops = [OpInfo(0, "RELU", (0,), (1,)), OpInfo(1, "ADD", (1, 1), (2,)),
           OpInfo(2, "CUSTOM:my-op", (2,), (3,))]
    readiness = edgetpu.edgetpu_readiness(Graph(tensors, ops, [0], [3])).model_dump()
    assert readiness["ops_mappable"] == 2 and readiness["ops_total"] == 3
    assert readiness["first_unsupported"]["op"] == "CUSTOM:my-op"


def test_int8_graph_with_a_float_island_is_mixed():
    dtypes = ["int8", "int8", "float32", "float32", "int8"]
    tensors = [TensorInfo(i, f"t{i}", d, [1, 4], [1, 4], False) for i, d in enumerate(dtypes)]
    ops = [OpInfo(0, "FULLY_CONNECTED", (0,), (1,)), OpInfo(1, "DEQUANTIZE", (1,), (2,)),
           OpInfo(2, "TANH", (2,), (3,)), OpInfo(3, "QUANTIZE", (3,), (4,))]
    assert tflite_model.quantization_scheme(Graph(tensors, ops, [0], [4])) == "mixed"


# --- reading the schema -----------------------------------------------------------------------


def test_custom_op_is_named_with_its_code(models, tmp_path):
    def to_custom(schema, code):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == schema.BuiltinOperator.LEAKY_RELU:
            code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
            code.customCode = "my-custom-op"

    path = _rewrite_opcodes(models["leaky_int8"], tmp_path / "custom.tflite", to_custom)
    report = inspect_tflite(path).model_dump()
    assert report["operators"]["CUSTOM:my-custom-op"] == 1 and "LEAKY_RELU" not in report["operators"]
    assert report["edgetpu"]["first_unsupported"]["op"] == "CUSTOM:my-custom-op"


def test_model_with_only_the_deprecated_opcode_field(models, tmp_path):
    def deprecated_only(schema, code):  # as written before builtin_code existed
        code.deprecatedBuiltinCode = max(code.builtinCode, code.deprecatedBuiltinCode)
        code.builtinCode = 0

    path = _rewrite_opcodes(models["int8"], tmp_path / "old.tflite", deprecated_only)
    assert inspect_tflite(path).model_dump()["operators"] == CNN_OPS


@pytest.mark.parametrize("builtin, deprecated, name", [
    ("GELU", "PLACEHOLDER_FOR_GREATER_OP_CODES", "GELU"),  # codes above 127
    ("ADD", "CONV_2D", "CONV_2D"),                          # builtin_code left at its default
    ("CONV_2D", "CONV_2D", "CONV_2D"),
])
def test_opcode_is_the_max_of_both_fields(builtin, deprecated, name):
    from ai_edge_litert import schema_py_generated as schema

    ops = schema.BuiltinOperator
    code = types.SimpleNamespace(builtinCode=getattr(ops, builtin),
                                 deprecatedBuiltinCode=getattr(ops, deprecated), customCode=None)
    names = {v: k for k, v in vars(ops).items() if not k.startswith("_")}
    assert tflite_graph._op_name(schema, code, names) == name


def test_without_the_schema_the_histogram_is_skipped(models, monkeypatch):
    """tflite-runtime cannot run under numpy 2 here, so a stand-in module named tflite_runtime
    (LiteRT's own Interpreter class) plays it, with ai-edge-litert and its schema made unimportable."""
    from ai_edge_litert.interpreter import Interpreter

    fake = types.ModuleType("tflite_runtime.interpreter")
    fake.Interpreter = Interpreter
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.schema_py_generated", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime", types.ModuleType("tflite_runtime"))
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", fake)
    report = inspect_tflite(models["int8"]).model_dump()
    assert report["runtime"]["name"] == "tflite-runtime"
    assert report["operators"] is None and report["operator_count"] is None
    assert report["notes"] and "ai-edge-litert" in report["notes"][0]
    assert report["full_integer"] is True and report["inputs"][0]["dtype"] == "int8"
    assert report["edgetpu"]["ready"] is False


def test_no_runtime_at_all_is_runtime_unavailable(models, monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime", None)
    with pytest.raises(RuntimeUnavailable):
        inspect_tflite(models["int8"]).model_dump()


def test_inspecting_does_not_import_tensorflow(models):
    code = ("import edgepack.inspection.tflite_model as m, sys; m.inspect_tflite(sys.argv[1]).model_dump(); "
            "print('tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code, str(models["int8"])],
                            capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "False"


# --- files that are not models ----------------------------------------------------------------


def _bad_file(kind: str, folder, good):
    path = folder / f"{kind}.tflite"
    noise = np.random.default_rng(0).bytes(4096)
    contents = {"empty": b"", "truncated": good.read_bytes()[: good.stat().st_size // 2],
                "random": noise, "random_with_identifier": b"\x1c\x00\x00\x00TFL3" + noise,
                "text": b"this is not a model\n" * 20}
    if kind in contents:
        path.write_bytes(contents[kind])
    elif kind == "folder":
        path.mkdir()
    return path


@pytest.mark.parametrize("kind", ["missing", "empty", "truncated", "random",
                                  "random_with_identifier", "text", "folder"])
def test_bad_files_raise_model_error_naming_the_file(kind, tmp_path, models):
    path = _bad_file(kind, tmp_path, models["int8"])
    with pytest.raises(ModelError) as caught:
        inspect_tflite(path).model_dump()
    error = caught.value
    assert error.exit_code == 4 and str(path) in error.message
    assert error.hint and "\n" not in error.one_line() and "Traceback" not in error.one_line()
