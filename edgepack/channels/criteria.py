"""How much each channel of a group matters: the ranking that decides which channels go first.

- ``l1`` / ``l2``: the norm of every weight tied to the channel — the producers' filters, the
  BatchNorm and depthwise weights that carry it, the consumers' input rows — each layer's scores
  divided by their mean so that no layer outweighs the others by its size alone (DepGraph's group
  magnitude).
- ``bn``: the absolute BatchNorm scale (gamma) of the channel, averaged over the group's
  BatchNormalization layers (the network-slimming criterion); a group without BatchNorm falls back
  to ``l1``.
- ``taylor``: the first-order estimate of the loss change when the channel's weights are removed,
  ``|Σ w·∂L/∂w|`` per layer over the same weights, with the gradients averaged over training batches.
"""

from __future__ import annotations

from enum import Enum
from typing import Callable

import numpy as np

from edgepack.channels.graph import ChannelGraph, Group
from edgepack.compress import bridge


class Criterion(str, Enum):
    L1 = "l1"
    L2 = "l2"
    BN = "bn"
    TAYLOR = "taylor"


def _channel_axis(kind: str, role: str, weight_index: int) -> int | None:
    """Axis of weight ``weight_index`` of a ``kind`` layer that indexes the channels of its ``role``
    (None: the weight says nothing of the channel's importance, e.g. BatchNorm's moving statistics)."""
    if role == "carries":
        if kind == "BatchNormalization":
            return 0 if weight_index == 0 else None
        return -2 if kind == "DepthwiseConv2D" and weight_index == 0 else 0
    if role == "produces":
        if kind == "SeparableConv2D":
            return None if weight_index == 0 else -1 if weight_index == 1 else 0
        if kind == "Conv2DTranspose":
            return -2 if weight_index == 0 else 0
        return -1 if weight_index == 0 else 0
    if weight_index != 0:   # consumes: only the kernel's input rows (and a separable's depthwise kernel)
        return None
    return {"Dense": 0, "Conv2DTranspose": -1, "SeparableConv2D": 2}.get(kind, -2)


def _per_channel(values: np.ndarray, axis: int, reduce: Callable) -> np.ndarray:
    moved = np.moveaxis(values, axis, 0)
    return reduce(moved.reshape(moved.shape[0], -1))


def _layer_scores(graph: ChannelGraph, group: Group, weights: dict[str, list[np.ndarray]],
                  reduce: Callable) -> list[np.ndarray]:
    """Per layer tied to ``group``, one score per channel of the group (normalised to mean 1)."""
    scores = []
    for use in graph.uses_of(group.id):
        layout = graph.layout(use.layout)
        if len(layout.segments) != 1 or layout.positions != 1 or use.layer not in weights:
            continue   # concatenated or flattened inputs: the producers' own scores decide
        for index, values in enumerate(weights[use.layer]):
            axis = _channel_axis(graph.kinds[use.layer], use.role, index)
            if axis is None or values.ndim == 0 or values.shape[axis] != group.width:
                continue
            score = _per_channel(values, axis, reduce)
            mean = float(np.mean(score))
            scores.append(score / mean if mean > 0 else score)
    return scores


def _magnitudes(graph, group, weights, reduce) -> np.ndarray:
    scores = _layer_scores(graph, group, weights, reduce)
    return np.sum(scores, axis=0) if scores else np.zeros(group.width)


def _gammas(graph: ChannelGraph, group: Group, flat) -> np.ndarray | None:
    layers = dict(bridge.leaf_layers(flat))
    found = []
    for use in graph.uses_of(group.id):
        layer = layers[use.layer]
        if use.role == "carries" and graph.kinds[use.layer] == "BatchNormalization" and layer.scale \
                and len(graph.layout(use.layout).segments) == 1:
            found.append(np.abs(layer.get_weights()[0]))
    return np.mean(found, axis=0) if found else None


def rank(flat, graph: ChannelGraph, criterion: Criterion, *, gradients: dict[str, list[np.ndarray]] | None = None
         ) -> tuple[dict[int, np.ndarray], list[str]]:
    """Per prunable group, a score per channel (higher matters more), and notes (e.g. bn fell back to l1).

    ``taylor`` needs ``gradients`` (see ``taylor_gradients``)."""
    weights = {name: layer.get_weights() for name, layer in bridge.leaf_layers(flat) if layer.weights
               and not (type(layer).__name__ == "BatchNormalization" and not layer.scale)}  # no gamma: no score
    l1 = lambda m: np.sum(np.abs(m), axis=1)   # noqa: E731
    l2 = lambda m: np.sqrt(np.sum(m * m, axis=1))   # noqa: E731
    scores, fallback = {}, []
    for group in graph.prunable:
        if criterion is Criterion.TAYLOR:
            products = {name: [w * g for w, g in zip(weights[name], gradients[name])] for name in weights}
            scores[group.id] = _magnitudes(graph, group, products, lambda m: np.abs(np.sum(m, axis=1)))
        elif criterion is Criterion.BN and (gammas := _gammas(graph, group, flat)) is not None:
            scores[group.id] = gammas
        else:
            if criterion is Criterion.BN:
                fallback.append(group.producers[0])
            scores[group.id] = _magnitudes(graph, group, weights, l2 if criterion is Criterion.L2 else l1)
    notes = [f"criterion bn: {len(fallback)} group(s) without BatchNorm ranked by l1 ({', '.join(fallback[:4])})"
             ] if fallback else []
    return scores, notes


def taylor_gradients(flat, x: np.ndarray, y: np.ndarray, loss, *, batch_size: int = 32,
                     batches: int = 8) -> dict[str, list[np.ndarray]]:
    """Each weighted layer's gradient of ``loss`` (a loss object of the model's flavour), averaged over up to
    ``batches`` batches of (x, y)."""
    tf = bridge.import_tf()
    layers = [(name, layer) for name, layer in bridge.leaf_layers(flat) if layer.weights]
    variables = [v for _, layer in layers for v in layer.weights]
    totals = [np.zeros(tuple(v.shape), dtype=np.float64) for v in variables]
    count = 0
    for start in range(0, min(len(x), batch_size * batches), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        with tf.GradientTape() as tape:
            for v in variables:
                tape.watch(v.value if hasattr(v, "value") and not callable(v.value) else v)
            value = loss(yb, flat(xb, training=False))
        grads = tape.gradient(value, [v.value if hasattr(v, "value") and not callable(v.value) else v
                                      for v in variables])
        for total, grad in zip(totals, grads):
            if grad is not None:
                total += np.asarray(grad)
        count += 1
    out, position = {}, 0
    for name, layer in layers:
        n = len(layer.weights)
        out[name] = [(t / max(1, count)).astype(np.float32) for t in totals[position:position + n]]
        position += n
    return out
