"""Turn a run result (:class:`~edgepack.report.result.RunResult`, what report.json holds) into report.md
and report.html.

report.html is one self-contained page (inline CSS, static SVG, no script): key figures, gates,
the charts of :mod:`edgepack.report.charts`, the stages, the per-layer section of
:mod:`edgepack.report.layers` when the result has ``layers``, and the result itself.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from edgepack.inspection.result import DeviceFigures
from edgepack.latency.result import LatencyResult
from edgepack.report.charts import is_percent, latency_figure, metric_chart, metric_gate, size_figure
from edgepack.report.device import device_figure, device_rows, kb
from edgepack.report.layers import layers_html, layers_markdown
from edgepack.report.page import key_value_table, page, table
from edgepack.report.result import GateVerdict, RunResult
from edgepack.report.svg import bar_chart
from edgepack.steps.artifacts import StageSummary


LATENCY_HERE = "latency (build machine, 1 thread, 1 row)"
METRIC_NAMES = {"accuracy": "Accuracy", "top5": "Top-5 accuracy", "mae": "Mean absolute error",
                "mse": "Mean squared error"}

def metric_text(metric: str, value: float | None) -> str:
    """A metric value as the reports show it: accuracy/top5 in percent, others with 5 digits."""
    if value is None:
        return "-"
    return f"{value * 100:.2f}%" if is_percent(metric) else f"{value:.5g}"


def latency_text(latency: LatencyResult | None) -> str:
    """The p50 and how it was obtained: estimated (from what) or measured (runtime, where it ran)."""
    if latency is None:
        return "not measured"
    how = f"estimated ({latency.estimate_source or 'device profile'})" if latency.estimated \
        else f"measured, {latency.runtime.name} {latency.runtime.version}{_ran_on(latency)}"
    return f"{latency.latency_ms.p50:.3f} ms p50 — {how}"


def _ran_on(latency: LatencyResult) -> str:
    """Where a measured latency ran: the accelerator (and delegate), here or on which host."""
    runtime = latency.runtime
    accelerator = (runtime.accelerator or "").upper()
    delegate = f" ({runtime.delegate})" if runtime.delegate else ""
    where = f" on {latency.host}" if latency.host else " here" if latency.where == "local" else ""
    return f", ran on the {accelerator}{delegate}{where}" if accelerator else ""


def key_figures(result: RunResult) -> list[tuple[str, str]]:
    """The figures a reader looks for first, as (label, text)."""
    drop, unit = result.drop, result.drop_unit or ""
    return [
        ("verdict", "PASS" if result.passed else "FAIL"),
        ("device", result.device),
        (f"{result.metric} (float model)", metric_text(result.metric, result.reference)),
        (f"{result.metric} (.tflite)", metric_text(result.metric, result.final)),
        ("accuracy drop" if is_percent(result.metric) else f"{result.metric} increase",
         "-" if drop is None else f"{drop:.3f} {unit}" + (" (the .tflite scores better)" if drop < 0 else "")),
        ("latency", latency_text(result.latency)),
        ("size", f"{result.size_bytes / 1024:.1f} KB (gzip {result.gzip_size_bytes / 1024:.1f} KB)"),
        *_device_figures(result.figures),
        *_trained_on(result.stages),
        *_float_ops(result.float_ops),
    ]


def _float_ops(float_ops: list[str]) -> list[tuple[str, str]]:
    """The int8 conversion's warning: operators left computing in float."""
    if not float_ops:
        return []
    shown = ", ".join(float_ops[:8]) + (" ..." if len(float_ops) > 8 else "")
    return [("warning: left in float by int8", f"{len(float_ops)} operator(s): {shown} (no int8 kernel; they run in "
                                               f"float between DEQUANTIZE and QUANTIZE)")]


def _trained_on(stages: list[StageSummary]) -> list[tuple[str, str]]:
    """Where the fine-tuning steps ran (none when no step trained)."""
    places: dict[str, list[str]] = {}
    for stage in stages:
        if stage.trained_on:
            places.setdefault(stage.trained_on, []).append(stage.name)
    return [("trained on", "; ".join(f"{place} ({', '.join(names)})" for place, names in places.items()))] \
        if places else []


def _device_figures(figures: DeviceFigures | None) -> list[tuple[str, str]]:
    """The final model's flash, RAM and MACs as key figures (none for an older report)."""
    if figures is None:
        return []
    peak, macs = figures.peak_memory_mb, figures.macs
    return [("flash (.tflite bytes)", kb(figures.flash_bytes)),
            ("RAM (tensor arena)", kb(figures.arena_bytes)
             + ("" if peak is None else f"; process peak {peak:.1f} MB measured")),
            ("MACs", "-" if macs is None else f"{macs:,}")]


def accelerator_lines(result: RunResult) -> list[tuple[str, str]]:
    """(title, text) lines about the Edge TPU mapping and GPU delegation, where the device has one."""
    lines = []
    edgetpu = result.edgetpu
    if edgetpu is not None:
        prediction = edgetpu.prediction
        state = "every op maps" if prediction.ready else "; ".join(prediction.reasons[:3])
        lines.append(("Edge TPU prediction", f"{prediction.ops_mappable} of {prediction.ops_total} ops "
                                             f"on the Edge TPU — {state}"))
        if edgetpu.partition:
            lines.append(("Edge TPU partition", edgetpu.partition))
        if edgetpu.compiler is not None:
            comparison = edgetpu.comparison
            mapped = comparison.compiler_ops_on_edgetpu if comparison else None
            agrees = "agrees" if comparison and comparison.agrees else "differs"
            lines.append(("edgetpu_compiler", f"version {edgetpu.compiler.version}: {mapped} ops mapped "
                                              f"(prediction {agrees})"))
        else:
            lines.append(("edgetpu_compiler", edgetpu.compiler_note or "not run"))
    if result.gpu is not None:
        lines.append(("GPU delegation (predicted)", result.gpu.summary))
    return lines


FIXES_SHOWN = 12


def fix_rows(result: RunResult) -> list[tuple[str, str, str, str, str]]:
    """(accelerator, operator, Keras layer, why, what to change) for each fallback of the device's
    accelerator; the first FIXES_SHOWN, then one row saying how many more report.json holds."""
    fixes = result.fixes()
    names = {"edgetpu": "Edge TPU", "gpu": "GPU"}
    rows = [(names[fix.target], f"{fix.index} {fix.op}", fix.layer or "-", fix.reason, fix.fix)
            for fix in fixes[:FIXES_SHOWN]]
    if len(fixes) > FIXES_SHOWN:
        rows.append(("", f"and {len(fixes) - FIXES_SHOWN} more", "", "", "in report.json"))
    return rows


def mixed_lines(result: RunResult) -> tuple[str | None, list[tuple[str, str, str, str, str]]]:
    """The float-layer summary and the accuracy-control trace rows (layers kept float, float layers,
    drop, size, single-row latency on the build machine), when quantize kept layers in float."""
    mixed = result.mixed_precision
    if mixed is None:
        return None, []
    control = mixed.control
    if control is None:
        return f"{len(mixed.float_layers)} of {mixed.layers_total} layers kept in float: " \
               f"{', '.join(mixed.float_layers) or 'none'} (--float-ops)", []
    wide = control.int16_layers
    summary = ((f"{len(wide)} in int16x8 ({', '.join(wide)}), " if wide else "") +
               f"{len(control.float_layers)} of {control.layers_total} layers kept in float; "
               f"{result.metric} drop {control.drop_before:.2f} -> {control.drop_after:.2f} "
               f"{control.drop_unit} (max {control.max_drop:g}, {'met' if control.met else 'NOT met'})")
    rows = [("+ " + (", ".join(step.kept_float) or "(full int8)") + _rung(step), str(len(step.float_layers)),
             f"{step.drop:.2f}", f"{step.size_bytes / 1024:.1f} KB",
             "-" if step.latency_ms is None else f"{step.latency_ms:.3f} ms") for step in control.trace]
    return summary, rows


def _rung(step) -> str:
    return f" to {step.precision}" if step.precision != "float" and step.kept_float else ""


def sensitivity_rows(result: RunResult, top: int = 10) -> list[tuple[str, str, str, str, str]]:
    """(layer, int8 error, drop if float, prune 90% drop, cluster 8 drop) for the most sensitive layers."""
    sensitivity = result.sensitivity
    if sensitivity is None:
        return []
    layers = {layer.layer: layer for layer in sensitivity.layers}

    def figure(value):
        return "-" if value is None else f"{value:.2f}"

    return [(name, figure(layers[name].int8_error), figure(layers[name].int8_drop_if_float),
             figure(layers[name].prune_drop.get("0.9")), figure(layers[name].cluster_drop.get("8")))
            for name in sensitivity.ranking[:top] if name in layers]


def _markdown_sections(result: RunResult) -> list[str]:
    lines = []
    summary, rows = mixed_lines(result)
    if summary:
        lines += ["", "## Layers kept in float", "", summary]
        if rows:
            lines += ["", f"| step | float layers | drop | size | {LATENCY_HERE} |", "|---|---|---|---|---|"]
            lines += ["| " + " | ".join(row) + " |" for row in rows]
    sens = sensitivity_rows(result)
    if sens:
        lines += ["", "## Per-layer sensitivity", "", "| layer | int8 error | drop if float | prune 90% | "
                  "cluster 8 |", "|---|---|---|---|---|"] + [f"| {' | '.join(row)} |" for row in sens]
    return lines + layers_markdown(result)


def stage_rows(result: RunResult) -> list[tuple[str, str, str, str, str, str]]:
    """(stage, format, size, gzip, metric, seconds) per stage, as text."""
    return [(stage.name, stage.format, f"{stage.size_bytes / 1024:.1f} KB",
             "-" if stage.gzip_size_bytes is None else f"{stage.gzip_size_bytes / 1024:.1f} KB",
             metric_text(result.metric, stage.metric), f"{stage.seconds:.1f}") for stage in result.stages]


def _gate_cells(gate: GateVerdict) -> tuple[str, str, str, str]:
    value = "-" if gate.value is None else f"{gate.value:.3f}"
    note = f" ({gate.note})" if gate.note else ""
    return gate.gate, f"{gate.threshold:g} {gate.unit}", value + note, "pass" if gate.passed else "FAIL"


def explorer_command(result: RunResult) -> str | None:
    """The command that opens the bundled model with its node-data files (run inside the bundle)."""
    files = result.explorer
    return f"model-explorer model.tflite --node_data_paths={','.join(files)}" if files else None


def _explorer_markdown(result: RunResult) -> list[str]:
    command = explorer_command(result)
    if command is None:
        return []
    links = ", ".join(f"[{Path(path).stem}]({path})" for path in result.explorer)
    return ["", "## Graph view (Model Explorer)", "", f"Node data for `model.tflite`: {links}. In this folder:", "",
            f"    {command}", "", "(`pip install 'edgepack[explore]'`; or `edgepack explore --bundle DIR --open`)."]


def _explorer_html(result: RunResult) -> str:
    command = explorer_command(result)
    if command is None:
        return ""
    links = ", ".join(f'<a href="{escape(path)}">{escape(Path(path).stem)}</a>' for path in result.explorer)
    return (f'<h2>Graph view (Model Explorer)</h2><p id="explorer">Node data for model.tflite: {links}. '
            f"Open them in this folder with <code>{escape(command)}</code> "
            f"(<code>pip install 'edgepack[explore]'</code>), or <code>edgepack explore --bundle DIR --open</code>."
            f"</p>\n")


def render_markdown(result: RunResult) -> str:
    """report.md: the key figures, gates and stages as Markdown tables."""
    lines = [f"# edgepack report: {result.name}", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in key_figures(result)]
    lines += ["", "## Gates", "", "| gate | threshold | value | verdict |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(_gate_cells(gate)) + " |" for gate in result.gates]
    accelerators = accelerator_lines(result)
    if accelerators:
        lines += ["", "## Accelerator", ""] + [f"- **{title}**: {text}" for title, text in accelerators]
    if fix_rows(result):
        lines += ["", "### Fix-it: operators that fall back to the CPU", "",
                  "| accelerator | operator | Keras layer | why | what to change |", "|---|---|---|---|---|"]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in fix_rows(result)]
    lines += _markdown_sections(result)
    lines += ["", "## Stages", "", f"| stage | format | size | gzip | {result.metric} | seconds |",
              "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in stage_rows(result)]
    if len({"tflite" in stage.format for stage in result.stages}) > 1:
        lines += ["", "gzip sizes of a Keras file and of a .tflite are not like for like (different formats)."]
    if any(stage.device for stage in result.stages):
        lines += ["", "## What the device pays", "", "| stage | flash | RAM | MACs | latency |", "|---|---|---|---|---|"]
        lines += ["| " + " | ".join(row) + " |" for row in device_rows(result.stages)]
    lines += _explorer_markdown(result)
    lines += ["", f"Made by edgepack {result.provenance.edgepack} on {result.provenance.created}.", ""]
    return "\n".join(lines)


def _gates_html(result: RunResult) -> str:
    rows = []
    for gate in result.gates:
        name, threshold, value, verdict = _gate_cells(gate)
        rows.append(f'<tr><th scope="row">{escape(name)}</th><td>{escape(threshold)}</td><td>{escape(value)}</td>'
                    f'<td class="{verdict.lower()}">{verdict}</td></tr>')
    head = "".join(f'<th scope="col">{h}</th>' for h in ("gate", "threshold", "value", "verdict"))
    return (f'<h2>Gates</h2><table id="gates" class="keep"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _accelerator_html(result: RunResult) -> str:
    lines = accelerator_lines(result)
    if not lines:
        return ""
    fixes = fix_rows(result)
    fix_table = ("<h3>Fix-it: operators that fall back to the CPU</h3>" + table(
        "fixes", ("accelerator", "operator", "Keras layer", "why", "what to change"), fixes) if fixes else "")
    return "<h2>Accelerator</h2>" + key_value_table("accelerator", lines, data_key=False) + fix_table + "\n"


def _sections_html(result: RunResult) -> str:
    parts = []
    summary, rows = mixed_lines(result)
    if summary:
        parts.append(f'<h2>Layers kept in float</h2><p id="mixed-summary">{escape(summary)}</p>')
        if rows:
            parts.append(table("control-trace", ("step", "float layers", "drop", "size", LATENCY_HERE), rows,
                               numeric={1, 2, 3, 4}))
            parts.append("<figure>" + bar_chart(f"{result.metric} drop after each step", [
                (row[0][:28], float(row[2]), row[2]) for row in rows], chart_id="trace", color="#c0392b") + "</figure>")
    sens = sensitivity_rows(result)
    if sens:
        parts.append("<h2>Per-layer sensitivity</h2>")
        parts.append(table("sensitivity", ("layer", "int8 error", "drop if float", "prune 90%", "cluster 8"), sens,
                           numeric={1, 2, 3, 4}, row_header=True))
        base = (result.sensitivity.int8_drop if result.sensitivity else None) or 0.0
        parts.append("<figure>" + bar_chart("int8 drop recovered by keeping the layer float (points)", [
            (row[0], max(base - float(row[2]), 0.0) if row[2] != "-" else 0.0, row[2]) for row in sens],
            chart_id="sensitivity-chart", color="#8e44ad") + "</figure>")
    return "\n".join(parts) + ("\n" if parts else "")


def _metric_figure(result: RunResult) -> str:
    if not any(stage.metric is not None for stage in result.stages):
        return '<p class="no-chart" id="metric-none">No stage was scored.</p>'
    zero = " (it starts at 0 only when a value is at or below 50%)" if is_percent(result.metric) else ""
    gate = "; the dashed line is the accuracy gate" if metric_gate(result) is not None else ""
    caption = f"One dot per scored stage. The axis is fitted to the values{zero}, so small differences show{gate}."
    return f"<figure>{metric_chart(result)}<figcaption>{caption}</figcaption></figure>"


def _charts_html(result: RunResult) -> str:
    metric = METRIC_NAMES.get(result.metric, result.metric)
    return (f"<h2>Charts</h2>\n<h3>Latency</h3>\n{latency_figure(result.latency)}\n"
            f"<h3>{escape(metric)} per stage</h3>\n{_metric_figure(result)}\n"
            f"<h3>What the device pays</h3>\n{device_figure(result.stages)}\n"
            f"<h3>Size per stage</h3>\n{size_figure(result.stages)}\n")


def _shown_result(result: RunResult) -> str:
    """The result as the page prints it: the latency samples (thousands of numbers) replaced by a note."""
    shown = result.model_dump(mode="json")
    samples = result.latency.latency_ms.samples_ms if result.latency else None
    if samples:
        shown["latency"]["latency_ms"]["samples_ms"] = f"{len(samples)} values (in report.json; drawn above)"
    return json.dumps(shown, indent=2)


def render_html(result: RunResult) -> str:
    """report.html: one self-contained page with the key figures, gates, charts, stages and layers."""
    verdict = "pass" if result.passed else "fail"
    stages = table("stages", ("stage", "format", "size", "gzip", result.metric, "seconds"), stage_rows(result),
                   numeric={2, 3, 4, 5}, row_header=True)
    body = (f"<h1>edgepack report: {escape(result.name)}</h1>\n"
            f'<p class="{verdict}" id="verdict">{verdict.upper()}: {escape(result.summary)}</p>\n'
            f'{key_value_table("figures", key_figures(result))}\n{_gates_html(result)}\n{_accelerator_html(result)}'
            f"{_charts_html(result)}<h2>Stages</h2>\n{stages}\n{layers_html(result)}{_sections_html(result)}"
            f"{_explorer_html(result)}"
            f"<h2>Result</h2><details><summary>report.json</summary><pre>"
            f"{escape(_shown_result(result))}</pre></details>\n"
            f'<p class="muted">Made by edgepack {escape(result.provenance.edgepack)} on '
            f'{escape(result.provenance.created)}.</p>')
    return page(f"edgepack report: {result.name}", body)


def write_reports(folder: Path, result: RunResult) -> list[Path]:
    """Write report.json, report.md and report.html into ``folder``."""
    paths = [folder / "report.json", folder / "report.md", folder / "report.html"]
    paths[0].write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")
    paths[1].write_text(render_markdown(result), encoding="utf-8")
    paths[2].write_text(render_html(result), encoding="utf-8")
    return paths
