"""Per Keras layer: parameters, sparsity and distinct values (from the Keras model that was
converted), and the .tflite operators made from it, with how each computes and whether the device's
accelerator is predicted to run it. Operators are attributed to a layer by the layer's name inside
the operator's output tensor names (the converter names tensors ``<model>/<layer>/<op>``, numbered
``<model>_1/<layer>_1/<op>`` by Keras 3's export); an
operator whose names hold no layer name (a reshape the converter added, a fused constant) is listed
under ``(converter)``."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from edgepack.inspection.result import KerasLayerRow, TfliteInspection

CONVERTER = "(converter)"


class OpRow(BaseModel):
    """One .tflite operator of a layer: how it computes and where it is predicted to run."""

    index: int
    op: str
    type: str
    edgetpu: bool | None = None  # None: not an Edge TPU device
    gpu: bool | None = None  # None: not a GPU device


class LayerRow(BaseModel):
    """One Keras layer in the report's per-layer section (``class`` in JSON)."""

    model_config = ConfigDict(serialize_by_alias=True, populate_by_name=True)

    name: str
    layer_class: str | None = Field(default=None, alias="class")
    params: int | None = None
    sparsity: float | None = None
    distinct_values: int | None = None
    ops: list[OpRow] = []


def _owner(names: list[str], layers: list[str], weighted: set[str], suffixed: bool) -> str | None:
    """The layer an operator comes from: a layer whose name is a path component of the operator's
    tensor names (``<layer>_<n>`` when the model's scope is numbered, as Keras 3's export numbers every
    scope). Fused operators name several layers (conv + batch norm + ReLU): the one with weights wins."""
    components = {part for name in names for part in re.split(r"[/;:]", name)}
    matching = [layer for layer in layers
                if any(re.fullmatch(rf"{re.escape(layer)}_\d+" if suffixed else re.escape(layer), part)
                       for part in components)]
    if not matching:
        return None
    return max(matching, key=lambda layer: (layer in weighted, len(layer)))


def _numbered_scope(tflite: TfliteInspection, model_name: str | None) -> bool:
    """Whether the converter numbered the model's scope (``digits_cnn_1/...``), and so every layer's."""
    if not model_name:
        return False
    pattern = re.compile(rf"(^|;){re.escape(model_name)}_\d+/")
    return any(pattern.search(name) for op in tflite.ops for name in op.outputs)


def _accelerated(index: int, tflite: TfliteInspection, accelerator: str | None) -> tuple[bool | None, bool | None]:
    edgetpu = gpu = None
    if accelerator == "edgetpu" and tflite.edgetpu.ops_mappable is not None:
        edgetpu = index < tflite.edgetpu.ops_mappable
    if accelerator == "gpu" and tflite.gpu is not None:
        gpu = index not in {op.index for op in tflite.gpu.cpu_ops}
    return edgetpu, gpu


def layer_rows(keras_layers: list[KerasLayerRow], tflite: TfliteInspection, accelerator: str | None,
               model_name: str | None = None) -> list[LayerRow]:
    """One row per Keras layer (the report's per-layer section), plus ``(converter)`` when some
    operators belong to no layer. ``keras_layers`` is ``inspect_keras(...).layers``; ``tflite`` is
    ``inspect_tflite(...)`` of the bundled model."""
    names = [layer.name for layer in keras_layers]
    weighted = {layer.name for layer in keras_layers if layer.sparsity is not None}
    suffixed = _numbered_scope(tflite, model_name)
    ops_of: dict[str, list[OpRow]] = {name: [] for name in names}
    for op in tflite.ops:
        edgetpu, gpu = _accelerated(op.index, tflite, accelerator)
        row = OpRow(index=op.index, op=op.op, type=op.type, edgetpu=edgetpu, gpu=gpu)
        ops_of.setdefault(_owner(op.outputs, names, weighted, suffixed) or CONVERTER, []).append(row)
    rows = [LayerRow(name=layer.name, layer_class=layer.class_name, params=layer.params,
                     sparsity=layer.sparsity, distinct_values=layer.distinct_values,
                     ops=ops_of[layer.name]) for layer in keras_layers]
    if ops_of.get(CONVERTER):
        rows.append(LayerRow(name=CONVERTER, ops=ops_of[CONVERTER]))
    return rows
