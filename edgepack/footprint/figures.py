"""What the device pays for one model: flash, RAM, MACs and latency, beside the download (gzip).

A .tflite's figures are read from the file itself: its bytes (flash), the tensor arena the LiteRT
interpreter plans for it (RAM), the MACs of its operators, the latency the device profile's formula
estimates and, where the model was profiled, the latency and peak process memory measured. A Keras
stage is not what a device loads: its flash is the float32 weights a converted .tflite would hold
(estimated, labelled so), its MACs are the layers', and it has no arena of its own.
"""

from __future__ import annotations

from pathlib import Path

from edgepack.devices.schema import DeviceProfile
from edgepack.errors import EdgepackError
from edgepack.inspection.result import DeviceFigures, KerasInspection
from edgepack.latency.result import LatencyResult


def tflite_figures(path: str | Path, device: DeviceProfile | None = None,
                   latency: LatencyResult | None = None) -> DeviceFigures:
    """The figures of the .tflite at ``path``; ``device`` adds the estimate (when its profile has
    figures), ``latency`` (a ``profile`` result) the measured latency and memory."""
    import gzip

    from edgepack.inspection.arena import tensor_arena
    from edgepack.latency.op_counts import model_work
    from edgepack.runtime.interpreter import read_model_bytes

    path = Path(path)
    data = read_model_bytes(path)
    arena = tensor_arena(path)
    figures = DeviceFigures(flash_bytes=len(data), download_bytes=len(gzip.compress(data, 9, mtime=0)),
                            arena_bytes=arena.bytes, notes=[f"RAM: {arena.note}"])
    try:
        work = model_work(path, data)
    except EdgepackError as exc:  # operators the schema reader cannot count: flash and RAM still stand
        return with_measured(figures.model_copy(update={"notes": [*figures.notes, f"MACs not counted: "
                                                                                  f"{exc.message}"]}), latency)
    figures = figures.model_copy(update={"macs": int(sum(op.macs for op in work.ops))})
    return with_measured(_with_estimate(figures, work, device), latency)


def _with_estimate(figures: DeviceFigures, work, device: DeviceProfile | None) -> DeviceFigures:
    if device is None or device.estimate is None:
        return figures
    from edgepack.latency.estimate import estimate_latency

    try:
        estimate = estimate_latency(work, device)
    except EdgepackError as exc:  # a profile without a figure for this arithmetic
        return figures.model_copy(update={"notes": [*figures.notes, f"latency not estimated: {exc.message}"]})
    return figures.model_copy(update={"latency_estimated_ms": round(estimate.latency_ms, 4),
                                      "latency_device": device.name})


def with_measured(figures: DeviceFigures, latency: LatencyResult | None) -> DeviceFigures:
    """``figures`` with what ``profile`` measured (nothing when ``latency`` is None or an estimate)."""
    if latency is None or latency.estimated:
        return figures
    return figures.model_copy(update={"latency_measured_ms": latency.p50, "latency_where": latency.where,
                                      "peak_memory_mb": latency.peak_memory_mb})


def keras_figures(report: KerasInspection) -> DeviceFigures:
    """The figures of a Keras model from its ``inspect`` report: float32 weight bytes (as a .tflite would
    hold them) and MACs."""
    return DeviceFigures(flash_bytes=report.float32_size_bytes, flash_estimated=True, macs=report.macs,
                         notes=["flash: the float32 weights a converted .tflite would hold (estimated); "
                                "a Keras model has no tensor arena of its own"])
