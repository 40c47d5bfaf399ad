"""The report's per-layer section: one table row per Keras layer, and a compact sparsity chart.

Drawn only when the run result (report.json) has a ``layers`` list; the section is left out
otherwise. The shape this module reads (every key but ``name`` may be missing or null)::

    "layers": [                      # one entry per Keras layer, in model order
      {"name": "conv2d",             # the Keras layer name: joins the sensitivity and accuracy-control results
       "class": "Conv2D",            # the Keras class
       "params": 320,                # parameters (all weights of the layer)
       "sparsity": 0.5,              # share of kernel weights exactly 0 in the model that was converted
                                     # (the last Keras stage); null for a layer without a kernel
       "distinct_values": 16,        # distinct kernel values in that model; null without a kernel
       "ops": [                      # the .tflite operators made from the layer ([] when folded into another)
         {"index": 0,                # operator index in the main subgraph
          "op": "CONV_2D",           # builtin (or custom) operator name
          "type": "int8",            # int8 | int16 (int16x8) | float32 | float16 | hybrid (int8 weights, float math)
          "edgetpu": true,           # runs on the Edge TPU (before the partition); null: not an Edge TPU device
          "gpu": null}]}]            # inside the GPU delegate's partition; null: not a GPU device

The sensitivity columns come from ``result["sensitivity"]["layers"]`` (matched on ``layer`` =
``name``) and the accuracy-control column from ``result["mixed_precision"]`` (``float_layers`` and
``control.trace``); each column appears only when its data is there.
"""

from __future__ import annotations

from html import escape

from edgepack.report.page import table
from edgepack.report.svg import bar_chart


def _mapping(ops: list[dict], key: str) -> str | None:
    flags = [op.get(key) for op in ops if op.get(key) is not None]
    if not flags:
        return None
    if all(flags):
        return "yes"
    if not any(flags):
        return "no"
    return f"partly ({sum(flags)} of {len(flags)} ops)"


def _ops_text(ops: list[dict]) -> str:
    return ", ".join(f"{op.get('op', '?')} {op.get('type') or '?'}" for op in ops) or "(none: folded)"


def _control_text(name: str, mixed: dict) -> str:
    wide = name in (mixed.get("int16_layers") or [])
    if name not in (mixed.get("float_layers") or []) and not wide:
        return "quantized"
    trace = (mixed.get("control") or {}).get("trace") or []
    step = next((i for i, s in enumerate(trace) if name in (s.get("kept_float") or [])
                 and (s.get("precision") == "int16x8") == wide), None)
    kept = "int16x8" if wide else "kept float"
    return kept + (f" (step {step})" if step else " (--float-ops)" if not trace else "")


def _figure(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def layer_table(result: dict) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the per-layer table, or ([], []) when the result has no ``layers``."""
    layers = [layer for layer in result.get("layers") or [] if isinstance(layer, dict) and layer.get("name")]
    if not layers:
        return [], []
    sensitivity = {s["layer"]: s for s in (result.get("sensitivity") or {}).get("layers", [])}
    mixed = result.get("mixed_precision")
    edgetpu = any(_mapping(layer.get("ops") or [], "edgetpu") for layer in layers)
    gpu = any(_mapping(layer.get("ops") or [], "gpu") for layer in layers)
    header = ["layer", "class", "params", "sparsity", "distinct values", "ops (type)"]
    header += ["Edge TPU"] * edgetpu + ["GPU delegate"] * gpu
    header += ["int8 error", "drop if float"] * bool(sensitivity) + ["accuracy control"] * bool(mixed)
    rows = []
    for layer in layers:
        ops = layer.get("ops") or []
        sparsity = layer.get("sparsity")
        row = [layer["name"], layer.get("class") or "-", _figure(layer.get("params"), ","),
               "-" if sparsity is None else f"{sparsity * 100:.1f}%", _figure(layer.get("distinct_values"), ","),
               _ops_text(ops)]
        row += [_mapping(ops, "edgetpu") or "-"] * edgetpu + [_mapping(ops, "gpu") or "-"] * gpu
        if sensitivity:
            entry = sensitivity.get(layer["name"]) or {}
            row += [_figure(entry.get("int8_error"), ".3f"), _figure(entry.get("int8_drop_if_float"), ".2f")]
        if mixed:
            row.append(_control_text(layer["name"], mixed))
        rows.append(row)
    return header, rows


def layers_html(result: dict) -> str:
    """The "Per layer" section (heading, table, sparsity chart), or "" when there is no ``layers``."""
    header, rows = layer_table(result)
    if not rows:
        return ""
    layers = [layer for layer in result["layers"] if isinstance(layer, dict) and layer.get("name")]
    attrs = [f'data-layer="{escape(layer["name"])}" data-sparsity="{_figure(layer.get("sparsity"), ".6g")}"'
             for layer in layers]
    numeric = {header.index(h) for h in ("params", "sparsity", "distinct values", "int8 error", "drop if float")
               if h in header}
    parts = ["<h2>Per layer</h2>", table("layers", tuple(header), rows, numeric=numeric, row_header=True,
                                        css_class="wide", row_attrs=attrs)]
    sparse = [(layer["name"], layer["sparsity"], f"{layer['sparsity'] * 100:.1f}%") for layer in layers
              if layer.get("sparsity") is not None]
    if sparse:
        chart = bar_chart("Sparsity per layer (share of kernel weights that are 0; full bar = 100%)", sparse,
                          chart_id="layer-sparsity", color="#5b8c5a", top=1.0)
        parts.append(f"<figure>{chart}</figure>")
    return "\n".join(parts) + "\n"


def layers_markdown(result: dict) -> list[str]:
    """The "Per layer" section as Markdown lines ([] when there is no ``layers``)."""
    header, rows = layer_table(result)
    if not rows:
        return []
    return ["", "## Per layer", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + \
        ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
