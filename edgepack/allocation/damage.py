"""How much one layer's kernel change moves the model's outputs (the allocators' damage curves)."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from edgepack.compress.bridge import find_layer
from edgepack.compress.layers import compressed_kernel

MAX_ROWS = 512
KernelChange = Callable[[np.ndarray], np.ndarray]


def kernel_index(layer) -> int:
    """Index in ``layer.get_weights()`` of the kernel prune and cluster change."""
    shape = tuple(compressed_kernel(layer).shape)
    return next(i for i, w in enumerate(layer.get_weights()) if w.shape == shape)


def kernel_sizes(model, layers: list[str]) -> dict[str, int]:
    """Number of values in each named layer's compressed kernel."""
    return {name: int(np.prod(compressed_kernel(find_layer(model, name)).shape)) for name in layers}


def damage_curve(model, name: str, rows: np.ndarray, reference: np.ndarray, predict,
                 changes: Sequence[KernelChange]) -> list[float]:
    """Output MSE against ``reference`` with layer ``name``'s kernel changed by each of ``changes`` in turn
    (the other layers untouched); the layer's weights are restored afterwards."""
    layer = find_layer(model, name)
    original = layer.get_weights()
    index = kernel_index(layer)
    values = []
    try:
        for change in changes:
            changed = list(original)
            changed[index] = change(original[index])
            layer.set_weights(changed)
            values.append(float(np.mean((predict(rows) - reference) ** 2)))
    finally:
        layer.set_weights(original)
    return values


def damage_curves(model, layers: list[str], x: np.ndarray, predict,
                  changes: Sequence[KernelChange]) -> dict[str, list[float]]:
    """:func:`damage_curve` of every layer in ``layers`` on the first MAX_ROWS rows of ``x``."""
    rows = x[:MAX_ROWS]
    reference = predict(rows)
    return {name: damage_curve(model, name, rows, reference, predict, changes) for name in layers}
