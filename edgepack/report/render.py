"""Turn a run result (a plain dict, as in report.json) into report.md and report.html."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from edgepack.report.svg import bar_chart, latency_chart


def _metric_text(result: dict, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 100:.2f}%" if result["metric"] in ("accuracy", "top5") else f"{value:.5g}"


def _latency_text(result: dict) -> str:
    latency = result.get("latency")
    if not latency:
        return "not measured"
    p50 = latency["latency_ms"]["p50"]
    how = f"estimated ({latency.get('estimate_source') or 'device profile'})" if latency.get("estimated") \
        else f"measured, {latency['runtime']['name']} {latency['runtime']['version']}"
    return f"{p50:.3f} ms p50 — {how}"


def key_figures(result: dict) -> list[tuple[str, str]]:
    """The figures a reader looks for first, as (label, text)."""
    drop = result.get("drop")
    unit = result.get("drop_unit") or ""
    return [
        ("verdict", "PASS" if result["passed"] else "FAIL"),
        ("device", result["device"]),
        (f"{result['metric']} (float model)", _metric_text(result, result.get("reference"))),
        (f"{result['metric']} (.tflite)", _metric_text(result, result.get("final"))),
        ("accuracy drop" if result["metric"] in ("accuracy", "top5") else f"{result['metric']} increase",
         "-" if drop is None else f"{drop:.3f} {unit}" + (" (the .tflite scores better)" if drop < 0 else "")),
        ("latency", _latency_text(result)),
        ("size", f"{result['size_bytes'] / 1024:.1f} KB (gzip {result['gzip_size_bytes'] / 1024:.1f} KB)"),
    ]


def accelerator_lines(result: dict) -> list[tuple[str, str]]:
    """(title, text) lines about the Edge TPU mapping and GPU delegation, where the device has one."""
    lines = []
    edgetpu = result.get("edgetpu")
    if edgetpu:
        prediction = edgetpu.get("prediction") or {}
        state = "every op maps" if prediction.get("ready") else "; ".join(prediction.get("reasons", [])[:3])
        lines.append(("Edge TPU prediction", f"{prediction.get('ops_mappable')} of {prediction.get('ops_total')} ops "
                                             f"on the Edge TPU — {state}"))
        if edgetpu.get("partition"):
            lines.append(("Edge TPU partition", edgetpu["partition"]))
        if edgetpu.get("compiler"):
            comparison = edgetpu.get("comparison") or {}
            lines.append(("edgetpu_compiler", f"version {edgetpu['compiler'].get('version')}: "
                                              f"{comparison.get('compiler_ops_on_edgetpu')} ops mapped "
                                              f"(prediction {'agrees' if comparison.get('agrees') else 'differs'})"))
        else:
            lines.append(("edgetpu_compiler", edgetpu.get("compiler_note", "not run")))
    if result.get("gpu"):
        lines.append(("GPU delegation (predicted)", result["gpu"]["summary"]))
    return lines


def mixed_lines(result: dict) -> tuple[str | None, list[tuple[str, str, str, str]]]:
    """The float-layer summary and the accuracy-control trace rows (layers kept float, float layers,
    drop, size), when quantize kept layers in float."""
    mixed = result.get("mixed_precision")
    if not mixed:
        return None, []
    control = mixed.get("control")
    if not control:
        return f"{len(mixed['float_layers'])} of {mixed['layers_total']} layers kept in float: " \
               f"{', '.join(mixed['float_layers']) or 'none'} (--float-ops)", []
    summary = (f"{len(control['float_layers'])} of {control['layers_total']} layers kept in float; "
               f"{result['metric']} drop {control['drop_before']:.2f} -> {control['drop_after']:.2f} "
               f"{control['drop_unit']} (max {control['max_drop']:g}, {'met' if control['met'] else 'NOT met'})")
    rows = [("+ " + (", ".join(step["kept_float"]) or "(full int8)"), str(len(step["float_layers"])),
             f"{step['drop']:.2f}", f"{step['size_bytes'] / 1024:.1f} KB") for step in control["trace"]]
    return summary, rows


def sensitivity_rows(result: dict, top: int = 10) -> list[tuple[str, str, str, str, str]]:
    """(layer, int8 error, drop if float, prune 90% drop, cluster 8 drop) for the most sensitive layers."""
    sensitivity = result.get("sensitivity")
    if not sensitivity:
        return []
    layers = {layer["layer"]: layer for layer in sensitivity["layers"]}

    def figure(value):
        return "-" if value is None else f"{value:.2f}"

    return [(name, figure(layers[name]["int8_error"]), figure(layers[name]["int8_drop_if_float"]),
             figure(layers[name]["prune_drop"].get("0.9")), figure(layers[name]["cluster_drop"].get("8")))
            for name in sensitivity["ranking"][:top]]


def _markdown_sections(result: dict) -> list[str]:
    lines = []
    summary, rows = mixed_lines(result)
    if summary:
        lines += ["", "## Layers kept in float", "", summary]
        if rows:
            lines += ["", "| step | float layers | drop | size |", "|---|---|---|---|"]
            lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    sens = sensitivity_rows(result)
    if sens:
        lines += ["", "## Per-layer sensitivity", "", "| layer | int8 error | drop if float | prune 90% | "
                  "cluster 8 |", "|---|---|---|---|---|"] + [f"| {' | '.join(row)} |" for row in sens]
    return lines


def render_markdown(result: dict) -> str:
    """report.md: the key figures, gates and stages as Markdown tables."""
    lines = [f"# edgepack report: {result['name']}", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in key_figures(result)]
    lines += ["", "## Gates", "", "| gate | threshold | value | verdict |", "|---|---|---|---|"]
    for gate in result["gates"]:
        value = "-" if gate["value"] is None else f"{gate['value']:.3f}"
        note = f" ({gate['note']})" if gate.get("note") else ""
        lines.append(f"| {gate['gate']} | {gate['threshold']} {gate['unit']} | {value}{note} | "
                     f"{'pass' if gate['passed'] else 'FAIL'} |")
    accelerators = accelerator_lines(result)
    if accelerators:
        lines += ["", "## Accelerator", ""] + [f"- **{title}**: {text}" for title, text in accelerators]
    lines += _markdown_sections(result)
    lines += ["", "## Stages", "", f"| stage | size | gzip | {result['metric']} | seconds |", "|---|---|---|---|---|"]
    for stage in result["stages"]:
        gzip = "-" if stage.get("gzip_size_bytes") is None else f"{stage['gzip_size_bytes'] / 1024:.1f} KB"
        lines.append(f"| {stage['name']} | {stage['size_bytes'] / 1024:.1f} KB | {gzip} | "
                     f"{_metric_text(result, stage.get('metric'))} | {stage['seconds']:.1f} |")
    lines += ["", f"Made by edgepack {result['provenance']['edgepack']} on {result['provenance']['created']}.", ""]
    return "\n".join(lines)


STYLE = """body{font-family:system-ui,sans-serif;max-width:900px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}
.pass{color:#1a7f37;font-weight:bold}.fail{color:#c0392b;font-weight:bold}figure{margin:1.5em 0}"""


def _gate_row(gate: dict) -> str:
    value = "-" if gate["value"] is None else f"{gate['value']:.3f}"
    note = f" ({escape(gate['note'])})" if gate.get("note") else ""
    verdict = "pass" if gate["passed"] else "fail"
    return (f"<tr><td>{escape(gate['gate'])}</td><td>{gate['threshold']} {escape(gate['unit'])}</td>"
            f"<td>{value}{note}</td><td class=\"{verdict}\">{verdict.upper() if verdict == 'fail' else verdict}</td></tr>")


def _accelerator_html(result: dict) -> str:
    lines = accelerator_lines(result)
    if not lines:
        return ""
    rows = "".join(f"<tr><th>{escape(title)}</th><td>{escape(text)}</td></tr>" for title, text in lines)
    return f'<h2>Accelerator</h2><table id="accelerator">{rows}</table>\n'


def _table(table_id: str, header: tuple, rows: list) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><tr>{head}</tr>{body}</table>'


def _sections_html(result: dict) -> str:
    parts = []
    summary, rows = mixed_lines(result)
    if summary:
        parts.append(f'<h2>Layers kept in float</h2><p id="mixed-summary">{escape(summary)}</p>')
        if rows:
            parts.append(_table("control-trace", ("step", "float layers", "drop", "size"), rows))
            parts.append("<figure>" + bar_chart(f"{result['metric']} drop after each step", [
                (row[0][:28], float(row[2]), row[2]) for row in rows], chart_id="trace", color="#c0392b") + "</figure>")
    sens = sensitivity_rows(result)
    if sens:
        parts.append("<h2>Per-layer sensitivity</h2>")
        parts.append(_table("sensitivity", ("layer", "int8 error", "drop if float", "prune 90%", "cluster 8"), sens))
        base = (result.get("sensitivity") or {}).get("int8_drop") or 0.0
        parts.append("<figure>" + bar_chart("int8 drop recovered by keeping the layer float (points)", [
            (row[0], max(base - float(row[2]), 0.0) if row[2] != "-" else 0.0, row[2]) for row in sens],
            chart_id="sensitivity-chart", color="#8e44ad") + "</figure>")
    return "\n".join(parts) + ("\n" if parts else "")


def render_html(result: dict) -> str:
    """report.html: one self-contained page with the key figures, gates, stages and three plots."""
    figures = "".join(f'<tr><th>{escape(k)}</th><td data-key="{escape(k)}">{escape(v)}</td></tr>'
                      for k, v in key_figures(result))
    gates = "".join(_gate_row(gate) for gate in result["gates"])
    stages = result["stages"]
    size_plot = bar_chart("Size per stage (gzip where known)", [
        (s["name"], s.get("gzip_size_bytes") or s["size_bytes"],
         f"{(s.get('gzip_size_bytes') or s['size_bytes']) / 1024:.1f} KB") for s in stages], chart_id="size")
    scored = [s for s in stages if s.get("metric") is not None]
    metric_plot = bar_chart(f"{result['metric']} per stage", [
        (s["name"], s["metric"], _metric_text(result, s["metric"])) for s in scored],
        chart_id="metric", color="#2e9b5f")
    latency = result.get("latency")
    latency_plot = latency_chart(latency["latency_ms"], estimated=latency.get("estimated", False)) if latency else ""
    verdict = "pass" if result["passed"] else "fail"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgepack report: {escape(result['name'])}</title>
<style>{STYLE}</style></head><body>
<h1>edgepack report: {escape(result['name'])}</h1>
<p class="{verdict}" id="verdict">{'PASS' if result['passed'] else 'FAIL'}: {escape(result.get('summary', ''))}</p>
<table id="figures">{figures}</table>
<h2>Gates</h2><table id="gates"><tr><th>gate</th><th>threshold</th><th>value</th><th>verdict</th></tr>{gates}</table>
{_accelerator_html(result)}{_sections_html(result)}<h2>Plots</h2>
<figure>{latency_plot}</figure><figure>{size_plot}</figure><figure>{metric_plot}</figure>
<h2>Result</h2><details><summary>report.json</summary><pre>{escape(json.dumps(result, indent=2))}</pre></details>
</body></html>
"""


def write_reports(folder: Path, result: dict) -> list[Path]:
    """Write report.json, report.md and report.html into ``folder``."""
    paths = [folder / "report.json", folder / "report.md", folder / "report.html"]
    paths[0].write_text(json.dumps(result, indent=2, default=str) + "\n")
    paths[1].write_text(render_markdown(result))
    paths[2].write_text(render_html(result))
    return paths
