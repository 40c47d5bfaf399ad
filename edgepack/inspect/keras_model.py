"""``inspect`` for Keras models: layers, parameters, MACs, size, sparsity and distinct weights."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from edgepack.loading.model import load_model


def _shape(tensor_or_shape) -> list:
    shape = getattr(tensor_or_shape, "shape", tensor_or_shape)
    return [None if d is None else int(d) for d in shape]


def _output_shape(layer) -> list | None:
    try:
        output = layer.output
    except (AttributeError, ValueError):
        return None
    if isinstance(output, (list, tuple)):
        output = output[0]
    return _shape(output)


def layer_macs(layer, out_shape: list | None) -> int:
    """Multiply-accumulates of one inference (batch 1) for the common compute layers."""
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


def inspect_keras(path: str | Path, *, trust_model: bool = False) -> dict:
    """Describe a Keras model file or SavedModel folder; JSON-serialisable."""
    loaded = load_model(path, trust_model=trust_model)
    info = loaded.info
    report = {"kind": "keras", "path": str(info.path), "format": info.format.value, "flavor": info.flavor.value,
              "keras_version": info.keras_version, "sha256": info.sha256}
    if not loaded.is_keras:
        report.update(inputs=[list(loaded.input_shape)], layers=[], note="plain SavedModel: no Keras layers",
                      **_savedmodel_facts(loaded.model))
        return report
    model = loaded.model
    layers = []
    for layer in model.layers:
        out_shape = _output_shape(layer)
        stats = _weight_stats(layer)
        layers.append({
            "name": layer.name, "class": type(layer).__name__, "output_shape": out_shape,
            "params": int(sum(math.prod(w.shape) for w in layer.weights)),
            "macs": layer_macs(layer, out_shape),
            "sparsity": None if stats is None else stats["sparsity"],
            "distinct_values": None if stats is None else stats["distinct_values"],
        })
    params = int(sum(math.prod(w.shape) for w in model.weights))
    trainable = int(sum(math.prod(w.shape) for w in model.trainable_weights))
    report.update(
        name=model.name, inputs=[_shape(t) for t in model.inputs], outputs=[_shape(t) for t in model.outputs],
        params=params, trainable_params=trainable, macs=int(sum(layer["macs"] for layer in layers)),
        float32_size_bytes=params * 4, layers=layers,
    )
    return report
