"""The report's per-layer section: one table row per Keras layer, and a compact sparsity chart.

Drawn only when the run result has ``layers`` (:class:`~edgepack.inspection.per_layer.LayerRow`: the
Keras layer, its class, parameters, kernel sparsity and distinct values in the model that was converted,
and the .tflite operators made from it with their type and Edge TPU / GPU placement); the section is
left out otherwise. The sensitivity columns come from the result's ``sensitivity`` (matched on the
layer name) and the accuracy-control column from its ``mixed_precision`` (``float_layers``, the
``int16_layers`` and the control's ``trace``); each column appears only when its data is there.
"""

from __future__ import annotations

from html import escape

from edgepack.inspection.per_layer import LayerRow, OpRow
from edgepack.quantization.mixed import MixedPrecision
from edgepack.report.page import table
from edgepack.report.result import RunResult
from edgepack.report.svg import bar_chart


def _edgetpu(ops: list[OpRow]) -> str | None:
    return _mapping([op.edgetpu for op in ops])


def _gpu(ops: list[OpRow]) -> str | None:
    return _mapping([op.gpu for op in ops])


def _mapping(placed: list[bool | None]) -> str | None:
    """yes / no / partly (k of n ops) over the operators with a placement (None: no accelerator of that kind)."""
    flags = [flag for flag in placed if flag is not None]
    if not flags:
        return None
    if all(flags):
        return "yes"
    if not any(flags):
        return "no"
    return f"partly ({sum(flags)} of {len(flags)} ops)"


def _ops_text(ops: list[OpRow]) -> str:
    return ", ".join(f"{op.op} {op.type}" for op in ops) or "(none: folded)"


def _control_text(name: str, mixed: MixedPrecision) -> str:
    wide = name in mixed.int16_layers
    if name not in mixed.float_layers and not wide:
        return "quantized"
    trace = mixed.control.trace if mixed.control else []
    step = next((i for i, s in enumerate(trace) if name in s.kept_float and (s.precision == "int16x8") == wide), None)
    kept = "int16x8" if wide else "kept float"
    return kept + (f" (step {step})" if step else " (--float-ops)" if not trace else "")


def _figure(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def layer_table(result: RunResult) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the per-layer table, or ([], []) when the result has no ``layers``."""
    layers = result.layers or []
    if not layers:
        return [], []
    sensitivity = {s.layer: s for s in result.sensitivity.layers} if result.sensitivity else {}
    mixed = result.mixed_precision
    edgetpu = any(_edgetpu(layer.ops) for layer in layers)
    gpu = any(_gpu(layer.ops) for layer in layers)
    header = ["layer", "class", "params", "sparsity", "distinct values", "ops (type)"]
    header += ["Edge TPU"] * edgetpu + ["GPU delegate"] * gpu
    header += ["int8 error", "drop if float"] * bool(sensitivity) + ["accuracy control"] * bool(mixed)
    rows = []
    for layer in layers:
        row = [layer.name, layer.layer_class or "-", _figure(layer.params, ","),
               "-" if layer.sparsity is None else f"{layer.sparsity * 100:.1f}%", _figure(layer.distinct_values, ","),
               _ops_text(layer.ops)]
        row += [_edgetpu(layer.ops) or "-"] * edgetpu + [_gpu(layer.ops) or "-"] * gpu
        if sensitivity:
            entry = sensitivity.get(layer.name)
            row += [_figure(entry and entry.int8_error, ".3f"), _figure(entry and entry.int8_drop_if_float, ".2f")]
        if mixed:
            row.append(_control_text(layer.name, mixed))
        rows.append(row)
    return header, rows


def layers_html(result: RunResult) -> str:
    """The "Per layer" section (heading, table, sparsity chart), or "" when there is no ``layers``."""
    header, rows = layer_table(result)
    if not rows:
        return ""
    layers: list[LayerRow] = result.layers or []
    attrs = [f'data-layer="{escape(layer.name)}" data-sparsity="{_figure(layer.sparsity, ".6g")}"' for layer in layers]
    numeric = {header.index(h) for h in ("params", "sparsity", "distinct values", "int8 error", "drop if float")
               if h in header}
    parts = ["<h2>Per layer</h2>", table("layers", tuple(header), rows, numeric=numeric, row_header=True,
                                        css_class="wide", row_attrs=attrs)]
    sparse = [(layer.name, layer.sparsity, f"{layer.sparsity * 100:.1f}%") for layer in layers
              if layer.sparsity is not None]
    if sparse:
        chart = bar_chart("Sparsity per layer (share of kernel weights that are 0; full bar = 100%)", sparse,
                          chart_id="layer-sparsity", color="#5b8c5a", top=1.0)
        parts.append(f"<figure>{chart}</figure>")
    return "\n".join(parts) + "\n"


def layers_markdown(result: RunResult) -> list[str]:
    """The "Per layer" section as Markdown lines ([] when there is no ``layers``)."""
    header, rows = layer_table(result)
    if not rows:
        return []
    return ["", "## Per layer", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + \
        ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
