"""``edgepack report BUNDLE...``: several bundles side by side, from each bundle's report.json.

The comparison (:class:`BundleComparison`) is one JSON document (``--json``)::

    {"page": "report-compare.html",
     "bundles": [{"bundle": "dist/pi4", "name": "pi4-int8", "device": "raspberry-pi-4", "passed": true,
                  "metric": "accuracy", "reference": 0.9711, "final": 0.9667, "drop": 0.44,
                  "drop_unit": "percentage points",
                  "latency_ms": {"p50": 1.08, "p90": 1.14, "p99": 1.16} or null, "latency_estimated": false,
                  "latency_samples": 60, "size_bytes": 24000, "gzip_size_bytes": 9000,
                  "gates": {"passed": 2, "total": 2, "failed": []}}, ...],
     "passing": ["dist/pi4"], "smallest": "dist/pi4", "fastest": "dist/pi4"}

``smallest`` (gzip size) and ``fastest`` (p50) are chosen among the bundles that pass their gates
(null when none does). The HTML page has the table, then the latency and size charts of every
bundle side by side on shared axes (small multiples), so the bundles compare at a glance.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from pydantic import BaseModel, ValidationError

from edgepack.errors import ConfigError, DataError, OutputError, validation_problem
from edgepack.report.charts import SIZE_NOTE, latency_figure, size_chart
from edgepack.report.page import page, table
from edgepack.report.render import metric_text
from edgepack.report.result import RunResult
from edgepack.report.svg import LOG_SPAN, bar_chart

REPORT = "report.json"
DEFAULT_PAGE = Path("report-compare.html")


class Percentiles(BaseModel):
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None


class GateCount(BaseModel):
    passed: int
    total: int
    failed: list[str]


class BundleRow(BaseModel):
    """One bundle's row of the comparison."""

    bundle: str
    name: str
    device: str
    passed: bool
    metric: str
    reference: float | None = None
    final: float | None = None
    drop: float | None = None
    drop_unit: str | None = None
    latency_ms: Percentiles | None = None
    latency_estimated: bool | None = None
    latency_samples: int = 0
    size_bytes: int
    gzip_size_bytes: int
    gates: GateCount


class BundleComparison(BaseModel):
    """The comparison (``--json``): a row per bundle; the smallest (gzip) and fastest (p50) of those that pass."""

    page: str | None = None
    bundles: list[BundleRow]
    passing: list[str]
    smallest: str | None = None
    fastest: str | None = None


def load_bundle(path: str | Path) -> RunResult:
    """The run result in bundle ``path``'s report.json.

    Raises ConfigError (exit 2) when ``path`` is not a bundle folder (missing, a file, no
    report.json) and DataError (exit 3) when its report.json cannot be read as a run result.
    """
    folder = Path(path)
    hint = "give the folders that 'edgepack run' wrote (e.g. dist/*)"
    if not folder.is_dir():
        why = "no such folder" if not folder.exists() else "not a folder"
        raise ConfigError(f"{folder} is not an edgepack bundle: {why}", hint=hint)
    report = folder / REPORT
    if not report.is_file():
        raise ConfigError(f"{folder} is not an edgepack bundle: it has no {REPORT}", hint=hint)
    try:
        document = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"cannot read {report}: {exc}", hint="rebuild the bundle with 'edgepack run'") from None
    try:
        return RunResult.model_validate(document)
    except ValidationError as exc:
        where, message = validation_problem(exc)
        raise DataError(f"{report} is not an edgepack run report of this version ({where or 'the document'}: "
                        f"{message})", hint="rebuild the bundle with 'edgepack run'") from None


def bundle_summary(path: str | Path, result: RunResult) -> BundleRow:
    """One bundle's row of the comparison."""
    latency = result.latency
    stats = latency.latency_ms if latency else None
    failed = [gate.gate for gate in result.gates if not gate.passed]
    return BundleRow(
        bundle=str(path), name=result.name, device=result.device, passed=result.passed, metric=result.metric,
        reference=result.reference, final=result.final, drop=result.drop, drop_unit=result.drop_unit,
        latency_ms=Percentiles(p50=stats.p50, p90=stats.p90, p99=stats.p99) if stats else None,
        latency_estimated=latency.estimated if latency else None,
        latency_samples=len(stats.samples_ms or []) if stats else 0,
        size_bytes=result.size_bytes, gzip_size_bytes=result.gzip_size_bytes,
        gates=GateCount(passed=len(result.gates) - len(failed), total=len(result.gates), failed=failed))


def compare(paths: list[str | Path]) -> tuple[BundleComparison, list[RunResult]]:
    """(comparison, run results) of the bundles at ``paths``, in the order given (a path given twice counts once)."""
    unique = list(dict.fromkeys(str(p) for p in paths))
    results = [load_bundle(path) for path in unique]
    rows = [bundle_summary(path, result) for path, result in zip(unique, results)]
    passing = [row for row in rows if row.passed]
    timed = [row for row in passing if row.latency_ms and row.latency_ms.p50 is not None]
    document = BundleComparison(
        bundles=rows, passing=[row.bundle for row in passing],
        smallest=min(passing, key=lambda r: r.gzip_size_bytes).bundle if passing else None,
        fastest=min(timed, key=lambda r: r.latency_ms.p50).bundle if timed else None)
    return document, results


def _ms(row: BundleRow, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g} ms" + (" (est.)" if row.latency_estimated else "")


def _drop(row: BundleRow) -> str:
    if row.drop is None:
        return "-"
    unit = "pts" if row.drop_unit == "percentage points" else row.drop_unit or ""
    return f"{row.drop:.3f} {unit}".strip()


def table_rows(document: BundleComparison) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """(header, rows) of the comparison table, as text (shared by the page, Markdown and the terminal)."""
    metrics = {row.metric for row in document.bundles}
    one = metrics.pop() if len(metrics) == 1 else None
    header = ("bundle", "device", "verdict", one or "metric", "drop", "p50", "p90", "size (gzip)", "gates passed")
    rows = []
    for row in document.bundles:
        rows.append((row.bundle, row.device, "PASS" if row.passed else "FAIL",
                     metric_text(row.metric, row.final) + ("" if one else f" {row.metric}"), _drop(row),
                     _ms(row, row.latency_ms.p50 if row.latency_ms else None),
                     _ms(row, row.latency_ms.p90 if row.latency_ms else None),
                     f"{row.gzip_size_bytes / 1024:.1f} KB", f"{row.gates.passed} of {row.gates.total}"
                     + (f" (failed: {', '.join(row.gates.failed)})" if row.gates.failed else "")))
    return header, rows


def comparison_markdown(document: BundleComparison) -> str:
    """The comparison as a Markdown table, with the verdict line under it."""
    header, rows = table_rows(document)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines + ["", verdict_line(document)]) + "\n"


def verdict_line(document: BundleComparison) -> str:
    """One sentence: how many bundles pass, and the smallest and fastest of those."""
    rows = {row.bundle: row for row in document.bundles}
    text = f"{len(document.passing)} of {len(rows)} bundle(s) pass their gates"
    if document.smallest:
        smallest = rows[document.smallest]
        text += f"; smallest passing: {document.smallest} ({smallest.gzip_size_bytes / 1024:.1f} KB gzip)"
    if document.fastest:
        fastest = rows[document.fastest]
        text += (f"; fastest passing: {document.fastest} ({fastest.latency_ms.p50:.4g} ms p50"
                 + (", estimated)" if fastest.latency_estimated else ")"))
    return text + "."


def _latency_domain(results: list[RunResult]) -> tuple[tuple[float, float] | None, bool | None]:
    """One latency axis for every bundle's chart: (lo, hi) over all kept samples (or recorded min/max
    where none were kept), and whether it is a log axis; (None, None) when nothing was measured."""
    values: list[float] = []
    for result in results:
        if result.latency is None or result.latency.estimated:
            continue
        stats = result.latency.latency_ms
        values += [float(v) for v in stats.samples_ms or []] or \
            [float(v) for v in (stats.min, stats.max) if v is not None]
    if not values:
        return None, None
    lo, hi = min(values), max(values)
    return (lo, hi), lo > 0 and hi / lo > LOG_SPAN


def _multiples(results: list[RunResult], rows: list[BundleRow], draw) -> str:
    sections = []
    for index, (result, row) in enumerate(zip(results, rows)):
        sections.append(f'<section data-bundle="{escape(row.bundle)}"><h3>{escape(result.name)} on '
                        f'{escape(result.device)}</h3><p class="muted">{escape(row.bundle)}</p>'
                        f"{draw(index, result)}</section>")
    return f'<div class="multiples">{"".join(sections)}</div>'


def _short(label: str, width: int = 20) -> str:
    """A bar label that fits beside the chart (the full text is in the bar's tooltip)."""
    return label if len(label) <= width else label[:width - 1] + "…"


def _final_size_chart(rows: list[BundleRow]) -> str:
    bars = [(_short(Path(row.bundle).name), row.gzip_size_bytes, f"{row.gzip_size_bytes / 1024:.1f} KB gzip")
            for row in rows]
    chart = bar_chart("gzip size of each bundle's model.tflite (same format: like for like)", bars,
                      chart_id="size-by-bundle")
    return f"<figure>{chart}</figure>"


def comparison_html(document: BundleComparison, results: list[RunResult]) -> str:
    """The comparison page: verdict line, table, then latency and size small multiples on shared axes."""
    rows = document.bundles
    header, text_rows = table_rows(document)
    attrs = [f'data-bundle="{escape(row.bundle)}"' for row in rows]
    domain, log = _latency_domain(results)
    top = max((s.gzip_size_bytes or s.size_bytes for r in results for s in r.stages), default=1)
    latency = _multiples(results, rows, lambda i, r: latency_figure(r.latency, chart_id=f"latency-{i}",
                                                                    domain=domain, log=log))
    sizes = _multiples(results, rows, lambda i, r: f"<figure>{size_chart(r.stages, chart_id=f'size-{i}', top=top)}"
                                                   f"</figure>")
    body = (f"<h1>edgepack comparison: {len(rows)} bundle(s)</h1>\n"
            f'<p id="verdict">{escape(verdict_line(document))}</p>\n<h2>Bundles</h2>\n'
            + table("bundles", header, text_rows, row_header=True, numeric={4, 5, 6, 7}, css_class="wide",
                    row_attrs=attrs)
            + "\n<h2>Latency</h2>\n"
            + (f"<p>Every chart uses the same axis{' (log scale)' if log else ''}, so the bundles compare "
               "directly.</p>\n" if domain else "") + latency
            + "\n<h2>Size</h2>\n" + _final_size_chart(rows)
            + f"\n<p>Size per stage, on the same scale in every chart. {SIZE_NOTE}</p>\n" + sizes)
    return page(f"edgepack comparison: {', '.join(row.name for row in rows)}", body)


def write_comparison(paths: list[str | Path], output: str | Path | None = None) -> BundleComparison:
    """Compare the bundles at ``paths`` and write the page to ``output`` (default
    ``report-compare.html`` in the current folder); returns the comparison."""
    from edgepack.util.files import write_bytes_atomic

    document, results = compare(paths)
    target = Path(output) if output is not None else DEFAULT_PAGE
    if target.is_dir():
        raise OutputError(f"output {target} is a folder", hint="give a file name such as report-compare.html")
    document.page = str(target)
    write_bytes_atomic(target, comparison_html(document, results).encode("utf-8"))
    return document
