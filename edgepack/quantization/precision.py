"""Full int8 with chosen layers in int16x8 (16-bit activations, 8-bit weights) or in float, and int4
weights (two a byte) on the fully-connected and convolution operators, with chosen layers raised to int8.

TensorFlow's converter quantizes a whole model to one activation width, so per-layer precision goes
through LiteRT Quantizer: the marked Keras clone is converted to a float .tflite once and
calibrated once; every variant after that is a recipe (int8 for every op, int16x8 or no
quantization for the ops of the chosen layers) applied in milliseconds. Where an int16 op meets an
int8 one the quantizer inserts a re-quantization. The model's input and output are float32 or
int8 (``io``).
"""

from __future__ import annotations

import numpy as np

from edgepack.errors import ConfigError, ModelError
from edgepack.loading.model import KerasFlavor, LoadedModel
from edgepack.modes import IOType
from edgepack.quantization.layers import LayerMap, mark_layers
from edgepack.quantization.selective import LayerOps, _static
from edgepack.util.tf import captured_native_output, import_tf

PRECISIONS = ("int8", "int16x8", "float")
INT4_OPS = {"fc": "FULLY_CONNECTED", "conv": "CONV_2D"}  # LiteRT Quantizer's static_wi4_ai8 operators


def _scope_of(layer_map: LayerMap, layers: list[str]) -> str:
    """A regex matching every op (by its output tensor names) that any of ``layers`` took part in."""
    indices = sorted(index for index, name in layer_map.names.items() if name in set(layers))
    return "epl(?:" + "|".join(str(i) for i in indices) + ")x_"


class PrecisionQuantizer(LayerOps):
    """A calibrated float model from which int8 variants with int16x8 or float layers are made quickly."""

    precisions = PRECISIONS

    def __init__(self, loaded: LoadedModel, calibration: np.ndarray, *, io: IOType = IOType.FLOAT32,
                 static_batch: bool = False, weights: str = "int8", int4_ops: tuple[str, ...] = ("fc", "conv"),
                 activation_bits: int = 8):
        if not loaded.is_keras:
            raise ModelError(f"{loaded.info.path}: per-layer precision needs a Keras model, not a plain SavedModel")
        if io not in (IOType.FLOAT32, IOType.INT8):
            raise ConfigError(f"per-layer int16x8 makes models with float32 or int8 input and output, not {io.value}",
                              hint="use --io float32 or --io int8")
        self.io = io
        self.base = "int4" if weights == "int4" else "int8"
        self.activation_bits = activation_bits  # 16: int16 activations (int16x8, or int4 weights beside them)
        self.int4_ops = [INT4_OPS[kind] for kind in int4_ops]
        tf = import_tf()
        keras_module = __import__("keras" if loaded.info.flavor is KerasFlavor.KERAS3 else "tf_keras")
        with captured_native_output():
            self.map: LayerMap = mark_layers(loaded.model, keras_module)
            model = _static(keras_module, self.map.clone, loaded, loaded.info.flavor) if static_batch \
                else self.map.clone
            self.float_model = bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
        self._map_ops(self.float_model)
        self._calibrate(calibration)

    def _calibrate(self, calibration: np.ndarray) -> None:
        from ai_edge_litert.interpreter import Interpreter
        from litert_quantizer import quantizer

        signatures = Interpreter(model_content=self.float_model).get_signature_list()
        if len(signatures) != 1 or len(next(iter(signatures.values()))["inputs"]) != 1:
            raise ModelError("per-layer precision needs a model with one signature and one input",
                             hint="use --promote float")
        self.signature, details = next(iter(signatures.items()))
        name = details["inputs"][0]
        self.quantizer = quantizer.Quantizer(bytearray(self.float_model))
        self._recipe({})
        rows = [{name: row[None, ...].astype(np.float32)} for row in calibration]
        with captured_native_output():
            self.calibration = self.quantizer.calibrate({self.signature: rows})

    def _recipe(self, assignment: dict[str, str]) -> None:
        from litert_quantizer import recipe

        q = self.quantizer
        q.load_quantization_recipe(recipe.static_wi8_ai16() if self.activation_bits == 16 else recipe.static_wi8_ai8())
        if self.io is IOType.FLOAT32:
            for end in ("INPUT", "OUTPUT"):
                q.update_quantization_recipe(".*", end, algorithm_key="no_quantize")
        if self.base == "int4":
            for operation in self.int4_ops:
                q.add_static_config(".*", operation, activation_num_bits=self.activation_bits, weight_num_bits=4)
        eights = [name for name, precision in assignment.items() if precision == "int8"]
        wide = [name for name, precision in assignment.items() if precision == "int16x8"]
        floats = [name for name, precision in assignment.items() if precision == "float"]
        if eights and self.base == "int4":  # after int4: the latest matching scope wins
            q.add_static_config(_scope_of(self.map, eights), "*", activation_num_bits=self.activation_bits,
                                weight_num_bits=8)
        if wide:
            q.add_static_config(_scope_of(self.map, wide), "*", activation_num_bits=16, weight_num_bits=8)
        if floats:  # after int16x8: the latest matching scope wins, and float outranks int16x8
            q.update_quantization_recipe(_scope_of(self.map, floats), "*", algorithm_key="no_quantize")

    def quantize_assigned(self, assignment: dict[str, str]) -> bytes:
        unknown = sorted({precision for precision in assignment.values() if precision not in PRECISIONS})
        if unknown:
            raise ValueError(f"unknown precision {', '.join(unknown)}")
        self._recipe(assignment)
        with captured_native_output():
            result = self.quantizer.quantize(self.calibration, enable_progress_bar=False,
                                             enable_progress_report=False)
        return bytes(result.quantized_model)

