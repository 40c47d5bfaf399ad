"""Small, dependency-free SVG building blocks for the HTML reports (static markup, no script).

Every chart is an ``<svg role="img">`` with an ``aria-label`` (what it shows, in words) and a
``<title>`` as its first child. Charts that place values on an axis also carry the axis as data
attributes, so a test (or a curious reader) can check a mark's position against its value:
``data-scale`` (``linear`` or ``log``), ``data-domain`` ("lo hi", the values at both ends) and
``data-range`` ("x0 x1", the pixel positions of those ends).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

WIDTH, BAR_H, GAP, LABEL_W = 560, 22, 8, 170
INK, MUTED, GRID, GATE = "#222", "#666", "#e3e3e3", "#c0392b"
TICKS = 6  # about this many intervals on a linear axis
LOG_SPAN = 20.0  # a log axis when the largest value is more than this times the smallest


@dataclass(frozen=True)
class Axis:
    """A value range ``lo``..``hi`` drawn between pixel positions ``start``..``end``, linear or log10."""

    lo: float
    hi: float
    start: float
    end: float
    log: bool = False

    def at(self, value: float) -> float:
        """The pixel position of ``value``."""
        f = math.log10 if self.log else (lambda v: v)
        return self.start + (f(value) - f(self.lo)) / (f(self.hi) - f(self.lo)) * (self.end - self.start)

    def ticks(self) -> list[float]:
        """Round values inside the range: 1-2-5 per decade on a log axis, a nice step on a linear one."""
        if self.log:
            decades = range(math.floor(math.log10(self.lo)), math.ceil(math.log10(self.hi)) + 1)
            marks = [m * 10.0 ** d for d in decades for m in (1, 2, 5)]
            return [t for t in marks if self.lo * (1 - 1e-9) <= t <= self.hi * (1 + 1e-9)]
        step = nice_step((self.hi - self.lo) / TICKS)
        first = math.ceil(self.lo / step - 1e-9)
        return [round((first + i) * step, 12) for i in range(int((self.hi - self.lo) / step + 1e-9) + 2)
                if (first + i) * step <= self.hi + step * 1e-9]

    def data(self) -> str:
        """The axis as data attributes (see the module docstring)."""
        return (f'data-scale="{"log" if self.log else "linear"}" data-domain="{self.lo:.6g} {self.hi:.6g}" '
                f'data-range="{self.start:.2f} {self.end:.2f}"')


def nice_step(raw: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x a power of ten that is at least ``raw``."""
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))


def padded_range(values: list[float], *, pad: float = 0.08, floor: float | None = None,
                 ceiling: float | None = None) -> tuple[float, float]:
    """``min``..``max`` of ``values`` widened by ``pad`` of the span each side (not forced to zero),
    kept within ``floor``/``ceiling`` when given."""
    lo, hi = min(values), max(values)
    room = (hi - lo) * pad or max(abs(hi) * 0.05, 1e-3)
    lo, hi = lo - room, hi + room
    return (lo if floor is None else max(lo, floor)), (hi if ceiling is None else min(hi, ceiling))


def log_range(lo: float, hi: float) -> tuple[float, float]:
    """A log axis' ends: the 1-2-5 marks just outside ``lo`` and ``hi``."""
    marks = [m * 10.0 ** d for d in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 2)
             for m in (1, 2, 5)]
    return max(t for t in marks if t <= lo * (1 + 1e-12)), min(t for t in marks if t >= hi * (1 - 1e-12))


def tick_text(value: float, axis: Axis, *, percent: bool = False) -> str:
    """A tick label with as many decimals as the step needs (``percent`` shows 0.97 as 97%)."""
    if percent:
        value *= 100
    if axis.log:
        return f"{value:g}" + ("%" if percent else "")
    step = nice_step((axis.hi - axis.lo) / TICKS) * (100 if percent else 1)
    decimals = max(0, -math.floor(math.log10(step))) + (1 if f"{step:g}".rstrip("0").endswith("25") else 0)
    return f"{value:.{decimals}f}" + ("%" if percent else "")


def svg_open(chart_id: str, title: str, label: str, height: float, *, width: int = WIDTH,
             css_class: str = "plot", data: str = "") -> list[str]:
    """The opening ``<svg>`` (role img, aria-label) with its ``<title>`` and the visible title line."""
    return [f'<svg class="{css_class}" id="{chart_id}" role="img" aria-label="{escape(label)}" {data} '
            f'viewBox="0 0 {width} {height:.0f}" width="{width}" height="{height:.0f}" '
            f'xmlns="http://www.w3.org/2000/svg">',
            f'<title>{escape(title)}</title>',
            f'<text x="0" y="16" font-weight="bold" font-size="14" fill="{INK}">{escape(title)}</text>']


def x_axis(axis: Axis, top: float, bottom: float, title: str, *, percent: bool = False) -> list[str]:
    """Grid lines, tick labels under ``bottom`` and the axis title below them."""
    parts = [f'<line x1="{axis.start:.1f}" x2="{axis.end:.1f}" y1="{bottom:.1f}" y2="{bottom:.1f}" stroke="{MUTED}"/>']
    for tick in axis.ticks():
        x = axis.at(tick)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top:.1f}" y2="{bottom:.1f}" stroke="{GRID}"/>')
        parts.append(f'<text class="tick" x="{x:.1f}" y="{bottom + 14:.1f}" text-anchor="middle" font-size="11" '
                     f'fill="{MUTED}">{tick_text(tick, axis, percent=percent)}</text>')
    middle = (axis.start + axis.end) / 2
    parts.append(f'<text x="{middle:.1f}" y="{bottom + 32:.1f}" text-anchor="middle" font-size="12" '
                 f'fill="{INK}">{escape(title)}</text>')
    return parts


def bar_chart(title: str, rows: list[tuple[str, float, str]], *, chart_id: str, color: str = "#3b7dd8",
              top: float | None = None) -> str:
    """Horizontal bars from zero: ``rows`` of (label, value, text shown after the bar); ``top`` is the
    value of a full-length bar (default: the largest value)."""
    rows = [(label, max(float(value), 0.0), text) for label, value, text in rows]
    top = top or max((value for _, value, _ in rows), default=0.0) or 1.0
    height = 34 + len(rows) * (BAR_H + GAP)
    span = WIDTH - LABEL_W - 110
    summary = "; ".join(f"{label}: {text}" for label, _, text in rows)
    parts = svg_open(chart_id, title, f"{title}. {summary}", height)
    for index, (label, value, text) in enumerate(rows):
        y = 30 + index * (BAR_H + GAP)
        width = max(1.0, span * value / top)
        parts.append(f'<text x="{LABEL_W - 8}" y="{y + 15}" text-anchor="end" font-size="12">{escape(label)}</text>')
        parts.append(f'<rect class="bar" x="{LABEL_W}" y="{y}" width="{width:.1f}" height="{BAR_H}" fill="{color}" '
                     f'data-value="{value:.6g}"><title>{escape(label)}: {escape(text)}</title></rect>')
        parts.append(f'<text x="{LABEL_W + width + 6:.1f}" y="{y + 15}" font-size="12">{escape(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)
