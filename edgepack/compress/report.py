"""Per-layer figures of a compressed model: kernel sparsity and distinct values."""

from __future__ import annotations

import numpy as np


def kernel_stats(layer) -> tuple[int, float, int] | None:
    """(values, fraction of zeros, distinct values) of the weights prune and cluster work on in a layer
    (a recurrent layer's kernel and recurrent kernel together), or None without any."""
    from edgepack.compress.layers import compressed_weights

    weights = compressed_weights(layer)
    if not weights:
        return None
    values = np.concatenate([np.asarray(weight.numpy()).ravel() for weight in weights])
    return int(values.size), float(np.mean(values == 0)), int(np.unique(values).size)


def layer_reports(model, chosen: list[str], skipped: dict[str, str], flag: str) -> list[dict]:
    """One dict per weighted layer (nested models' layers too, named as ``bridge.leaf_layers`` says): name,
    class, kernel size, sparsity, distinct values, ``flag``, note."""
    from edgepack.compress.bridge import leaf_layers
    from edgepack.compress.layers import RECURRENT_LAYERS, RECURRENT_NOTE

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
            "note": skipped.get(name) or (RECURRENT_NOTE if name in chosen and type(layer).__name__ in
                                          RECURRENT_LAYERS else None),
        })
    return reports
