"""Keras layer names <-> .tflite ops, and which layers must stay float together.

TensorFlow names a converted op's output tensor after the name scopes it was traced in, and those
scopes are the layer names made unique (``conv2d_1`` can be the scope of layer ``conv2d`` or of
layer ``conv2d_1``). So the model is converted from a clone whose layers carry an unambiguous
marker (``epl<index>x_<name>``); every op is mapped back to the layer that made it by that marker.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from edgepack.errors import ConfigError, ModelError

MARKER = re.compile(r"epl(\d+)x_")


@dataclass
class LayerMap:
    """The clone to convert and the original layer names by marker index."""

    clone: object
    names: dict[int, str]                       # marker index -> original layer name
    weighted: set[str] = field(default_factory=set)
    consumers: dict[str, list[str]] = field(default_factory=dict)   # layer -> layers fed by its output

    def layer_of(self, tensor_name: str) -> str | None:
        """The layer whose marker appears last in ``tensor_name`` (a fused op names its last layer last)."""
        found = MARKER.findall(tensor_name or "")
        return self.names.get(int(found[-1])) if found else None

    def layers_in(self, tensor_name: str) -> set[str]:
        """Every layer named in a (possibly fused) op's output tensor name."""
        return {self.names[int(i)] for i in MARKER.findall(tensor_name or "") if int(i) in self.names}

    def unit(self, layer: str) -> list[str]:
        """The layers that stay float together when ``layer`` does: the layer, and the layers its
        output reaches through weightless layers (dropout, flatten, pooling) up to and including the
        first layers with weights. An int8 consumer would re-quantize the float output, so keeping a
        layer float alone rarely helps when its output range is the problem."""
        unit, frontier = [layer], list(self.consumers.get(layer, []))
        while frontier:
            name = frontier.pop(0)
            if name in unit:
                continue
            unit.append(name)
            if name not in self.weighted:
                frontier += self.consumers.get(name, [])
        return unit


def _is_input(layer) -> bool:
    return type(layer).__name__ == "InputLayer"


def _consumers(model) -> dict[str, list[str]]:
    consumers: dict[str, list[str]] = {}
    for layer in model.layers:
        for node in getattr(layer, "_inbound_nodes", []):
            for inbound in _inbound_layers(node):
                consumers.setdefault(inbound.name, []).append(layer.name)
    return consumers


def _inbound_layers(node) -> list:
    layers = getattr(node, "inbound_layers", None)
    if layers is not None:
        return layers if isinstance(layers, (list, tuple)) else [layers]
    history = [getattr(t, "_keras_history", None) for t in getattr(node, "input_tensors", [])]
    return [h[0] if isinstance(h, tuple) else h.operation for h in history if h is not None]


def mark_layers(model, keras_module) -> LayerMap:
    """A clone of the functional or Sequential ``model`` with marked layer names, same weights."""
    names: dict[int, str] = {}

    def rename(layer):
        config = layer.get_config()
        if not _is_input(layer):
            names[len(names)] = layer.name
            config["name"] = f"epl{len(names) - 1}x_{layer.name}"
        return layer.__class__.from_config(config)

    try:
        clone = keras_module.models.clone_model(model, clone_function=rename)
        clone.set_weights(model.get_weights())
    except Exception as exc:  # subclassed models and custom layers cannot be cloned from config
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"keeping chosen layers in float needs a functional or Sequential Keras model: {reason[:200]}",
                         hint="convert without --float-ops / --max-drop") from exc
    weighted = {layer.name for layer in model.layers if layer.weights and not _is_input(layer)}
    return LayerMap(clone=clone, names=names, weighted=weighted, consumers=_consumers(model))


def match_layers(patterns: list[str], layers: list[str], *, what: str = "--float-ops") -> list[str]:
    """The layers (in model order) whose name matches any pattern (re.search); a pattern that matches
    none is a ConfigError naming the closest layer names."""
    chosen = []
    for pattern in patterns:
        hits = [name for name in layers if re.search(pattern, name)]
        if not hits:
            close = difflib.get_close_matches(pattern, layers, n=3, cutoff=0.3) or layers[:5]
            raise ConfigError(f"{what} {pattern!r} matches no layer that runs as an op",
                              hint=f"nearest layer names: {', '.join(close)}")
        chosen += [name for name in hits if name not in chosen]
    return [name for name in layers if name in chosen]


def strip_markers(model: bytes) -> bytes:
    """The .tflite ``model`` with the layer markers taken out of its tensor names again.

    LiteRT Quantizer writes the weights of a model with 256 KB or more of them after the flatbuffer
    (each buffer an offset and a size); they are brought back inside it here, since writing the
    flatbuffer again would otherwise leave those offsets pointing past its end."""
    import numpy as np
    from tensorflow.lite.tools import flatbuffer_utils

    tree = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    for buffer in tree.buffers or []:
        if buffer.offset > 1 and buffer.size:
            buffer.data = np.frombuffer(model[buffer.offset:buffer.offset + buffer.size], dtype=np.uint8)
            buffer.offset = buffer.size = 0
    for subgraph in tree.subgraphs:
        for tensor in subgraph.tensors:
            if tensor.name:
                tensor.name = MARKER.sub("", tensor.name.decode("utf-8", "replace")).encode()
    return bytes(flatbuffer_utils.convert_object_to_bytearray(tree))
