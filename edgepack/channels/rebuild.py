"""Rebuild a smaller model: the kept channels of every group, each layer's weights sliced to them.

The result is a plain Keras model of the input's flavour (nested models inlined, layer names kept):
a producer's ``filters``/``units`` shrink, its kernel and bias keep the kept output channels; a
BatchNormalization or DepthwiseConv2D keeps the kept channels of its weights; a consumer's kernel
keeps the rows of the channels it still receives (after a Flatten, ``p·C + c`` for every position
``p``). Nothing else changes, so when every consumer's rows for the removed channels are zero the
smaller model computes exactly what the larger one did (tested for every kind of group).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgepack.channels.graph import ChannelGraph, Layout
from edgepack.compress import bridge

Keep = dict[int, np.ndarray]   # group id -> the kept channel indices, ascending


def kept_indices(graph: ChannelGraph, layout: Layout, keep: Keep) -> np.ndarray:
    """The indices along a tensor's last axis that survive, for a tensor laid out as ``layout``."""
    parts, offset = [], 0
    for group, width in graph.layout(layout).segments:
        chosen = keep.get(group)
        parts.append(offset + (np.arange(width) if chosen is None else np.asarray(chosen)))
        offset += width
    channels = np.concatenate(parts) if parts else np.arange(0)
    if layout.positions == 1:
        return channels
    return (np.arange(layout.positions)[:, None] * offset + channels[None, :]).ravel()


@dataclass
class LayerCut:
    """What one layer keeps: its output channels, input rows and per-channel weights (None: all)."""

    out: np.ndarray | None = None
    rows: np.ndarray | None = None
    carried: np.ndarray | None = None
    widths: dict[str, int] = field(default_factory=dict)


def layer_cuts(graph: ChannelGraph, keep: Keep) -> dict[str, LayerCut]:
    """Every layer touched by ``keep``, with what it keeps."""
    cuts: dict[str, LayerCut] = {}
    for use in graph.uses:
        index = kept_indices(graph, use.layout, keep)
        if len(index) == use.layout.width:
            continue
        cut = cuts.setdefault(use.layer, LayerCut())
        if use.role == "produces":
            cut.out = index
        elif use.role == "consumes":
            cut.rows = index
        else:
            cut.carried = index
    return cuts


def _bias(weights: list, position: int, index) -> None:
    if len(weights) > position and index is not None:
        weights[position] = weights[position][index]


def sliced_weights(kind: str, weights: list[np.ndarray], cut: LayerCut, multiplier: int = 1) -> list[np.ndarray]:
    """``weights`` of a ``kind`` layer cut to ``cut``."""
    w = list(weights)
    if kind in ("Conv1D", "Conv2D", "Dense"):
        if cut.rows is not None:
            w[0] = np.take(w[0], cut.rows, axis=-2 if kind != "Dense" else 0)
        if cut.out is not None:
            w[0] = np.take(w[0], cut.out, axis=-1)
            _bias(w, 1, cut.out)
    elif kind == "Conv2DTranspose":   # kernel (kh, kw, out, in)
        if cut.rows is not None:
            w[0] = np.take(w[0], cut.rows, axis=-1)
        if cut.out is not None:
            w[0] = np.take(w[0], cut.out, axis=-2)
            _bias(w, 1, cut.out)
    elif kind == "SeparableConv2D":   # depthwise (kh, kw, in, m), pointwise (1, 1, in*m, out), bias
        if cut.rows is not None:
            w[0] = np.take(w[0], cut.rows, axis=2)
            expanded = (cut.rows[:, None] * multiplier + np.arange(multiplier)[None, :]).ravel()
            w[1] = np.take(w[1], expanded, axis=2)
        if cut.out is not None:
            w[1] = np.take(w[1], cut.out, axis=-1)
            _bias(w, 2, cut.out)
    elif kind == "DepthwiseConv2D":
        if cut.carried is not None:
            w[0] = np.take(w[0], cut.carried, axis=-2)
            _bias(w, 1, cut.carried)
    elif kind == "BatchNormalization":
        if cut.carried is not None:
            w = [np.take(v, cut.carried, axis=0) for v in w]
    return w


def width_updates(kind: str, cut: LayerCut) -> dict:
    """The config keys that give a producer its new width."""
    if cut.out is None:
        return {}
    return {"units": int(len(cut.out))} if kind == "Dense" else {"filters": int(len(cut.out))}


def pruned_model(flat, graph: ChannelGraph, keep: Keep):
    """A new model of ``flat``'s flavour with only the channels in ``keep`` (groups not named keep all)."""
    cuts = layer_cuts(graph, keep)
    overrides = {name: width_updates(graph.kinds[name], cut) for name, cut in cuts.items()}
    rebuilt = bridge.rebuild_graph(flat, bridge.flavor_of(flat), {k: v for k, v in overrides.items() if v})
    by_name = dict(bridge.leaf_layers(rebuilt))
    for name, layer in bridge.leaf_layers(flat):
        weights = layer.get_weights()
        if not weights:
            continue
        if name in cuts:
            multiplier = int(layer.get_config().get("depth_multiplier", 1) or 1)
            weights = sliced_weights(type(layer).__name__, weights, cuts[name], multiplier)
        by_name[name].set_weights(weights)
    return rebuilt


def flatten(model):
    """``model`` with its nested models inlined, in its own flavour, with its weights (what the walk reads)."""
    if not any(bridge.is_model(layer) for layer in model.layers):
        return model
    return bridge.rebuild(model, bridge.flavor_of(model))


def _input_axis(kind: str) -> int:
    return {"Dense": 0, "Conv2DTranspose": -1, "SeparableConv2D": 2}.get(kind, -2)


class silenced:
    """Within the block, every consumer of a channel outside ``keep`` reads it with zero weights: the
    model computes what the pruned model will (before fine-tuning). The weights are restored after."""

    def __init__(self, flat, graph: ChannelGraph, keep: Keep):
        self.flat, self.graph, self.keep = flat, graph, keep
        self.saved: list[tuple[object, list]] = []

    def __enter__(self):
        layers = dict(bridge.leaf_layers(self.flat))
        for name, cut in layer_cuts(self.graph, self.keep).items():
            if cut.rows is None:
                continue
            layer = layers[name]
            original = layer.get_weights()
            kind = type(layer).__name__
            changed = list(original)
            axis = _input_axis(kind)
            mask = np.ones(original[0].shape[axis], dtype=bool)
            mask[cut.rows] = False
            shape = [1] * original[0].ndim
            shape[axis] = -1
            changed[0] = np.where(mask.reshape(shape), 0.0, original[0]).astype(original[0].dtype)
            self.saved.append((layer, original))
            layer.set_weights(changed)
        return self.flat

    def __exit__(self, *exc):
        for layer, original in reversed(self.saved):
            layer.set_weights(original)
        return False
