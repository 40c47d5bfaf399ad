"""Spend a cluster budget where it does the least damage (``cluster --allocate sensitivity``).

The budget is the bits a clustered kernel costs once stored as centroid indices (what gzip gets a
clustered .tflite close to): ``clusters: 16`` over all clustered kernels is 4 bits per weight on
average. Each layer's damage curve is measured on data with the layer alone clustered to each count
of ``LEVELS`` (k-means without fine-tuning; with preserve_sparsity its zeros stay zero and the other
values share the rest of the centroids). A greedy allocation starts every layer at its fewest
clusters and repeatedly gives more to the layer whose next step removes the most damage per added
bit, while the average stays within the budget. The per-layer counts are recorded in the resolved
recipe, so the allocation replays without measuring again.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from pydantic import BaseModel

from edgepack.allocation.damage import damage_curves, kernel_sizes
from edgepack.layer_sensitivity.weights import cluster_kernel

LEVELS = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)


class ClusterAllocation(BaseModel):
    """The per-layer cluster counts chosen for a global budget, with the curves they were chosen from."""

    target: int
    target_bits: float
    achieved_bits: float
    layer_clusters: dict[str, int]
    weights: dict[str, int]
    curves: dict[str, list[float]]
    levels: list[int]


def cluster_preserving_zeros(kernel: np.ndarray, clusters: int) -> np.ndarray:
    """``kernel`` clustered with one centroid kept at zero for its zeros (as tfmot's preserve_sparsity)."""
    nonzero = kernel != 0
    if clusters < 2 or not nonzero.any():
        return kernel.copy()
    out = np.zeros_like(kernel)
    out[nonzero] = cluster_kernel(kernel[nonzero], clusters - 1)
    return out


def _bits(count: int) -> float:
    return math.log2(count)


def allocate(curves: dict[str, list[float]], weights: dict[str, int], allowed: dict[str, list[int]],
             target: int) -> dict[str, int]:
    """Per-layer counts, each from ``allowed[name]`` (ascending), whose weighted mean bits stay <= log2(target)."""
    budget = _bits(target) * sum(weights.values())
    step = {name: 0 for name in allowed}
    used = sum(weights[name] * _bits(allowed[name][0]) for name in allowed)

    def damage(name: str, i: int) -> float:
        return curves[name][LEVELS.index(allowed[name][i])]

    while True:
        options = []
        for name in allowed:
            i = step[name]
            if i + 1 < len(allowed[name]):
                extra = weights[name] * (_bits(allowed[name][i + 1]) - _bits(allowed[name][i]))
                if used + extra <= budget + 1e-9:
                    options.append(((damage(name, i) - damage(name, i + 1)) / extra, weights[name], name, extra))
        if not options:
            return {name: allowed[name][step[name]] for name in allowed}
        _, _, name, extra = max(options)
        step[name] += 1
        used += extra


def allocate_clusters(model, layers: list[str], x: np.ndarray, predict, target: int, *,
                      preserve_sparsity: bool, fits: Callable[[str, int], bool],
                      memo: str | None = None) -> ClusterAllocation:
    """Measure the layers' damage curves on ``x`` and share ``target`` clusters' bits between them.

    ``fits(name, count)`` says whether a layer can take ``count`` clusters (its kernel is large enough);
    ``memo`` (the model's sha256 and output) lets later calls on the same model reuse the curves.
    """
    allowed = {name: [k for k in LEVELS if fits(name, k)] for name in layers}
    allowed = {name: counts for name, counts in allowed.items() if counts}  # the rest keep the uniform count
    weights = kernel_sizes(model, list(allowed))
    change = cluster_preserving_zeros if preserve_sparsity else cluster_kernel
    measured = damage_curves(model, list(allowed), x, predict, [lambda kernel, k=k: change(kernel, k) for k in LEVELS],
                             memo=None if memo is None else f"cluster {LEVELS} {preserve_sparsity} {memo}")
    curves = {name: list(np.minimum.accumulate(values)) for name, values in measured.items()}
    chosen = allocate(curves, weights, allowed, target)
    achieved = sum(weights[n] * _bits(chosen[n]) for n in chosen) / max(1, sum(weights.values()))
    return ClusterAllocation(target=target, target_bits=round(_bits(target), 6), achieved_bits=round(achieved, 6),
                             layer_clusters=chosen, weights=weights, curves=curves, levels=list(LEVELS))
