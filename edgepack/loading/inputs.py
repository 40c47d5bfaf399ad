"""A Keras model's (or SavedModel's) inputs by name, batch predictions fed by name, and the
calibration rows of a model with one input or several.

The TFLite converter names a .tflite's signature inputs after the Keras Input names, in Keras 3 and
tf_keras alike (checked on TensorFlow 2.21: inputs ``left``/``right`` give signature inputs ``left``
/``right``; an unnamed Keras 3 input gives ``keras_tensor_N`` on both sides), while the order of its
input tensors may differ from the Keras order. So data, Keras inputs and .tflite inputs are all
paired by name.
"""

from __future__ import annotations

import numpy as np

from edgepack.loading.data import DataSpec, InputSpec, fit_to_inputs, load_data


def _dtype_name(dtype) -> str:
    return dtype if isinstance(dtype, str) else dtype.name


def model_inputs(loaded) -> list[InputSpec]:
    """Each input of ``loaded`` (an edgepack LoadedModel): name, shape (batch first), dtype."""
    if loaded.is_keras:
        tensors = loaded.model.inputs
        names = getattr(loaded.model, "input_names", None)
        if not names or len(names) != len(tensors):
            names = [tensor.name.split(":")[0] for tensor in tensors]
        return [InputSpec(str(name), tuple(tensor.shape), _dtype_name(tensor.dtype))
                for name, tensor in zip(names, tensors)]
    signature = loaded._signature().structured_input_signature[1]
    return [InputSpec(name, tuple(spec.shape.as_list()), spec.dtype.name) for name, spec in sorted(signature.items())]


def rows_in(x) -> int:
    """The number of rows of an input array or of a dict of input arrays."""
    return len(next(iter(x.values()))) if isinstance(x, dict) else len(x)


def predict_rows(loaded, x, output: str | None = None) -> np.ndarray:
    """``loaded``'s output named ``output`` (None: the only one) for one batch ``x`` (an array, or a
    dict of arrays by input name)."""
    choice = loaded.choose_output(output)
    if loaded.is_keras:
        out = loaded.model.predict_on_batch(x)
        if isinstance(out, dict):
            return np.asarray(out[choice.name])
        return np.asarray(out[choice.index] if isinstance(out, (list, tuple)) else out)
    from edgepack.util.tf import import_tf

    tf = import_tf()
    function = loaded._signature()
    feed = x if isinstance(x, dict) else {next(iter(function.structured_input_signature[1])): x}
    return function(**{name: tf.constant(value) for name, value in feed.items()})[choice.name].numpy()


def calibration_rows(spec: DataSpec, loaded, samples: int, seed: int, *, model_name: str):
    """``samples`` rows of ``spec`` drawn with ``seed``, checked and cast for ``loaded``'s inputs and
    read only those rows: an array for a one-input model, a dict of arrays by input name otherwise."""
    specs = model_inputs(loaded)
    dataset = fit_to_inputs(load_data(spec, inputs=specs), specs, model_name=model_name)
    return dataset.sample(samples, seed=seed).x
