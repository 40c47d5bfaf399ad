"""Small, dependency-free SVG charts for the HTML report."""

from __future__ import annotations

from html import escape

WIDTH, BAR_H, GAP, LABEL_W = 560, 22, 8, 170


def bar_chart(title: str, rows: list[tuple[str, float, str]], *, chart_id: str, color: str = "#3b7dd8") -> str:
    """Horizontal bars: ``rows`` of (label, value, text shown after the bar)."""
    rows = [(label, max(float(value), 0.0), text) for label, value, text in rows]
    top = max((value for _, value, _ in rows), default=0.0) or 1.0
    height = 34 + len(rows) * (BAR_H + GAP)
    span = WIDTH - LABEL_W - 110
    parts = [f'<svg class="plot" id="{chart_id}" role="img" aria-label="{escape(title)}" '
             f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
             f'<text x="0" y="16" font-weight="bold" font-size="14">{escape(title)}</text>']
    for index, (label, value, text) in enumerate(rows):
        y = 30 + index * (BAR_H + GAP)
        width = max(1.0, span * value / top)
        parts.append(f'<text x="{LABEL_W - 8}" y="{y + 15}" text-anchor="end" font-size="12">{escape(label)}</text>')
        parts.append(f'<rect class="bar" x="{LABEL_W}" y="{y}" width="{width:.1f}" height="{BAR_H}" fill="{color}">'
                     f'<title>{escape(label)}: {escape(text)}</title></rect>')
        parts.append(f'<text x="{LABEL_W + width + 6:.1f}" y="{y + 15}" font-size="12">{escape(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def latency_chart(latency: dict, *, estimated: bool, chart_id: str = "latency") -> str:
    """The latency distribution: a histogram of the timed runs when given, else the percentiles."""
    samples = latency.get("samples_ms") or []
    label = "estimated" if estimated else "measured"
    if len(samples) >= 5:
        low, high = min(samples), max(samples)
        bins = 12
        step = (high - low) / bins or 1.0
        counts = [0] * bins
        for value in samples:
            counts[min(int((value - low) / step), bins - 1)] += 1
        rows = [(f"{low + i * step:.3f}–{low + (i + 1) * step:.3f} ms", c, str(c)) for i, c in enumerate(counts)]
        return bar_chart(f"Latency distribution ({label}, {len(samples)} runs)", rows, chart_id=chart_id,
                         color="#d8813b")
    keys = [k for k in ("min", "p50", "p90", "p99", "max") if latency.get(k) is not None]
    rows = [(k, latency[k], f"{latency[k]:.3f} ms") for k in keys]
    return bar_chart(f"Latency percentiles ({label})", rows, chart_id=chart_id, color="#d8813b")
