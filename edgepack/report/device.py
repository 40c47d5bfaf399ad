"""The report's "what the device pays" section: flash, RAM and latency per stage, the download beside.

Drawn from each stage's ``device`` figures (:class:`~edgepack.inspection.result.DeviceFigures`).
"""

from __future__ import annotations

from html import escape

from edgepack.inspection.result import DeviceFigures
from edgepack.report.svg import bar_chart
from edgepack.steps.artifacts import StageSummary

FLASH_COLOR, RAM_COLOR, LATENCY_COLOR = "#3b7dd8", "#16a085", "#d35400"
NOTE = ("Flash is what the device stores and maps: the .tflite's bytes (a Keras stage's bar is the float32 "
        "weights a converted .tflite would hold, estimated). The gzip size beside it is the download, not what "
        "the device holds. RAM is the tensor arena the LiteRT interpreter plans (activations and kernel scratch, "
        "built-in kernels, no delegate); the peak memory of the measuring process is beside it where the model "
        "was profiled. Latency is the device profile's estimate, and the p50 measured where the model ran.")


def kb(value: float | None) -> str:
    return "-" if value is None else f"{value / 1024:.1f} KB"


NONE = DeviceFigures()


def _flash_row(stage: StageSummary) -> tuple[str, float, str]:
    figures = stage.device or NONE
    flash, download = figures.flash_bytes, figures.download_bytes
    what = "float32 weights, estimated" if figures.flash_estimated else ".tflite"
    text = "not known" if flash is None else f"{kb(flash)} {what}"
    if download is not None:
        text += f" · {kb(download)} gzip (download)"
    return stage.name, flash or 0, text


def _ram_row(stage: StageSummary) -> tuple[str, float, str]:
    figures = stage.device or NONE
    arena, peak = figures.arena_bytes, figures.peak_memory_mb
    text = "no arena (not a .tflite)" if arena is None else f"{kb(arena)} arena"
    if peak is not None:
        text += f" · {peak:.1f} MB process peak (measured)"
    return stage.name, arena or 0, text


def _latency_row(stage: StageSummary) -> tuple[str, float, str]:
    figures = stage.device or NONE
    estimated, measured = figures.latency_estimated_ms, figures.latency_measured_ms
    parts = []
    if estimated is not None:
        parts.append(f"{estimated:.3g} ms estimated ({figures.latency_device})")
    if measured is not None:
        parts.append(f"{measured:.3g} ms p50 measured ({figures.latency_where})")
    return (stage.name, measured if measured is not None else estimated or 0,
            " · ".join(parts) or "not estimated (not a .tflite)")


def device_figure(stages: list[StageSummary]) -> str:
    """Three bar charts over the stages (flash, RAM, latency) with the note on what each one is."""
    if not any(stage.device for stage in stages):
        return '<p class="no-chart" id="device-none">No device figures in this report.</p>'
    charts = [bar_chart("Flash: bytes the device stores", [_flash_row(s) for s in stages], chart_id="device-flash",
                        color=FLASH_COLOR),
              bar_chart("RAM: tensor arena", [_ram_row(s) for s in stages], chart_id="device-ram", color=RAM_COLOR)]
    if any(s.device and (s.device.latency_estimated_ms is not None or s.device.latency_measured_ms is not None)
           for s in stages):
        charts.append(bar_chart("Latency of one inference", [_latency_row(s) for s in stages],
                                chart_id="device-latency", color=LATENCY_COLOR))
    return f'<figure id="device-pays">{"".join(charts)}<figcaption>{escape(NOTE)}</figcaption></figure>'


def device_rows(stages: list[StageSummary]) -> list[tuple[str, str, str, str, str]]:
    """(stage, flash, RAM, MACs, latency) per stage, as text, for the Markdown report."""
    return [(stage.name, _flash_row(stage)[2], _ram_row(stage)[2],
             "-" if stage.device is None or stage.device.macs is None else f"{stage.device.macs:,}",
             _latency_row(stage)[2]) for stage in stages]
