"""Model Explorer node data for a .tflite: one overlay per question a user asks of the graph.

The files follow Model Explorer's node-data format (``ai-edge-model-explorer``, ``node_data_builder.py``):
``{graph id: {"results": {node id: {"value": number}}, "thresholds": [...]}}``. Its TFLite adapter
names the main graph ``main`` (or the subgraph's name) and each operator by its index in the graph
("0", "1", ...), which is what the keys here are. Written as JSON by edgepack itself (the format is
four keys), so the base install needs no Model Explorer; the tests load the files with the real
package and check every key against the graph its own adapter builds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgepack.inspection.edgetpu import fix_for, op_blocker
from edgepack.inspection.result import GpuReadiness
from edgepack.inspection.tflite_graph import Graph, op_type
from edgepack.quantization.mixed import MixedPrecision

PRECISION_BITS = {"int4": 4, "int8": 8, "hybrid": 8, "int16": 16, "float16": 16, "float32": 32,
                  "int32": 32, "int64": 64, "bool": 1}
PRECISION_COLORS = [(4, "#1a9850"), (8, "#91cf60"), (16, "#fee08b"), (64, "#d73027")]
PLACED_COLORS = [(0, "#d73027"), (1, "#1a9850")]


@dataclass
class Overlay:
    """One node-data file: ``values`` by operator index, the colour thresholds, and what it shows."""

    name: str
    title: str
    values: dict[int, float]
    thresholds: list[tuple[float, str]]
    notes: dict[int, str] = field(default_factory=dict)   # per operator: why (placement) or what (precision)

    def node_data(self, graph_id: str) -> dict:
        """The Model Explorer node-data document."""
        return {graph_id: {"results": {str(index): {"value": value} for index, value in self.values.items()},
                           "thresholds": [{"value": value, "bgColor": color} for value, color in self.thresholds]}}


def precision(graph: Graph) -> Overlay:
    """Bits of each operator's arithmetic: int4 (int4 weights), int8, int16 (int16x8), float16, float32."""
    values, notes = {}, {}
    for op in graph.operators:
        kind = op_type(op, graph)
        if any(graph.tensors[i].dtype == "int4" for i in op.inputs if i >= 0 and graph.tensors[i].is_constant):
            kind = "int4"
        values[op.index] = PRECISION_BITS.get(kind, 32)
        notes[op.index] = kind
    return Overlay("precision", "bits of each operator's arithmetic (4: int4 weights)", values, PRECISION_COLORS,
                   notes)


def edgetpu_placement(graph: Graph) -> Overlay:
    """1 for an operator the Edge TPU compiler maps, 0 for one on the CPU (the first that cannot run there
    and every one after it: the compiler cuts the graph once)."""
    values, notes, cut = {}, {}, None
    for op in graph.operators:
        why = op_blocker(op, graph) if cut is None else None
        if why:
            cut = op.index
            notes[op.index] = f"{why} — {fix_for(op, why)}"
        values[op.index] = 1 if cut is None else 0
        if cut is not None and op.index != cut:
            notes[op.index] = f"after the cut at operator {cut}"
    return Overlay("edgetpu", "Edge TPU: 1 mapped, 0 on the CPU", values, PLACED_COLORS, notes)


def gpu_placement(graph: Graph, readiness: GpuReadiness) -> Overlay:
    """1 for an operator in the GPU delegate's partition, 0 for one left on the CPU (with why)."""
    cpu = {row.index: row.reason for row in readiness.cpu_ops}
    values = {op.index: 0 if op.index in cpu else 1 for op in graph.operators}
    return Overlay("gpu", "GPU delegate: 1 delegated, 0 on the CPU", values, PLACED_COLORS, cpu)


def estimated_time(estimate) -> Overlay:
    """Estimated milliseconds of each operator on the device (``latency.estimate``'s per-operator rows)."""
    values = {row.index: round(row.ms, 6) for row in estimate.ops}
    top = max(values.values(), default=1.0) or 1.0
    thresholds = [(top * share, color) for share, color in ((0.1, "#1a9850"), (0.3, "#fee08b"), (1.0, "#d73027"))]
    notes = {row.index: f"{row.ms:.4f} ms on the {row.unit}, {row.bound}-bound" for row in estimate.ops}
    return Overlay("latency", f"estimated ms on {estimate.device}", values, thresholds, notes)



def layer_values(op_layers: dict[int, str], by_layer: dict[str, float], title: str, name: str,
                 thresholds: list[tuple[float, str]], notes_of) -> Overlay:
    """An overlay of per-layer figures spread onto the operators each layer became (``op_layers``)."""
    values = {index: by_layer[layer] for index, layer in op_layers.items() if layer in by_layer}
    notes = {index: notes_of(op_layers[index]) for index in values}
    return Overlay(name, title, values, thresholds, notes)


def int8_error(op_layers: dict[int, str], by_layer: dict[str, float]) -> Overlay:
    """Each operator's layer's int8 error from a sensitivity result (RMSE of the int8 output over its
    quantization scale: about 0.3 is rounding alone)."""
    top = max(by_layer.values(), default=1.0) or 1.0
    thresholds = [(top * share, color) for share, color in ((0.25, "#1a9850"), (0.5, "#fee08b"), (1.0, "#d73027"))]
    return layer_values(op_layers, by_layer, "int8 error of the operator's layer (sensitivity)", "int8_error",
                        thresholds, lambda layer: f"layer {layer}: int8 error {by_layer[layer]:.3g}")


def control_decisions(op_layers: dict[int, str], mixed: MixedPrecision) -> Overlay:
    """What accuracy control chose for each operator's layer: 32 kept in float, 16 raised to int16x8,
    8 raised from int4 to int8 weights, 0 left as quantized."""
    chosen = {**{layer: 8 for layer in mixed.int8_layers}, **{layer: 16 for layer in mixed.int16_layers},
              **{layer: 32 for layer in mixed.float_layers}}
    by_layer = {layer: float(chosen.get(layer, 0)) for layer in set(op_layers.values())}
    words = {32: "kept in float", 16: "raised to int16x8", 8: "raised to int8 weights", 0: "left quantized"}
    return layer_values(op_layers, by_layer, "accuracy control: 32 float, 16 int16x8, 8 int8 weights, 0 kept",
                        "accuracy_control", [(0, "#1a9850"), (8, "#91cf60"), (16, "#fee08b"), (32, "#d73027")],
                        lambda layer: f"layer {layer}: {words[int(by_layer[layer])]} by accuracy control")
