"""Cross-layer equalization (Nagel et al. 2019, "Data-Free Quantization"): balance the weight ranges
of two consecutive layers without changing what the model computes.

For a layer A whose output reaches a layer B only through positive-homogeneous layers (ReLU,
dropout, max pooling, flatten), output channel c of A can be divided by s_c > 0 and the input rows
of B that read channel c multiplied by s_c: relu(x / s) * s == relu(x). With
s_c = sqrt(r_A(c) / r_B(c)), where r is the largest absolute weight of that channel, both ranges
become sqrt(r_A r_B). A channel scaled up by 1000 and scaled down in the next layer (a model whose
activation range exploded) is brought back to the size of its neighbours, so one int8 scale fits
every channel again. Used before quantization-aware training, where fake quantization alone
cannot shrink such weights in a short fine-tune.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

WEIGHTED = {"Dense", "Conv1D", "Conv2D"}
PASS_THROUGH = {"Dropout", "MaxPooling1D", "MaxPooling2D", "Flatten", "ReLU", "Activation"}
HOMOGENEOUS_ACTIVATIONS = {"relu", "linear"}
SWEEPS = 4


class EqualizedPair(BaseModel):
    """One pair of layers that was equalized, and the largest and smallest scale applied."""

    first: str
    second: str
    largest_scale: float
    smallest_scale: float


def _activation_name(layer) -> str:
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", str(activation)) if activation is not None else "linear"


def _passes(layer) -> bool:
    kind = type(layer).__name__
    if kind not in PASS_THROUGH:
        return False
    if kind == "ReLU":
        config = layer.get_config()
        return config.get("max_value") is None and not config.get("threshold")
    return kind != "Activation" or _activation_name(layer) in HOMOGENEOUS_ACTIVATIONS


def _consumers(layer) -> list:
    """The layers reading ``layer``'s output (tf_keras and Keras 3 node objects)."""
    found = []
    for node in getattr(layer, "_outbound_nodes", []):
        consumer = getattr(node, "outbound_layer", None) or getattr(node, "operation", None)
        if consumer is not None:
            found.append(consumer)
    return found


def _partner(layer, model):
    """The weighted layer that alone reads ``layer``'s output through pass-through layers, and whether a
    Flatten lies between; None when the output branches, leaves the model or meets another layer."""
    outputs = {id(t) for t in model.outputs}
    current, flattened = layer, False
    while True:
        if any(id(t) in outputs for t in _outputs_of(current)):
            return None, False
        consumers = [c for c in _consumers(current) if c in model.layers]
        if len(consumers) != 1:
            return None, False
        current = consumers[0]
        if type(current).__name__ in WEIGHTED:
            return current, flattened
        if not _passes(current):
            return None, False
        flattened |= type(current).__name__ == "Flatten"


def _outputs_of(layer) -> list:
    try:
        output = layer.output
    except (AttributeError, ValueError):
        return []
    return list(output) if isinstance(output, (list, tuple)) else [output]


def _input_rows(kernel: np.ndarray, kind: str, channels: int, flattened: bool) -> np.ndarray:
    """B's kernel reshaped to (channel of A, everything else): the rows each channel of A feeds."""
    if kind == "Dense":
        rows = kernel.reshape(-1, channels, kernel.shape[-1]) if flattened else kernel[None]
        return np.moveaxis(rows, 1, 0).reshape(channels, -1)
    return np.moveaxis(kernel, -2, 0).reshape(channels, -1)


def _scale_rows(kernel: np.ndarray, kind: str, scale: np.ndarray, flattened: bool) -> np.ndarray:
    if kind == "Dense":
        rows = kernel.reshape(-1, scale.size, kernel.shape[-1]) if flattened else kernel[None]
        return (rows * scale[None, :, None]).reshape(kernel.shape)
    return kernel * scale.reshape((1,) * (kernel.ndim - 2) + (scale.size, 1))


def equalize_pair(first, second, flattened: bool) -> tuple[float, float] | None:
    """Equalize ``first``'s output channels against ``second``'s input rows; the scale range, or None."""
    weights_a, weights_b = first.get_weights(), second.get_weights()
    kernel_a, kernel_b = weights_a[0], weights_b[0]
    channels = kernel_a.shape[-1]
    if kernel_b.ndim < 2 or (type(second).__name__ == "Dense" and kernel_b.shape[0] % channels) or \
            (type(second).__name__ != "Dense" and kernel_b.shape[-2] != channels):
        return None
    range_a = np.abs(kernel_a.reshape(-1, channels)).max(axis=0)
    range_b = np.abs(_input_rows(kernel_b, type(second).__name__, channels, flattened)).max(axis=1)
    usable = (range_a > 0) & (range_b > 0)
    scale = np.ones(channels, dtype=np.float64)
    scale[usable] = np.sqrt(range_a[usable] / range_b[usable])
    weights_a[0] = (kernel_a / scale).astype(kernel_a.dtype)
    if len(weights_a) > 1:
        weights_a[1] = (weights_a[1] / scale).astype(weights_a[1].dtype)
    weights_b[0] = _scale_rows(kernel_b, type(second).__name__, scale, flattened).astype(kernel_b.dtype)
    first.set_weights(weights_a)
    second.set_weights(weights_b)
    return float(scale.max()), float(scale.min())


def equalize_model(model) -> list[EqualizedPair]:
    """Equalize every eligible pair of ``model`` in place (a few sweeps); the pairs and their scales."""
    pairs = []
    for layer in model.layers:
        if type(layer).__name__ in WEIGHTED and _activation_name(layer) in HOMOGENEOUS_ACTIVATIONS \
                and not getattr(layer, "groups", 1) > 1:
            partner, flattened = _partner(layer, model)
            if partner is not None:
                pairs.append((layer, partner, flattened))
    done: dict[tuple[str, str], list[float]] = {}
    for _ in range(SWEEPS):
        for first, second, flattened in pairs:
            scales = equalize_pair(first, second, flattened)
            if scales is not None:
                seen = done.setdefault((first.name, second.name), [1.0, 1.0])
                seen[0], seen[1] = max(seen[0], scales[0]), min(seen[1], scales[1])
    return [EqualizedPair(first=a, second=b, largest_scale=s[0], smallest_scale=s[1]) for (a, b), s in done.items()]
