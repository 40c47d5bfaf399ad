"""Spend a global sparsity budget where it does the least damage (``prune --allocate sensitivity``).

Each prunable layer's damage curve is measured on data: the layer alone is pruned by magnitude to
each level of ``LEVELS`` (no fine-tuning) and the damage is the mean squared change of the model's
outputs against the float model's. Then a greedy allocation raises, step by step, the level of the
layer whose next step costs the least damage per weight zeroed, until the fraction of zeroed
weights over all prunable kernels equals the target (the last step is interpolated to hit it
exactly). The result is a per-layer sparsity that the prune step applies and the resolved recipe
records, so it can be replayed without measuring again.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from edgepack.allocation.damage import damage_curves as measure
from edgepack.allocation.damage import kernel_sizes
from edgepack.layer_sensitivity.weights import prune_kernel

LEVELS = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98)


class Allocation(BaseModel):
    """The per-layer sparsity chosen for a global target, with the curves it was chosen from."""

    target: float
    achieved: float
    layer_sparsity: dict[str, float]
    weights: dict[str, int]
    curves: dict[str, list[float]]
    levels: list[float]


def damage_curves(model, layers: list[str], x: np.ndarray, predict, *, memo: str | None = None) -> dict[str, list[float]]:
    """Per layer, the output MSE against the float model at each level of LEVELS (non-decreasing);
    ``memo`` names the model and output (see ``allocation.damage.damage_curves``)."""
    changes = [lambda kernel, level=level: prune_kernel(kernel, level) for level in LEVELS]
    curves = measure(model, layers, x, predict, changes, memo=None if memo is None else f"prune {LEVELS} {memo}")
    return {name: list(np.maximum.accumulate(values)) for name, values in curves.items()}


def allocate(curves: dict[str, list[float]], weights: dict[str, int], target: float) -> dict[str, float]:
    """Per-layer sparsity with sum(weights * sparsity) == target * sum(weights), greedy by marginal damage."""
    budget = target * sum(weights.values())
    step = {name: 0 for name in curves}
    used = 0.0
    while used < budget - 1e-9:
        candidates = [name for name in curves if step[name] < len(LEVELS) - 1]
        if not candidates:
            break

        def cost(name):
            i = step[name]
            zeroed = weights[name] * (LEVELS[i + 1] - LEVELS[i])
            return (curves[name][i + 1] - curves[name][i]) / zeroed, -weights[name]

        name = min(candidates, key=cost)
        i = step[name]
        gain = weights[name] * (LEVELS[i + 1] - LEVELS[i])
        if used + gain > budget:
            sparsity = LEVELS[i] + (budget - used) / weights[name]
            return {n: (sparsity if n == name else LEVELS[step[n]]) for n in curves}
        used += gain
        step[name] = i + 1
    return {name: LEVELS[step[name]] for name in curves}


def allocate_sparsity(model, layers: list[str], x: np.ndarray, predict, target: float, *,
                      memo: str | None = None) -> Allocation:
    """Measure the layers' damage curves on ``x`` and allocate ``target`` sparsity between them; ``memo``
    (the model's sha256 and output) lets later calls on the same model reuse the curves."""
    weights = kernel_sizes(model, layers)
    curves = damage_curves(model, layers, x, predict, memo=memo)
    chosen = allocate(curves, weights, target)
    achieved = sum(weights[n] * chosen[n] for n in layers) / max(1, sum(weights.values()))
    return Allocation(target=target, achieved=round(achieved, 6), layer_sparsity={n: round(s, 6) for n, s in
                                                                                  chosen.items()},
                      weights=weights, curves=curves, levels=list(LEVELS))
