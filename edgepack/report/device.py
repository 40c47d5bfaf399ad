"""The report's "what the device pays" section: flash, RAM and latency per stage, the download beside.

Works on report.json's dicts (each stage's ``device`` figures), so a saved report renders the same.
"""

from __future__ import annotations

from html import escape

from edgepack.report.svg import bar_chart

FLASH_COLOR, RAM_COLOR, LATENCY_COLOR = "#3b7dd8", "#16a085", "#d35400"
NOTE = ("Flash is what the device stores and maps: the .tflite's bytes (a Keras stage's bar is the float32 "
        "weights a converted .tflite would hold, estimated). The gzip size beside it is the download, not what "
        "the device holds. RAM is the tensor arena the LiteRT interpreter plans (activations and kernel scratch, "
        "built-in kernels, no delegate); the peak memory of the measuring process is beside it where the model "
        "was profiled. Latency is the device profile's estimate, and the p50 measured where the model ran.")


def kb(value: float | None) -> str:
    return "-" if value is None else f"{value / 1024:.1f} KB"


def _flash_rows(stages: list[dict]) -> list[tuple[str, float, str]]:
    rows = []
    for stage in stages:
        figures = stage.get("device") or {}
        flash = figures.get("flash_bytes")
        what = "float32 weights, estimated" if figures.get("flash_estimated") else ".tflite"
        download = figures.get("download_bytes")
        text = "not known" if flash is None else f"{kb(flash)} {what}"
        if download is not None:
            text += f" · {kb(download)} gzip (download)"
        rows.append((stage["name"], flash or 0, text))
    return rows


def _ram_rows(stages: list[dict]) -> list[tuple[str, float, str]]:
    rows = []
    for stage in stages:
        figures = stage.get("device") or {}
        arena, peak = figures.get("arena_bytes"), figures.get("peak_memory_mb")
        text = "no arena (not a .tflite)" if arena is None else f"{kb(arena)} arena"
        if peak is not None:
            text += f" · {peak:.1f} MB process peak (measured)"
        rows.append((stage["name"], arena or 0, text))
    return rows


def _latency_rows(stages: list[dict]) -> list[tuple[str, float, str]]:
    rows = []
    for stage in stages:
        figures = stage.get("device") or {}
        estimated, measured = figures.get("latency_estimated_ms"), figures.get("latency_measured_ms")
        parts = []
        if estimated is not None:
            parts.append(f"{estimated:.3g} ms estimated ({figures.get('latency_device')})")
        if measured is not None:
            parts.append(f"{measured:.3g} ms p50 measured ({figures.get('latency_where')})")
        rows.append((stage["name"], measured if measured is not None else estimated or 0,
                     " · ".join(parts) or "not estimated (not a .tflite)"))
    return rows


def device_figure(result: dict) -> str:
    """Three bar charts over the stages (flash, RAM, latency) with the note on what each one is."""
    stages = result["stages"]
    if not any(stage.get("device") for stage in stages):
        return '<p class="no-chart" id="device-none">No device figures in this report.</p>'
    charts = [bar_chart("Flash: bytes the device stores", _flash_rows(stages), chart_id="device-flash",
                        color=FLASH_COLOR),
              bar_chart("RAM: tensor arena", _ram_rows(stages), chart_id="device-ram", color=RAM_COLOR)]
    if any((s.get("device") or {}).get("latency_estimated_ms") is not None
           or (s.get("device") or {}).get("latency_measured_ms") is not None for s in stages):
        charts.append(bar_chart("Latency of one inference", _latency_rows(stages), chart_id="device-latency",
                                color=LATENCY_COLOR))
    return f'<figure id="device-pays">{"".join(charts)}<figcaption>{escape(NOTE)}</figcaption></figure>'


def device_rows(result: dict) -> list[tuple[str, str, str, str, str]]:
    """(stage, flash, RAM, MACs, latency) per stage, as text, for the Markdown report."""
    rows = []
    for stage in result["stages"]:
        figures = stage.get("device") or {}
        macs = figures.get("macs")
        latency = next((text for _, _, text in _latency_rows([stage])), "-")
        rows.append((stage["name"], next(text for _, _, text in _flash_rows([stage])),
                     next(text for _, _, text in _ram_rows([stage])), "-" if macs is None else f"{macs:,}", latency))
    return rows
