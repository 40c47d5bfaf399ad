"""Plain conversion with TensorFlow's TFLiteConverter: the five modes, static batch, error messages."""

from __future__ import annotations

import re

import numpy as np

from edgepack.errors import ModelError
from edgepack.loading.model import KerasFlavor, LoadedModel, ModelFormat
from edgepack.modes import IOType, QuantMode
from edgepack.util.tf import captured_native_output, import_tf


def _representative(calibration):
    """The converter's representative dataset: one row at a time, as a list for a one-input model
    and as a dict by input name (the signature's names, which are the Keras Input names) otherwise."""
    def generator():
        if isinstance(calibration, dict):
            rows = len(next(iter(calibration.values())))
            for index in range(rows):
                yield {name: values[index:index + 1] for name, values in calibration.items()}
            return
        for row in calibration:
            yield [row[None, ...]]

    return generator


def _fixed_batch_inputs(keras, loaded: LoadedModel) -> list:
    """One batch-1 Keras 3 Input per model input, in the model's order; with several inputs each is named
    as the model's, so the .tflite's signature keeps the names data is matched by."""
    from edgepack.loading.inputs import model_inputs

    specs = model_inputs(loaded)
    return [keras.Input(batch_shape=(1, *spec.shape[1:]), dtype=spec.dtype,
                        **({"name": spec.name} if len(specs) > 1 else {})) for spec in specs]


def _inference_function(tf, model, static_batch: bool):
    """A tf_keras model's inference call as one concrete function, its inputs and outputs named as the
    Keras export names them (input and output layer names), with a batch of 1 when ``static_batch``."""
    specs = [tf.TensorSpec(((1,) if static_batch else (None,)) + tuple(tensor.shape[1:]), tensor.dtype, name=name)
             for tensor, name in zip(model.inputs, model.input_names)]

    def call(*tensors):
        outputs = model(list(tensors) if len(tensors) > 1 else tensors[0], training=False)
        return dict(zip(model.output_names, outputs if isinstance(outputs, (list, tuple)) else [outputs]))

    return tf.function(call, input_signature=specs).get_concrete_function()


def tf_keras_converter(tf, model, static_batch: bool):
    """The converter of a tf_keras model, made from its inference function and its variables alone.

    ``from_keras_model`` makes the converter save the whole model as a SavedModel first, tracing every
    layer's call in both training modes (tfmot's wrappers most of all); this SavedModel holds one
    signature. Same flatbuffer outputs, 3.5-4.2x faster (``benchmarks/qat_convert.py``)."""
    holder = tf.Module()
    holder.model_variables = list(model.variables)
    return tf.lite.TFLiteConverter.from_concrete_functions([_inference_function(tf, model, static_batch)], holder)


def _converter(tf, loaded: LoadedModel, static_batch: bool):
    if loaded.info.format is ModelFormat.SAVEDMODEL and not loaded.is_keras:
        if static_batch:
            raise ModelError(f"{loaded.info.path}: --static-batch needs a Keras model, not a plain SavedModel")
        return tf.lite.TFLiteConverter.from_saved_model(str(loaded.info.path))
    if loaded.info.flavor is KerasFlavor.TF_KERAS:
        return tf_keras_converter(tf, loaded.model, static_batch)
    if not static_batch:
        return tf.lite.TFLiteConverter.from_keras_model(loaded.model)
    import keras  # a Keras 3 model, from here on

    inputs = _fixed_batch_inputs(keras, loaded)
    feed = inputs[0] if len(inputs) == 1 else inputs
    return tf.lite.TFLiteConverter.from_keras_model(keras.Model(feed, loaded.model(feed, training=False)))


def _configure(tf, converter, config, calibration) -> None:
    mode = config.mode
    sparse = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY] if getattr(config, "sparse", False) else []
    if mode is QuantMode.FLOAT32:
        converter.optimizations = sparse
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT, *sparse]
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


def convert(loaded: LoadedModel, config, calibration: np.ndarray | dict | None) -> bytes:
    """The .tflite bytes of ``loaded`` converted as ``config`` (mode, io, static_batch) says;
    ``calibration`` is an array of rows, or a dict of arrays by input name for several inputs."""
    tf = import_tf()
    captured: list[str] = []
    try:
        with captured_native_output() as captured:
            converter = _converter(tf, loaded, bool(config.static_batch))
            _configure(tf, converter, config, calibration)
            return converter.convert()
    except Exception as exc:  # the converter raises ConverterError, ValueError, RuntimeError...
        raise conversion_error(exc, captured) from exc
