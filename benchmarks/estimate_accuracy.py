"""Benchmark: ``edgepack profile --estimate`` ÷ the published figure (Pi 4, Coral) and ÷ measured (this host).

MobileNet v1 and v2 (keras.applications, weights=None, batch 1; float32, int8 with float I/O, and
int8 with int8 I/O for the Edge TPU, as Coral's published models are) are estimated with every
device profile that has an anchor for them, and with ``host-cpu`` against a measurement taken here
and now with ``edgepack profile`` (1 and 2 threads). Goal: every ratio within ±30% (0.70–1.30).
The Coral profiles' VGG16 and ResNet-50 anchors (weights streamed beyond the on-chip cache) use the
models of ``edgetpu_streaming.py``.

The device figures were fitted to these same published anchors, so those rows check the cost model
and the fit, not an independent prediction — except the Coral ResNet-50 rows, which nothing was
fitted to; the host rows compare with a fresh measurement.

    .venv/bin/python benchmarks/estimate_accuracy.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _mobilenet import ROOT, mobilenet_tflite  # noqa: E402
from edgetpu_streaming import MODELS as STREAMING_MODELS, edgetpu_tflite  # noqa: E402

sys.path.insert(0, str(ROOT))
GOAL = (0.70, 1.30)


def estimate(model: Path, device: str, threads: int | None = None) -> float:
    from edgepack.latency import LatencyConfig, profile

    return profile(LatencyConfig(model=model, device=device, estimate=True, threads=threads)).latency_ms["p50"]


def measure(model: Path, threads: int) -> float:
    from edgepack.latency import LatencyConfig, profile

    return profile(LatencyConfig(model=model, threads=threads, runs=50, warmup=5, min_seconds=2)).latency_ms["p50"]


def row(device: str, model: str, mode: str, threads, figure: float, against: str, value: float) -> bool:
    ratio = value / figure
    ok = GOAL[0] <= ratio <= GOAL[1]
    print(f"{device:<18}{model:<14}{mode:<9}{str(threads or '-'):>7}{figure:>10.2f}  {against:<10}"
          f"{value:>10.2f}{ratio:>8.2f}  {'ok' if ok else 'MISS'}", flush=True)
    return ok


def main() -> None:
    from edgepack.devices import list_devices

    print(f"{'device':<18}{'model':<14}{'mode':<9}{'threads':>7}{'figure ms':>10}  {'against':<10}"
          f"{'estimate':>10}{'ratio':>8}")
    results = []
    for device in list_devices():
        if device.estimate is None:
            continue
        for anchor in device.estimate.anchors:
            if device.name == "host-cpu":
                continue  # checked against a fresh measurement below
            mode = anchor.mode.value
            if device.accelerator.value == "edgetpu" and mode == "int8":
                mode = "int8io"  # Coral's published models have integer input and output
            model = (edgetpu_tflite(anchor.model) if anchor.model in STREAMING_MODELS
                     else mobilenet_tflite(anchor.model, mode))
            value = estimate(model, device.name, anchor.threads)
            results.append(row(device.name, anchor.model, mode, anchor.threads, anchor.ms, "published", value))
    for arch in ("mobilenet_v1", "mobilenet_v2"):
        for mode in ("float32", "int8"):
            model = mobilenet_tflite(arch, mode)
            for threads in (1, 2):
                measured = measure(model, threads)
                results.append(row("host-cpu", arch, mode, threads, measured, "measured",
                                   estimate(model, "host-cpu", threads)))
    print(f"{sum(results)} of {len(results)} within ±30%")


if __name__ == "__main__":
    main()
