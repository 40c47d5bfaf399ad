"""Per-layer figures of a compressed model: kernel sparsity and distinct values."""

from __future__ import annotations

import numpy as np


def kernel_stats(layer) -> tuple[int, float, int] | None:
    """(values, fraction of zeros, distinct values) of a layer's kernel, or None without one."""
    from edgepack.compress.layers import compressed_kernel

    kernel = compressed_kernel(layer)
    if kernel is None:
        return None
    values = np.asarray(kernel.numpy()).ravel()
    return int(values.size), float(np.mean(values == 0)), int(np.unique(values).size)


def layer_reports(model, chosen: list[str], skipped: dict[str, str], flag: str) -> list[dict]:
    """One dict per weighted layer (nested models' layers too, named as ``bridge.leaf_layers`` says): name,
    class, kernel size, sparsity, distinct values, ``flag``, note."""
    from edgepack.compress.bridge import leaf_layers

    reports = []
    for name, layer in leaf_layers(model):
        if not layer.weights:
            continue
        stats = kernel_stats(layer)
        reports.append({
            "name": name,
            "class": type(layer).__name__,
            "weights": None if stats is None else stats[0],
            "sparsity": None if stats is None else round(stats[1], 6),
            "distinct_values": None if stats is None else stats[2],
            flag: name in chosen,
            "note": skipped.get(name),
        })
    return reports
