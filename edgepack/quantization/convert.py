"""Plain conversion with TensorFlow's TFLiteConverter: the five modes, static batch, error messages."""

from __future__ import annotations

import re

import numpy as np

from edgepack.errors import ModelError
from edgepack.loading.model import KerasFlavor, LoadedModel, ModelFormat
from edgepack.modes import IOType, QuantMode
from edgepack.util.tf import captured_native_output, import_tf


def _representative(calibration: np.ndarray):
    def generator():
        for row in calibration:
            yield [row[None, ...]]

    return generator


def _converter(tf, loaded: LoadedModel, static_batch: bool):
    if loaded.info.format is ModelFormat.SAVEDMODEL and not loaded.is_keras:
        if static_batch:
            raise ModelError(f"{loaded.info.path}: --static-batch needs a Keras model, not a plain SavedModel")
        return tf.lite.TFLiteConverter.from_saved_model(str(loaded.info.path))
    if not static_batch:
        return tf.lite.TFLiteConverter.from_keras_model(loaded.model)
    if loaded.info.flavor is KerasFlavor.KERAS3:
        import keras as keras_module
    else:
        import tf_keras as keras_module
    inputs = keras_module.Input(batch_shape=(1, *loaded.input_shape[1:]), dtype=loaded.input_dtype) \
        if loaded.info.flavor is KerasFlavor.KERAS3 else \
        keras_module.Input(batch_size=1, shape=loaded.input_shape[1:], dtype=loaded.input_dtype)
    fixed = keras_module.Model(inputs, loaded.model(inputs, training=False))
    return tf.lite.TFLiteConverter.from_keras_model(fixed)


def _configure(tf, converter, config, calibration: np.ndarray | None) -> None:
    mode = config.mode
    if mode is QuantMode.FLOAT32:
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode is QuantMode.FLOAT16:
        converter.target_spec.supported_types = [tf.float16]
    elif mode is QuantMode.INT8:
        converter.representative_dataset = _representative(calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io_type = {IOType.FLOAT32: tf.float32, IOType.INT8: tf.int8, IOType.UINT8: tf.uint8}[config.io]
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type
    elif mode is QuantMode.INT16X8:
        converter.representative_dataset = _representative(calibration)
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]


def conversion_error(exc: Exception, captured: list[str]) -> ModelError:
    text = str(exc) + "\n" + "".join(captured)
    lines = [line.strip() for line in text.splitlines() if re.search(r"error:|not supported|unsupported", line, re.I)]
    reason = lines[0] if lines else (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return ModelError(f"the TFLite converter rejected the model: {reason[:300]}",
                      hint="run again with --debug for the converter's full log")


def convert(loaded: LoadedModel, config, calibration: np.ndarray | None) -> bytes:
    """The .tflite bytes of ``loaded`` converted as ``config`` (mode, io, static_batch) says."""
    tf = import_tf()
    captured: list[str] = []
    try:
        with captured_native_output() as captured:
            converter = _converter(tf, loaded, bool(config.static_batch))
            _configure(tf, converter, config, calibration)
            return converter.convert()
    except Exception as exc:  # the converter raises ConverterError, ValueError, RuntimeError...
        raise conversion_error(exc, captured) from exc
