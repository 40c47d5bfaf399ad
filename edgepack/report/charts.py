"""The report's charts, each drawn so that it cannot mislead (static SVG, see :mod:`edgepack.report.svg`).

- Latency: a histogram of the timed runs (``latency.latency_ms.samples_ms``) on a log axis when the
  slowest run is more than 20x the fastest, with p50/p90/p99 drawn as labelled vertical lines. Without
  samples there is no distribution to draw: the page says so and shows only the recorded percentiles
  on a strip; an estimate (one figure) gets a sentence, not a chart.
- Metric per stage: dots (not bars) on an axis fitted to the values, so 97.3% and 97.8% look
  different; the axis starts at zero only when some value is at or below 50%. The accuracy gate
  (reference minus ``max_accuracy_drop``) is a dashed, labelled line.
- Size per stage: bars from zero, each labelled with its format (Keras file or .tflite) and coloured by it.
"""

from __future__ import annotations

import math
from html import escape

import numpy as np

from edgepack.latency.result import LatencyResult, LatencyStats
from edgepack.report.result import RunResult
from edgepack.steps.artifacts import StageSummary
from edgepack.report.svg import (GATE, INK, MUTED, WIDTH, Axis, LOG_SPAN, log_range, padded_range, svg_open,
                                 x_axis)

LATENCY_COLOR, METRIC_COLOR, TFLITE_COLOR, KERAS_COLOR = "#d8813b", "#2e9b5f", "#3b7dd8", "#9aa7b8"
MARKERS = (("p50", "#1f3b73"), ("p90", "#8e44ad"), ("p99", GATE))
RANGE_MARKERS = (("min", MUTED), *MARKERS, ("max", MUTED))
LEFT, RIGHT = 48, 24
PERCENT_METRICS = ("accuracy", "top5")


def latency_bins(samples: list[float], *, log: bool | None = None):
    """(counts, edges, log) of the histogram the latency chart draws.

    ``log`` None picks a log scale when min > 0 and max/min > 20. The bin count is sqrt(n) held
    between 8 and 40 (on a log scale at least 30 a decade, at most 60); the edges are evenly spaced
    from min to max (``numpy.histogram(samples, bins)``'s) on a linear scale and geometric on a log one.
    """
    values = np.asarray(samples, dtype=np.float64)
    lo, hi = float(values.min()), float(values.max())
    if log is None:
        log = lo > 0 and hi / lo > LOG_SPAN
    log = bool(log) and lo > 0  # a log axis cannot hold a zero
    if hi <= lo:  # every run took the same time
        lo, hi = (lo * 0.95, hi * 1.05) if lo > 0 else (lo - 1e-3, hi + 1e-3)
    bins = int(min(40, max(8, math.ceil(math.sqrt(values.size)))))
    if log:  # about 30 bins a decade, so a tight peak next to a far outlier still gets several bins
        bins = int(min(60, max(bins, math.ceil(30 * math.log10(hi / lo)))))
    counts, edges = np.histogram(values, bins=np.geomspace(lo, hi, bins + 1) if log else np.linspace(lo, hi, bins + 1))
    return counts.tolist(), edges.tolist(), log


def latency_axis(lo: float, hi: float, log: bool, start: float, end: float) -> Axis:
    """The latency x axis over ``lo``..``hi`` ms: 1-2-5 ends on a log scale, a little room on a linear one."""
    if log and lo > 0:
        return Axis(*log_range(lo, hi), start, end, log=True)
    return Axis(*padded_range([lo, hi], pad=0.04, floor=0.0), start, end)


def _markers(axis: Axis, values: dict[str, float], first_row: float, bottom: float,
             which: tuple = MARKERS) -> list[str]:
    """Dashed vertical lines at p50/p90/p99 (``which``), labels stacked one row each above the plot."""
    parts = []
    shown = [(stat, color) for stat, color in which if values.get(stat) is not None]
    for row, (stat, color) in enumerate(shown):
        value = values[stat]
        if not axis.lo <= value <= axis.hi:
            continue
        x, y = axis.at(value), first_row + row * 13
        anchor, dx = ("end", -4) if x > axis.end - 90 else ("start", 4)
        parts.append(f'<line class="marker" data-stat="{stat}" data-value="{value:.6g}" x1="{x:.2f}" x2="{x:.2f}" '
                     f'y1="{y - 9:.1f}" y2="{bottom:.1f}" stroke="{color}" stroke-width="2" '
                     f'stroke-dasharray="5 3"><title>{stat} {value:.4g} ms</title></line>')
        parts.append(f'<text class="marker-label" x="{x + dx:.1f}" y="{y:.1f}" '
                     f'text-anchor="{anchor}" font-size="11" font-weight="bold" fill="{color}">'
                     f'{stat} {value:.4g} ms</text>')
    return parts


def latency_histogram(latency: LatencyStats, *, estimated: bool, chart_id: str = "latency", width: int = WIDTH,
                      domain: tuple[float, float] | None = None, log: bool | None = None) -> str:
    """The histogram of ``latency.samples_ms`` (at least 2 samples) with p50/p90/p99 lines.

    The percentiles are computed from the samples drawn (as the probe computes them), so the lines
    and the bars always agree. ``domain``/``log`` fix the axis (small multiples share one); the
    bins still span this chart's own runs.
    """
    samples = [float(v) for v in latency.samples_ms or []]
    counts, edges, log = latency_bins(samples, log=log)
    top, bottom, height = 74, 214, 266
    axis = latency_axis(*(domain or (edges[0], edges[-1])), log, LEFT, width - RIGHT)
    peak = max(counts) or 1
    stats = {f"p{p}": float(np.percentile(samples, p)) for p in (50, 90, 99)}
    runs = latency.count or len(samples)
    kept = f"{len(samples)} runs" if runs <= len(samples) else f"{len(samples)} of {runs} runs"
    title = f"Latency distribution ({'estimated' if estimated else 'measured'}, {kept})"
    label = (f"{title}: histogram of {len(samples)} timed runs on a {'log' if log else 'linear'} axis; "
             + ", ".join(f"{k} {v:.4g} ms" for k, v in stats.items()))
    parts = svg_open(chart_id, title, label, height, width=width,
                     data=f'{axis.data()} data-bins="{len(counts)}" data-samples="{len(samples)}"')
    parts += x_axis(axis, top, bottom, "latency per run (ms" + (", log scale)" if log else ")"))
    for index, count in enumerate(counts):
        x0, x1 = axis.at(edges[index]), axis.at(edges[index + 1])
        h = (bottom - top) * count / peak
        parts.append(f'<rect class="bin" data-lo="{edges[index]:.6g}" data-hi="{edges[index + 1]:.6g}" '
                     f'data-count="{count}" x="{x0:.2f}" y="{bottom - h:.2f}" width="{max(x1 - x0 - 1, 0.5):.2f}" '
                     f'height="{h:.2f}" fill="{LATENCY_COLOR}"><title>{edges[index]:.4g}–{edges[index + 1]:.4g} ms: '
                     f'{count} run(s)</title></rect>')
    parts += [f'<line class="rug" x1="{axis.at(edges[i]):.2f}" x2="{axis.at(edges[i + 1]):.2f}" y1="{bottom + 3}" '
              f'y2="{bottom + 3}" stroke="{LATENCY_COLOR}" stroke-width="3"/>' for i, n in enumerate(counts) if n]
    parts.append(f'<text x="{LEFT - 6}" y="{top + 4}" text-anchor="end" font-size="11" fill="{MUTED}">{peak}</text>'
                 f'<text x="{LEFT - 6}" y="{bottom}" text-anchor="end" font-size="11" fill="{MUTED}">0</text>'
                 f'<text x="{LEFT - 6}" y="{(top + bottom) / 2:.0f}" text-anchor="end" font-size="11" '
                 f'fill="{MUTED}">runs</text>')
    parts += _markers(axis, stats, 36, bottom)
    return "".join(parts) + "</svg>"


def percentile_strip(latency: LatencyStats, *, estimated: bool, chart_id: str = "latency", width: int = WIDTH,
                     domain: tuple[float, float] | None = None, log: bool | None = None) -> str:
    """The recorded min/p50/p90/p99/max on one axis, for a report that kept no samples (no bars:
    without the runs there is no distribution to draw)."""
    marks = {key: float(value) for key, value in (("min", latency.min), ("p50", latency.p50), ("p90", latency.p90),
                                                  ("p99", latency.p99), ("max", latency.max)) if value is not None}
    lo, hi = domain or (min(marks.values()), max(marks.values()))
    if log is None:
        log = lo > 0 and hi / lo > LOG_SPAN
    axis = latency_axis(lo, hi if hi > lo else lo * 1.1 + 1e-6, log, LEFT, width - RIGHT)
    runs = latency.count
    title = f"Latency percentiles ({'estimated' if estimated else 'measured'}, {runs} runs; runs not kept)"
    label = f"{title}: " + ", ".join(f"{k} {v:.4g} ms" for k, v in marks.items())
    top, bottom = 104, 136
    parts = svg_open(chart_id, title, label, 188, width=width, css_class="plot strip", data=axis.data())
    parts += x_axis(axis, top, bottom, "latency per run (ms" + (", log scale)" if log else ")"))
    if "min" in marks and "max" in marks:
        x0, x1 = axis.at(marks["min"]), axis.at(marks["max"])
        parts.append(f'<rect class="range" x="{x0:.2f}" y="{top + 8}" width="{max(x1 - x0, 1):.2f}" height="16" '
                     f'fill="{LATENCY_COLOR}" opacity="0.35"><title>min {marks["min"]:.4g} ms to max '
                     f'{marks["max"]:.4g} ms</title></rect>')
    parts += _markers(axis, marks, 32, bottom, RANGE_MARKERS)
    return "".join(parts) + "</svg>"


def latency_figure(latency: LatencyResult | None, *, chart_id: str = "latency", width: int = WIDTH,
                   domain: tuple[float, float] | None = None, log: bool | None = None) -> str:
    """The latency ``<figure>`` for a run's ``latency`` (a profile result): a histogram of the kept
    samples, the recorded percentiles when none were kept, a sentence for an estimate or no figure."""
    if latency is None:
        return f'<p class="no-chart" id="{chart_id}-none">Latency was not measured.</p>'
    stats = latency.latency_ms
    if latency.estimated:
        source = latency.estimate_source or "the device profile's figures"
        return (f'<p class="no-chart" id="{chart_id}-none">Latency is an estimate, not a measurement: one figure, '
                f'{stats.p50 or 0:.4g} ms, which has no spread, so no distribution is drawn. '
                f'Source: {escape(source)}.</p>')
    samples = stats.samples_ms or []
    if len(samples) >= 2:
        svg = latency_histogram(stats, estimated=False, chart_id=chart_id, width=width, domain=domain, log=log)
        spread = max(samples) / min(samples) if min(samples) > 0 else 0
        scale = f" Log scale: the slowest run took {spread:.0f}x as long as the fastest." \
            if 'data-scale="log"' in svg else ""
        caption = ("Each bar counts the timed runs that took that long; the dashed lines mark p50, p90 and p99 "
                   f"computed from the same runs.{scale}")
        return f'<figure>{svg}<figcaption>{caption}</figcaption></figure>'
    svg = percentile_strip(stats, estimated=False, chart_id=chart_id, width=width, domain=domain, log=log)
    caption = (f'<span id="{chart_id}-none">No timing samples in this report</span>: it holds only the statistics '
               f'of the {stats.count} timed runs, so the distribution cannot be drawn. The marks show '
               "the recorded percentiles; the shaded band spans min to max.")
    return f'<figure>{svg}<figcaption>{caption}</figcaption></figure>'


def is_percent(metric: str) -> bool:
    """Whether ``metric`` is a share shown in percent (accuracy, top5)."""
    return metric in PERCENT_METRICS


def metric_gate(result: RunResult) -> float | None:
    """The ``max_accuracy_drop`` gate as a metric value (accuracy: reference minus the drop in
    points; mae/mse: reference plus the allowed increase; relative gates as a share of the
    reference), or None without the gate or a reference."""
    gate = next((g for g in result.gates if g.gate == "max_accuracy_drop"), None)
    reference = result.reference
    if gate is None or reference is None:
        return None
    allowed = float(gate.threshold)
    if (gate.unit or result.drop_unit) == "percent of reference":
        change = reference * allowed / 100.0
    else:
        change = allowed / 100.0 if is_percent(result.metric) else allowed
    return reference - change if is_percent(result.metric) else reference + change


def metric_axis(values: list[float], percent: bool, start: float, end: float) -> Axis:
    """Fitted to ``values`` with room each side; from zero only when a share is at or below 50%."""
    if percent:
        if min(values) <= 0.5:
            return Axis(0.0, min(1.0, padded_range(values)[1]), start, end)
        return Axis(*padded_range(values, pad=0.15, ceiling=1.0), start, end)
    floor = 0.0 if min(values) >= 0 else None
    return Axis(*padded_range(values, pad=0.15, floor=floor), start, end)


def _metric_gate_line(axis: Axis, gate: float, result: RunResult, top: float, bottom: float) -> list[str]:
    gate_row = next(g for g in result.gates if g.gate == "max_accuracy_drop")
    percent = is_percent(result.metric)
    shown = f"{gate * 100:.2f}%" if percent else f"{gate:.4g}"
    allowed, unit = gate_row.threshold, gate_row.unit or ""
    if unit == "percent of reference":
        rule = f"{allowed:g}% of the reference"
    else:
        rule = f"drop ≤ {allowed:g} pts" if percent else f"increase ≤ {allowed:g}"
    text = f"gate {'≥' if percent else '≤'} {shown} ({rule})"
    x = axis.at(gate)
    anchor, dx = ("end", -5) if x > (axis.start + axis.end) / 2 else ("start", 5)
    return [f'<line class="gate" data-gate="max_accuracy_drop" data-value="{gate:.6g}" x1="{x:.2f}" x2="{x:.2f}" '
            f'y1="{top - 12:.1f}" y2="{bottom:.1f}" stroke="{GATE}" stroke-width="1.5" stroke-dasharray="6 4">'
            f'<title>{escape(text)}</title></line>',
            f'<text class="gate-label" x="{x + dx:.1f}" y="{top - 4:.1f}" text-anchor="{anchor}" font-size="11" '
            f'fill="{GATE}">{escape(text)}</text>']


def metric_chart(result: RunResult, *, chart_id: str = "metric", width: int = WIDTH) -> str:
    """The metric of each scored stage as a dot on an axis fitted to the values, the gate dashed."""
    metric, percent = result.metric, is_percent(result.metric)
    stages = [s for s in result.stages if s.metric is not None]
    gate = metric_gate(result)
    label_w, row_h, top = 170, 26, 50
    bottom = top + row_h * len(stages)
    axis = metric_axis([s.metric for s in stages] + ([gate] if gate is not None else []), percent,
                       label_w, width - RIGHT - 40)
    shown = (lambda v: f"{v * 100:.2f}%") if percent else (lambda v: f"{v:.4g}")
    title = f"{metric} of each stage on the validation data"
    label = f"{title}, axis from {shown(axis.lo)} to {shown(axis.hi)}: " + "; ".join(
        f"{s.name} {shown(s.metric)}" for s in stages)
    parts = svg_open(chart_id, title, label, bottom + 44, width=width,
                     data=axis.data() + ("" if gate is None else f' data-gate="{gate:.6g}"'))
    parts += x_axis(axis, top - 6, bottom, metric + (" (%)" if percent else "")
                    + ("" if axis.lo == 0 else f" — axis starts at {shown(axis.lo)}, not 0"), percent=percent)
    for index, stage in enumerate(stages):
        y, value = top + row_h * index + row_h / 2, stage.metric
        fails = gate is not None and (value < gate if percent else value > gate)
        color = GATE if fails else METRIC_COLOR
        x = axis.at(value)
        parts.append(f'<line x1="{axis.start}" x2="{axis.end}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                     f'<text x="{label_w - 8}" y="{y + 4:.1f}" text-anchor="end" font-size="12">'
                     f'{escape(stage.name)}</text>'
                     f'<circle class="point" data-value="{value:.6g}" cx="{x:.2f}" cy="{y:.1f}" r="6" fill="{color}">'
                     f'<title>{escape(stage.name)}: {shown(value)}</title></circle>'
                     f'<text x="{x + 10:.1f}" y="{y + 4:.1f}" font-size="12" fill="{INK}">{shown(value)}</text>')
    if gate is not None:
        parts += _metric_gate_line(axis, gate, result, top, bottom)
    return "".join(parts) + "</svg>"


def size_chart(stages: list[StageSummary], *, chart_id: str = "size", width: int = WIDTH, top: float | None = None,
               title: str = "gzip size of each stage, by format") -> str:
    """Bars from zero of each stage's gzip size (raw size where gzip is unknown), each labelled and
    coloured by format; ``top`` (bytes) fixes the full-length bar so small multiples compare."""
    label_w, bar_h, gap, y0 = 170, 24, 10, 52
    sizes = [(s, s.gzip_size_bytes or s.size_bytes, s.gzip_size_bytes is not None) for s in stages]
    top = top or max((size for _, size, _ in sizes), default=1) or 1
    span = width - label_w - 195
    height = y0 + len(sizes) * (bar_h + gap) + 6
    summary = "; ".join(f"{s.name} ({s.format}): {size / 1024:.1f} KB {'gzip' if gz else 'raw'}"
                        for s, size, gz in sizes)
    parts = svg_open(chart_id, title, f"{title}, bars from zero, coloured by format. {summary}", height, width=width)
    parts.append(f'<rect x="0" y="26" width="10" height="10" fill="{KERAS_COLOR}"/><text x="14" y="35" font-size="11">'
                 f'Keras file</text><rect x="90" y="26" width="10" height="10" fill="{TFLITE_COLOR}"/>'
                 f'<text x="104" y="35" font-size="11">.tflite</text>')
    for index, (stage, size, gz) in enumerate(sizes):
        fmt = stage.format
        y = y0 + index * (bar_h + gap)
        bar = max(1.0, span * size / top)
        color = TFLITE_COLOR if "tflite" in fmt else KERAS_COLOR
        text = f"{size / 1024:.1f} KB {'gzip' if gz else 'raw'} · {stage.size_bytes / 1024:.1f} KB file"
        parts.append(f'<text x="{label_w - 8}" y="{y + 10}" text-anchor="end" font-size="12">{escape(stage.name)}'
                     f'</text><text class="format" x="{label_w - 8}" y="{y + 22}" text-anchor="end" font-size="10" '
                     f'fill="{MUTED}">{escape(fmt)}</text>'
                     f'<rect class="bar" data-format="{escape(fmt)}" data-value="{size}" x="{label_w}" y="{y}" '
                     f'width="{bar:.1f}" height="{bar_h}" fill="{color}"><title>{escape(stage.name)} '
                     f'({escape(fmt)}): {escape(text)}</title></rect>'
                     f'<text x="{label_w + bar + 6:.1f}" y="{y + 16}" font-size="12">{escape(text)}</text>')
    return "".join(parts) + "</svg>"


SIZE_NOTE = ("Bars are gzip sizes (how much a compressed download or a zipped firmware image carries). A Keras file "
             "(a zip archive of float32 weights and the model's config) and a .tflite (a flatbuffer ready to run) are "
             "different formats, so their gzip sizes are not like for like: compare .tflite with .tflite. The Keras "
             "bars show how compressible pruning and clustering made the weights.")


def size_figure(stages: list[StageSummary], *, chart_id: str = "size", width: int = WIDTH, top: float | None = None) -> str:
    """The size chart in a ``<figure>`` with the note on formats when the stages mix them."""
    svg = size_chart(stages, chart_id=chart_id, width=width, top=top)
    mixed = len({"tflite" in s.format for s in stages}) > 1
    note = f'<figcaption class="size-note">{SIZE_NOTE}</figcaption>' if mixed else ""
    return f"<figure>{svg}{note}</figure>"
