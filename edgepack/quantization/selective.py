"""Full-integer quantization with chosen layers kept in float.

The model is calibrated once (TFLiteConverter with ``_experimental_calibrate_only``); every
quantization after that is TensorFlow's own MLIR quantizer run on the calibrated model with a
denylist of op output tensors (``denylisted_nodes``, the mechanism of TF's QuantizationDebugger)
and the model's input/output type, which takes tens of milliseconds. So accuracy control and
sensitivity can try many layer sets. Measured on TF 2.21 (see the issue note for the comparison
with LiteRT Quantizer).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from edgepack.errors import ModelError
from edgepack.loading.model import KerasFlavor, LoadedModel
from edgepack.modes import IOType
from edgepack.quantization.layers import LayerMap, mark_layers
from edgepack.util.tf import captured_native_output, import_tf


def _static(keras_module, model, loaded: LoadedModel, flavor: KerasFlavor):
    shape = loaded.input_shape[1:]
    inputs = keras_module.Input(batch_shape=(1, *shape), dtype=loaded.input_dtype) if flavor is KerasFlavor.KERAS3 \
        else keras_module.Input(batch_size=1, shape=shape, dtype=loaded.input_dtype)
    return keras_module.Model(inputs, model(inputs, training=False))


def _representative(rows: np.ndarray):
    def generator():
        for row in rows:
            yield [row[None, ...]]

    return generator


class LayerOps:
    """The ops of a converted marked clone, mapped back to the Keras layers that made them.

    ``layers`` are the Keras layers that run as ops, in model order. Subclasses make models in
    which chosen layers run at a higher precision (``quantize_assigned``).
    """

    map: LayerMap
    op_outputs: list[str]
    layers: list[str]
    precisions: tuple[str, ...] = ("float",)   # what a layer may be raised to, besides int8
    base: str = "int8"                          # the precision of a layer not raised (int4: int4 weights)

    def _map_ops(self, flatbuffer: bytes) -> None:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_content=flatbuffer)
        names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
        self.op_outputs = [names[i] for op in interpreter._get_ops_details() for i in op["outputs"] if i in names]
        order = list(self.map.names.values())
        owned = set().union(*(self.map.layers_in(name) for name in self.op_outputs)) if self.op_outputs else set()
        self.layers = [name for name in order if name in owned]

    def denylist(self, float_layers: list[str]) -> list[str]:
        """The op output tensors to keep float: every op any of ``float_layers`` took part in."""
        wanted = set(float_layers)
        return [name for name in self.op_outputs if self.map.layers_in(name) & wanted]

    def float_layers_of(self, float_layers: list[str]) -> list[str]:
        """Every layer whose op runs in float when ``float_layers`` are kept float (fused ops count)."""
        owned = set().union(*(self.map.layers_in(n) for n in self.denylist(float_layers))) if float_layers else set()
        return [name for name in self.layers if name in owned]

    def quantize(self, float_layers: list[str] = ()) -> bytes:
        """Full int8 with the ops of ``float_layers`` in float."""
        return self.quantize_assigned({name: "float" for name in float_layers})

    def quantize_assigned(self, assignment: dict[str, str]) -> bytes:
        """Full int8 with each layer of ``assignment`` at its precision (one of ``precisions``)."""
        raise NotImplementedError


class SelectiveQuantizer(LayerOps):
    """A calibrated model from which full-int8 variants with any float layers are made quickly
    (TensorFlow's MLIR quantizer with a denylist; any model I/O type)."""

    def __init__(self, loaded: LoadedModel, calibration: np.ndarray, *, io: IOType = IOType.FLOAT32,
                 static_batch: bool = False):
        if not loaded.is_keras:
            raise ModelError(f"{loaded.info.path}: keeping layers in float needs a Keras model, not a plain SavedModel")
        self.tf = tf = import_tf()
        keras_module = __import__("keras" if loaded.info.flavor is KerasFlavor.KERAS3 else "tf_keras")
        with captured_native_output():
            self.map: LayerMap = mark_layers(loaded.model, keras_module)
            model = _static(keras_module, self.map.clone, loaded, loaded.info.flavor) if static_batch \
                else self.map.clone
            converter = tf.lite.TFLiteConverter.from_keras_model(model)
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = _representative(calibration)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter._experimental_calibrate_only = True
            self.calibrated = converter.convert()
        self.io = {IOType.FLOAT32: tf.float32, IOType.INT8: tf.int8, IOType.UINT8: tf.uint8}[io]
        self._map_ops(self.calibrated)

    def quantize_assigned(self, assignment: dict[str, str]) -> bytes:
        from tensorflow.lite.python.convert import mlir_quantize

        unsupported = sorted({precision for precision in assignment.values() if precision != "float"})
        if unsupported:
            raise ValueError(f"TensorFlow's quantizer keeps layers float only, not {', '.join(unsupported)}")
        with captured_native_output():
            return bytes(mlir_quantize(self.calibrated, input_data_type=self.io, output_data_type=self.io,
                                       denylisted_nodes=self.denylist(list(assignment)) or None))


class BytesPredictor:
    """Runs .tflite bytes on data (the LiteRT interpreter, batched where the model allows)."""

    def __init__(self):
        self._folder = tempfile.TemporaryDirectory(prefix="edgepack-quantize-")

    def predict(self, model: bytes, x: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        from edgepack.runtime.predict import TflitePredictor

        path = Path(self._folder.name) / "candidate.tflite"
        path.write_bytes(model)
        return TflitePredictor(path).predict(x, batch_size=batch_size)

    def latency_ms(self, model: bytes, row: np.ndarray) -> float:
        """One single-row invoke of ``model`` here (1 thread, median of 30)."""
        from edgepack.runtime.predict import TflitePredictor

        path = Path(self._folder.name) / "timed.tflite"
        path.write_bytes(model)
        return TflitePredictor(path, threads=1).single_latency_ms(row)

    def close(self) -> None:
        self._folder.cleanup()
