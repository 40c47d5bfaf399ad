"""``inspect`` for Keras models: layers, parameters, MACs, size, sparsity and distinct weights.

MACs are multiply-accumulates of one inference at batch 1: convolutions and Dense layers; LSTM,
GRU and SimpleRNN layers (their input and recurrent matrix products per time step, times the
steps); Bidirectional (both directions), TimeDistributed (the inner layer times the steps) and
nested models (the sum of their layers, recursively). When the sequence length is free (None) a
recurrent layer's MACs are for one time step, and the report says so (``macs_note``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from edgepack.inspection.result import KerasInspection, KerasLayerRow
from edgepack.loading.model import load_model


def _shape(tensor_or_shape) -> list:
    shape = getattr(tensor_or_shape, "shape", tensor_or_shape)
    return [None if d is None else int(d) for d in shape]


def _first_shape(get) -> list | None:
    try:
        tensor = get()
    except (AttributeError, ValueError, RuntimeError):  # not connected, or called more than once
        return None
    if isinstance(tensor, (list, tuple)):
        tensor = tensor[0] if tensor else None
    return None if tensor is None else _shape(tensor)


def _output_shape(layer) -> list | None:
    return _first_shape(lambda: layer.output) or _first_shape(lambda: layer._inbound_nodes[0].output_tensors)


def _input_shape(layer) -> list | None:
    return _first_shape(lambda: layer.input) or _first_shape(lambda: layer._inbound_nodes[0].input_tensors)


def calls_in(model, layer) -> int:
    """How many times ``model``'s graph calls ``layer`` (a shared encoder called on two inputs: 2), from the
    model's node keys (Keras 3: ``<id>_ib-<n>``; tf_keras: ``<name>_ib-<n>``); 1 when they cannot say."""
    keys = getattr(model, "_nodes", None) or getattr(model, "_network_nodes", None) or ()
    prefixes = (f"{id(layer)}_ib-", f"{layer.name}_ib-")
    return max(1, sum(1 for key in keys if str(key).startswith(prefixes)))


def layer_macs(layer, out_shape: list | None) -> int:
    """Multiply-accumulates of one inference (batch 1) for the common compute layers (recurrent
    layers, wrappers and nested models: see ``_macs``)."""
    kind = type(layer).__name__
    kernel = getattr(layer, "kernel", None)
    if out_shape is None:
        return 0
    spatial = math.prod(d for d in out_shape[1:-1] if d) if len(out_shape) > 2 else 1
    if kind == "Dense" and kernel is not None:
        rows = math.prod(d for d in out_shape[1:-1] if d) if len(out_shape) > 2 else 1
        return int(rows * math.prod(kernel.shape))
    if kind in {"Conv1D", "Conv2D", "Conv3D", "Conv2DTranspose"} and kernel is not None:
        return int(spatial * math.prod(kernel.shape))
    if kind == "DepthwiseConv2D":
        depthwise = getattr(layer, "depthwise_kernel", None)
        depthwise = kernel if depthwise is None else depthwise
        return int(spatial * math.prod(depthwise.shape)) if depthwise is not None else 0
    if kind == "SeparableConv2D":
        depthwise = layer.depthwise_kernel
        pointwise = layer.pointwise_kernel
        return int(spatial * (math.prod(depthwise.shape) + math.prod(pointwise.shape)))
    return 0


def _recurrent_macs(layer, in_shape: list | None) -> tuple[int, bool]:
    """LSTM, GRU, SimpleRNN: the cell's input and recurrent matrix products, ``kernel`` [in, g*units]
    plus ``recurrent_kernel`` [units, g*units] with g = 4 (LSTM), 3 (GRU, reset_after or not), 1
    (SimpleRNN), times the time steps. Gate activations and element-wise products are not counted
    (as a Dense layer's bias and activation are not). A free time dimension gives MACs per step."""
    cell = getattr(layer, "cell", None)
    kernel, recurrent = getattr(cell, "kernel", None), getattr(cell, "recurrent_kernel", None)
    if kernel is None or recurrent is None or len(kernel.shape) != 2:
        return 0, False
    steps = in_shape[1] if in_shape and len(in_shape) == 3 else None
    return int((math.prod(kernel.shape) + math.prod(recurrent.shape)) * (steps or 1)), steps is None


def _wrapped_macs(layer, kind: str, out_shape: list | None, in_shape: list | None) -> tuple[int, bool]:
    """Bidirectional (its forward and backward layers), TimeDistributed (the inner layer per time
    step, times the steps) and nested models (the sum of their layers)."""
    if kind == "Bidirectional":
        parts = [_macs(getattr(layer, side), None, in_shape) for side in ("forward_layer", "backward_layer")]
        return sum(m for m, _ in parts), any(free for _, free in parts)
    if kind == "TimeDistributed":
        drop_time = lambda shape: [shape[0], *shape[2:]] if shape and len(shape) > 2 else None  # noqa: E731
        inner, free = _macs(layer.layer, drop_time(out_shape), drop_time(in_shape))
        steps = out_shape[1] if out_shape and len(out_shape) > 2 else None
        return inner * (steps or 1), free or steps is None
    parts = [_macs(sub, _output_shape(sub), _input_shape(sub)) for sub in layer.layers]
    calls = [calls_in(layer, sub) for sub in layer.layers]
    return sum(m * n for (m, _), n in zip(parts, calls)), any(free for _, free in parts)


def _macs(layer, out_shape: list | None, in_shape: list | None) -> tuple[int, bool]:
    """``(MACs, per_time_step)`` of one layer: ``per_time_step`` when a recurrent layer inside it has
    a free time dimension and its MACs are given for one step."""
    kind = type(layer).__name__
    if kind in ("Bidirectional", "TimeDistributed") or isinstance(getattr(layer, "layers", None), list):
        return _wrapped_macs(layer, kind, out_shape, in_shape)
    if getattr(layer, "cell", None) is not None:
        return _recurrent_macs(layer, in_shape)
    return layer_macs(layer, out_shape), False


def _weight_stats(layer) -> dict | None:
    kernels = [w for w in layer.weights if any(k in w.name for k in ("kernel", "embeddings"))]
    if not kernels:
        return None
    values = np.concatenate([np.asarray(w.numpy()).ravel() for w in kernels])
    return {"sparsity": float(np.mean(values == 0)) if values.size else 0.0,
            "distinct_values": int(np.unique(values).size)}


def _savedmodel_facts(model) -> dict:
    """Parameters (the variables the signatures capture, each once) and every signature's inputs and
    outputs by name, of a plain SavedModel."""
    signatures, variables = {}, {}
    for name, function in model.signatures.items():
        inputs = function.structured_input_signature[1]
        outputs = function.structured_outputs
        signatures[name] = {"inputs": {k: _shape(v) for k, v in sorted(inputs.items())},
                            "outputs": {k: _shape(v) for k, v in sorted(outputs.items())}}
        for variable in function.variables:
            variables[id(variable)] = variable
    params = int(sum(math.prod(v.shape) for v in variables.values()))
    serving = signatures.get("serving_default") or next(iter(signatures.values()), {"outputs": {}})
    return {"params": params, "float32_size_bytes": params * 4, "signatures": signatures,
            "outputs": list(serving["outputs"].values())}


def inspect_keras(path: str | Path, *, trust_model: bool = False) -> KerasInspection:
    """Describe a Keras model file or SavedModel folder: inputs, outputs, parameters, MACs and each layer's
    figures (a plain SavedModel: its signatures and parameters, no layers)."""
    loaded = load_model(path, trust_model=trust_model)
    info = loaded.info
    report = {"kind": "keras", "path": str(info.path), "format": info.format.value, "flavor": info.flavor.value,
              "keras_version": info.keras_version, "sha256": info.sha256}
    if not loaded.is_keras:
        report.update(inputs=[list(loaded.input_shape)], layers=[], note="plain SavedModel: no Keras layers",
                      **_savedmodel_facts(loaded.model))
        return KerasInspection.model_validate(report)
    model = loaded.model
    layers = [_layer_row(layer, calls_in(model, layer)) for layer in model.layers]
    params = int(sum(math.prod(w.shape) for w in model.weights))
    trainable = int(sum(math.prod(w.shape) for w in model.trainable_weights))
    per_step = [layer.name for layer in layers if layer.macs_per_time_step]
    report.update(
        name=model.name, inputs=[_shape(t) for t in model.inputs], outputs=[_shape(t) for t in model.outputs],
        params=params, trainable_params=trainable, macs=int(sum(layer.macs for layer in layers)),
        float32_size_bytes=params * 4, layers=layers,
    )
    if per_step:
        report["macs_note"] = (f"the sequence length is free: the MACs of {', '.join(per_step)} are for one "
                               f"time step; multiply by the length of your sequences")
    return KerasInspection.model_validate(report)


def _layer_row(layer, calls: int = 1) -> KerasLayerRow:
    """One layer's figures; a layer the model calls several times (shared) counts its MACs once per call."""
    out_shape = _output_shape(layer)
    stats = _weight_stats(layer)
    macs, per_step = _macs(layer, out_shape, _input_shape(layer))
    return KerasLayerRow(
        name=layer.name, class_name=type(layer).__name__, output_shape=out_shape,
        params=int(sum(math.prod(w.shape) for w in layer.weights)), macs=macs * calls,
        sparsity=None if stats is None else stats["sparsity"],
        distinct_values=None if stats is None else stats["distinct_values"],
        macs_per_time_step=bool(per_step), calls=calls)
