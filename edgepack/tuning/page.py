"""The study page of ``edgepack tune``: one self-contained HTML file (inline CSS, static SVG, no script).

It shows the Pareto scatter of size against accuracy drop (and of latency against drop when latency is an
objective), the gates as lines, the front joined by a step line, the best trial ringed, and a table of every
trial. Every text that comes from a recipe or a trial (step params, notes, names) is escaped.
"""

from __future__ import annotations

import math
from html import escape
from pathlib import Path

from edgepack.report.svg import TICKS, Axis, nice_step
from edgepack.tuning.result import TuneResult
from edgepack.tuning.trials import TrialSummary
from edgepack.util.files import write_bytes_atomic

WIDTH, HEIGHT = 760, 440
LEFT, RIGHT, TOP, BOTTOM = 78, 24, 58, 62  # plot margins: the legend sits above, the axis titles outside
FRONT, FEASIBLE, INFEASIBLE, GATE, INK = "#d8813b", "#3b7dd8", "#9aa0a6", "#c0392b", "#222"
LOG_SPAN = 20.0  # a log x axis when the largest value is more than this times the smallest

# step: (param, how it reads); "" shows the value alone, a word shows "word value"; None/[]/"skip" values drop out
_SHOWN = {
    "prune": [("sparsity", "sparsity"), ("allocate", ""), ("structure", "")],
    "cluster": [("clusters", ""), ("allocate", ""), ("init", "init")],
    "qat": [("epochs", "epochs")],
    "quantize": [("mode", ""), ("io", "io"), ("max_drop", "max_drop"), ("max_float_ops", "max_float_ops"),
                 ("float_ops", "float_ops"), ("fallback", "fallback"), ("promote", "promote")],
}
_QUIET = {("prune", "structure", "unstructured"), ("cluster", "init", "kmeans++"), ("quantize", "io", "float32"),
          ("quantize", "fallback", "none"), ("quantize", "promote", "['float']")}
_MEASURES = {"evaluate", "profile"}


def make_axis(values: list[float], start: float, end: float, *, log: bool | None = None) -> Axis:
    """An axis over ``values`` (gates included by the caller) with a little room each side; not forced to zero.

    ``log`` None picks a log axis when the positive values span more than ``LOG_SPAN`` times.
    """
    lo, hi = min(values), max(values)
    if log is None:
        log = lo > 0 and hi / lo > LOG_SPAN
    if log:
        below = [m * 10.0 ** d for d in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
                 for m in (1, 2, 5)]
        return Axis(max(t for t in below if t <= lo * (1 + 1e-9)), min(t for t in below + [10 * hi] if t >= hi),
                    start, end, log=True)
    pad = (hi - lo) * 0.07 or max(abs(hi) * 0.1, 0.5)
    return Axis(lo - pad, hi + pad, start, end)


def _number(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ",".join(_number(v) for v in value)
    if isinstance(value, dict):
        return f"{len(value)} set"
    return str(value)


def _step_text(name: str, params: dict) -> str:
    shown = _SHOWN.get(name) or [(key, key) for key, value in params.items()
                                 if isinstance(value, (str, int, float))][:4]
    words: list[str] = []
    for key, label in shown:
        value = params.get(key)
        if value is None or value == [] or (name, key, str(value)) in _QUIET:
            continue
        text = f"{label} {_number(value)}" if label else _number(value)
        words.append(f", {text}" if label and words else f" {text}")
    return name + "".join(words)


def settings_text(steps: list[dict]) -> str:
    """A trial's steps in a few words: ``prune sparsity 0.82 sensitivity · cluster 16 · quantize int8, max_drop 1``.

    Measurement steps (evaluate, profile) are left out; the text is not escaped.
    """
    parts = []
    for entry in steps:
        for name, params in entry.items():
            if name not in _MEASURES:
                parts.append(_step_text(str(name), params if isinstance(params, dict) else {}))
    return " · ".join(parts) or "-"


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _tick_text(value: float, axis: Axis) -> str:
    if axis.log:
        return f"{value:g}"
    step = nice_step((axis.hi - axis.lo) / TICKS)
    decimals = max(0, -math.floor(math.log10(step))) + (1 if f"{step:g}".rstrip("0").endswith("25") else 0)
    return f"{value:.{decimals}f}"


def _axes_svg(xa: Axis, ya: Axis, x_title: str, y_title: str) -> list[str]:
    x0, x1, y0, y1 = xa.start, xa.end, ya.end, ya.start  # y0 top, y1 bottom
    out = [f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" fill="#fbfbfb" stroke="#bbb"/>']
    for t in xa.ticks():
        x = xa.at(t)
        out.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y1 + 5}" stroke="#e3e3e3"/>'
                   f'<line x1="{x:.1f}" y1="{y1}" x2="{x:.1f}" y2="{y1 + 5}" stroke="#666"/>'
                   f'<text class="tick" x="{x:.1f}" y="{y1 + 19}" text-anchor="middle">{_tick_text(t, xa)}</text>')
    for t in ya.ticks():
        y = ya.at(t)
        out.append(f'<line x1="{x0 - 5}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#e3e3e3"/>'
                   f'<line x1="{x0 - 5}" y1="{y:.1f}" x2="{x0}" y2="{y:.1f}" stroke="#666"/>'
                   f'<text class="tick" x="{x0 - 9}" y="{y + 4:.1f}" text-anchor="end">{_tick_text(t, ya)}</text>')
    scale = ", log scale" if xa.log else ""
    out.append(f'<text class="axis-title" x="{(x0 + x1) / 2}" y="{y1 + 44}" text-anchor="middle">'
               f'{escape(x_title)}{scale}</text>'
               f'<text class="axis-title" transform="translate({x0 - 56} {(y0 + y1) / 2}) rotate(-90)" '
               f'text-anchor="middle">{escape(y_title)}</text>')
    return out


def _gates_svg(xa: Axis, ya: Axis, x_gate: tuple[str, float, str] | None, drop_gate: float | None) -> list[str]:
    out = []
    if drop_gate is not None:
        y = ya.at(drop_gate)
        out.append(f'<line class="gate" data-gate="max_accuracy_drop" data-value="{drop_gate:g}" x1="{xa.start}" '
                   f'y1="{y:.2f}" x2="{xa.end}" y2="{y:.2f}" stroke="{GATE}" stroke-width="1.5" '
                   f'stroke-dasharray="6 4"/><text class="gate-label" x="{xa.end - 6}" y="{y - 6:.1f}" '
                   f'text-anchor="end" fill="{GATE}">gate: drop ≤ {drop_gate:g} pts</text>')
    if x_gate is not None:
        key, value, text = x_gate
        if xa.lo <= value <= xa.hi:
            x = xa.at(value)
            anchor, dx = ("end", -5) if x > xa.end - 8 * len(text) - 40 else ("start", 5)  # keep it in the box
            out.append(f'<line class="gate" data-gate="{key}" data-value="{value:g}" x1="{x:.2f}" y1="{ya.end}" '
                       f'x2="{x:.2f}" y2="{ya.start}" stroke="{GATE}" stroke-width="1.5" stroke-dasharray="6 4"/>'
                       f'<text class="gate-label" x="{x + dx:.1f}" y="{ya.end + 14}" text-anchor="{anchor}" '
                       f'fill="{GATE}">gate: {escape(text)}</text>')
    return out


def _front_svg(points: list[tuple[TrialSummary, float, float]], front: set[int]) -> list[str]:
    """The step line through the front points, in x order (the edge of the region they dominate)."""
    on = sorted((x, y) for t, x, y in points if t.number in front)
    if len(on) < 2:
        return []
    path = [f"M{on[0][0]:.1f},{on[0][1]:.1f}"] + [f"H{x:.1f}V{y:.1f}" for x, y in on[1:]]
    return [f'<path class="front-line" d="{"".join(path)}" fill="none" stroke="{FRONT}" stroke-width="2" '
            f'stroke-linejoin="round" opacity="0.8"/>']


def _point_svg(trial: TrialSummary, x: float, y: float, on_front: bool, x_text: str) -> str:
    color = FRONT if on_front else FEASIBLE if trial.feasible else INFEASIBLE
    fill = color if trial.feasible else "#fff"
    kinds = ", ".join(k for k, on in (("on the Pareto front", on_front), ("fails a gate", not trial.feasible)) if on)
    tip = (f"trial {trial.number}: {x_text}, drop {_fmt(trial.drop)} pts{f' ({kinds})' if kinds else ''}\n"
           f"{settings_text(trial.steps)}")
    return (f'<circle class="trial" data-trial="{trial.number}" data-front="{str(on_front).lower()}" '
            f'data-feasible="{str(trial.feasible).lower()}" cx="{x:.2f}" cy="{y:.2f}" r="6" fill="{fill}" '
            f'stroke="{color}" stroke-width="2"><title>{escape(tip)}</title></circle>')


def _legend_svg() -> str:
    items = [(f'<circle cx="0" cy="0" r="6" fill="{FRONT}" stroke="{FRONT}" stroke-width="2"/>', "Pareto front"),
             (f'<circle cx="0" cy="0" r="6" fill="{FEASIBLE}" stroke="{FEASIBLE}" stroke-width="2"/>', "passes gates"),
             (f'<circle cx="0" cy="0" r="6" fill="#fff" stroke="{INFEASIBLE}" stroke-width="2"/>', "fails a gate"),
             (f'<circle cx="0" cy="0" r="10" fill="none" stroke="{INK}" stroke-width="1.5"/>', "best"),
             (f'<line x1="-9" y1="0" x2="9" y2="0" stroke="{GATE}" stroke-width="1.5" stroke-dasharray="6 4"/>',
              "gate")]
    parts, x = [], LEFT + 10
    for mark, label in items:
        parts.append(f'<g transform="translate({x} 36)">{mark}<text class="legend" x="15" y="4">{label}</text></g>')
        x += 40 + 7 * len(label)
    return "".join(parts)


def _scatter_points(result: TuneResult, attr: str) -> list[TrialSummary]:
    return [t for t in result.trials if t.state == "COMPLETE" and getattr(t, attr) is not None
            and t.drop is not None and math.isfinite(getattr(t, attr)) and math.isfinite(t.drop)]


def scatter_svg(result: TuneResult, *, x_attr: str, x_title: str, unit: str, x_gate: tuple[str, float | None] | None,
                drop_gate: float | None, chart_id: str) -> str:
    """A static SVG scatter of ``x_attr`` (size_kb or latency_ms) against accuracy drop, one circle a trial.

    Needs at least one completed trial with both figures (:func:`study_page` checks before calling it).
    """
    trials = _scatter_points(result, x_attr)
    gate = None if x_gate is None or x_gate[1] is None else \
        (x_gate[0], float(x_gate[1]), f"{x_title} ≤ {x_gate[1]:g} {unit.split(',')[0]}")
    xs = [getattr(t, x_attr) for t in trials]
    log = min(xs) > 0 and max(xs) / min(xs) > LOG_SPAN
    xa = make_axis(xs + ([gate[1]] if gate and (not log or gate[1] > 0) else []), LEFT, WIDTH - RIGHT, log=log)
    ya = make_axis([t.drop for t in trials] + ([drop_gate] if drop_gate is not None else []), HEIGHT - BOTTOM, TOP)
    front = set(result.pareto)
    points = [(t, xa.at(getattr(t, x_attr)), ya.at(t.drop)) for t in trials]
    name = f"{x_title} against accuracy drop"
    label = (f"Pareto scatter of {name}: {len(points)} completed trial(s), "
             f"{sum(t.number in front for t, _, _ in points)} on the front")
    out = [f'<svg class="scatter" id="{chart_id}" role="img" aria-labelledby="{chart_id}-title" '
           f'aria-label="{escape(label)}" data-x-scale="{"log" if xa.log else "linear"}" '
           f'data-x-domain="{xa.lo:.10g} {xa.hi:.10g}" data-y-domain="{ya.lo:.10g} {ya.hi:.10g}" '
           f'data-plot-box="{xa.start} {ya.end} {xa.end} {ya.start}" viewBox="0 0 {WIDTH} {HEIGHT}" '
           f'width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
           f'<title id="{chart_id}-title">{escape(label)}</title>',
           f'<text class="chart-title" x="{LEFT}" y="18">{escape(name[0].upper() + name[1:])}</text>',
           _legend_svg(), *_axes_svg(xa, ya, f"{x_title} ({unit})", "accuracy drop (points)"),
           *_gates_svg(xa, ya, gate, drop_gate), *_front_svg(points, front)]
    out += [_point_svg(t, x, y, t.number in front, f"{getattr(t, x_attr):.2f} {unit}") for t, x, y in points]
    out += _best_svg(points, result.best)
    return "".join(out) + "</svg>"


def _best_svg(points: list[tuple[TrialSummary, float, float]], best: int | None) -> list[str]:
    for t, x, y in points:
        if t.number == best:
            anchor, dx = ("end", -14) if x > WIDTH - RIGHT - 90 else ("start", 14)
            return [f'<circle class="best-ring" cx="{x:.2f}" cy="{y:.2f}" r="11" fill="none" stroke="{INK}" '
                    f'stroke-width="1.5"/><text class="best-label" x="{x + dx:.1f}" y="{y - 12:.1f}" '
                    f'text-anchor="{anchor}">best: trial {t.number}</text>']
    return []


def _summary_html(result: TuneResult, gates: dict[str, float | None]) -> str:
    states: dict[str, int] = {}
    for t in result.trials:
        states[t.state] = states.get(t.state, 0) + 1
    counts = ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items()))
    best = next((t for t in result.trials if t.number == result.best), None)
    best_text = "no trial passes the gates" if best is None else (
        f"best: trial {best.number} ({_fmt(best.size_kb, 1)} KB gzip, drop {_fmt(best.drop)} pts"
        + (f", {_fmt(best.latency_ms, 3)} ms" if best.latency_ms is not None else "") + ")")
    line = (f"{len(result.trials)} trial(s) ({counts or 'none'}) · {sum(t.feasible for t in result.trials)} "
            f"feasible · {best_text} · {result.seconds:g} s · storage {result.storage}")
    wording = {"max_accuracy_drop": ("accuracy drop", "pts"), "max_size_kb": ("size", "KB gzip"),
               "max_flash_kb": ("flash", "KB"), "max_ram_kb": ("RAM", "KB"), "max_latency_ms": ("latency", "ms")}
    gate_text = "; ".join(f"{wording[k][0]} ≤ {v:g} {wording[k][1]}" for k, v in gates.items()
                          if v is not None and k in wording) or "none"
    stopped = {"trials": "its trial count", "timeout": "its time limit"}.get(result.stopped_by or "", "-")
    parts = [f'<p id="summary">{escape(line)}</p>',
             f'<p id="limits">This run: {escape(result.stop.describe())}; ended by {escape(stopped)}.</p>',
             f'<p id="objectives">Objectives (minimised): {escape(", ".join(result.objectives))}. '
             f'Gates: {escape(gate_text)}.</p>']
    if result.tuned_recipe or result.bundle:
        parts.append(f'<p id="outputs">Tuned recipe: <code>{escape(result.tuned_recipe or "-")}</code> · '
                     f'bundle: <code>{escape(result.bundle or "-")}</code></p>')
    return "".join(parts)


def _table_html(result: TuneResult) -> str:
    front = set(result.pareto)
    head = "".join(f'<th scope="col">{h}</th>' for h in
                   ("#", "state", "size KB (gzip)", "flash KB (.tflite)", "RAM KB (arena)", "latency ms",
                    "drop (pts)", "feasible", "front", "settings", "note"))
    rows = []
    for t in sorted(result.trials, key=lambda t: t.number):
        classes = " ".join(c for c, on in (("front", t.number in front), ("best", t.number == result.best),
                                            ("infeasible", t.state == "COMPLETE" and not t.feasible)) if on)
        mark = "★ front" if t.number in front else ""
        cells = [t.state, _fmt(t.size_kb, 1), _fmt(t.flash_kb, 1), _fmt(t.ram_kb, 1), _fmt(t.latency_ms, 3),
                 _fmt(t.drop),
                 "yes" if t.feasible else "no", mark, settings_text(t.steps), t.note or ""]
        number = f"{t.number}" + (" (best)" if t.number == result.best else "")
        rows.append(f'<tr data-trial="{t.number}" class="{classes}"><th scope="row">{escape(number)}</th>'
                    + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    return (f'<table id="trials"><caption>Every trial, by number; front rows are highlighted.</caption>'
            f'<thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')


STYLE = """body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.3em}p{line-height:1.5}figure{margin:1.5em 0}svg.scatter{max-width:100%;height:auto}
svg text{font-family:system-ui,sans-serif;fill:#222}svg .tick{font-size:12px;fill:#444}
svg .axis-title{font-size:13px}svg .chart-title{font-size:15px;font-weight:bold}svg .legend{font-size:12px}
svg .gate-label{font-size:12px;fill:#c0392b}svg .best-label{font-size:12px;font-weight:bold}
svg .gate-label,svg .best-label{paint-order:stroke;stroke:#fbfbfb;stroke-width:4px;stroke-linejoin:round}
table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:left;vertical-align:top}thead th{background:#f0f0f0}caption{text-align:left;color:#555;padding:4px 0}
tr.front{background:#fdf0e4}td:nth-child(-n+7),tbody th{white-space:nowrap}tr.best th{font-weight:bold}
tr.infeasible td{color:#777}
.empty{padding:1em;border:1px dashed #bbb;background:#fafafa}"""


def study_page(result: TuneResult, *, gates: dict[str, float | None]) -> str:
    """The study as one self-contained HTML page: summary, Pareto scatter(s) and the table of every trial.

    ``gates`` holds max_accuracy_drop, max_size_kb and max_latency_ms (None where unset). No network,
    no script: inline CSS and static SVG only; every text from the recipe or the trials is escaped.
    """
    drop_gate = gates.get("max_accuracy_drop")
    charts = []
    if not _scatter_points(result, "size_kb"):
        charts.append('<p class="empty" id="no-completed">No trial has completed with a size and an accuracy drop '
                      'yet, so there is nothing to plot. Run more trials (the study continues where it stopped).</p>')
    else:
        charts.append("<p>Each circle is a completed trial; hover it for its settings. Lower and further left "
                      "is better.</p>")
        charts.append("<figure>" + scatter_svg(result, x_attr="size_kb", x_title="size", unit="KB, gzip",
                                               x_gate=("max_size_kb", gates.get("max_size_kb")),
                                               drop_gate=drop_gate, chart_id="pareto-size") + "</figure>")
        for objective, attr, title, unit in (("flash", "flash_kb", "flash", "KB, .tflite"),
                                             ("ram", "ram_kb", "RAM", "KB, tensor arena")):
            if objective in result.objectives and _scatter_points(result, attr):
                charts.append("<figure>" + scatter_svg(result, x_attr=attr, x_title=title, unit=unit,
                                                       x_gate=(f"max_{objective}_kb", gates.get(f"max_{objective}_kb")),
                                                       drop_gate=drop_gate, chart_id=f"pareto-{objective}")
                              + "</figure>")
        if "latency" in result.objectives and _scatter_points(result, "latency_ms"):
            charts.append("<figure>" + scatter_svg(result, x_attr="latency_ms", x_title="latency p50", unit="ms",
                                                   x_gate=("max_latency_ms", gates.get("max_latency_ms")),
                                                   drop_gate=drop_gate, chart_id="pareto-latency") + "</figure>")
    name = escape(result.study)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tune study {name}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head><body>
<h1>Tune study {name}</h1>
{_summary_html(result, gates)}
<h2>Pareto front</h2>
{"".join(charts)}
<h2>Trials</h2>
{_table_html(result)}
</body></html>
"""


def write_study_page(result: TuneResult, path: str | Path, *, gates: dict[str, float | None]) -> Path:
    """Write :func:`study_page` to ``path`` atomically (a temporary file, then a rename); returns the path."""
    return write_bytes_atomic(path, study_page(result, gates=gates).encode("utf-8"))
