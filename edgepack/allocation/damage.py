"""How much one layer's kernel change moves the model's outputs (the allocators' damage curves)."""

from __future__ import annotations

import hashlib
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


_MEASURED: dict[str, dict[str, list[float]]] = {}
MEMO_ENTRIES = 32


def damage_curves(model, layers: list[str], x: np.ndarray, predict, changes: Sequence[KernelChange], *,
                  memo: str | None = None) -> dict[str, list[float]]:
    """:func:`damage_curve` of every layer in ``layers`` on the first MAX_ROWS rows of ``x``.

    With ``memo`` (a string naming the model, the output and the changes: the caller's knowledge of
    what the curves depend on besides the rows), curves already measured in this process for the
    same memo, layers and rows are returned again: the trials of a study allocate different budgets
    from the same curves, which cost seconds to measure and never change."""
    rows = x[:MAX_ROWS]
    key = None
    if memo is not None:
        digest = hashlib.sha256(memo.encode())
        digest.update("\0".join(layers).encode())
        digest.update(np.ascontiguousarray(rows).tobytes())
        key = digest.hexdigest()
        if key in _MEASURED:
            return {name: list(values) for name, values in _MEASURED[key].items()}
    reference = predict(rows)
    curves = {name: damage_curve(model, name, rows, reference, predict, changes) for name in layers}
    if key is not None:
        if len(_MEASURED) >= MEMO_ENTRIES:
            _MEASURED.pop(next(iter(_MEASURED)))
        _MEASURED[key] = {name: list(values) for name, values in curves.items()}
    return curves
