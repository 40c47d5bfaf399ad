"""The one judge of a candidate: its figures against the recipe's gates, for ``run`` and ``tune`` alike."""

from __future__ import annotations

from pydantic import BaseModel

from edgepack.report.result import GateVerdict
from edgepack.devices.schema import DeviceProfile
from edgepack.evaluation.metrics import drop as metric_drop
from edgepack.footprint.figures import tflite_figures
from edgepack.inspection.result import DeviceFigures, EdgeTpuReadiness
from edgepack.latency.result import LatencyResult
from edgepack.recipes.schema import Gates, Recipe
from edgepack.steps.artifacts import ModelArtifact

UNMEASURED = 1e9  # how far a gate whose figure is missing (no val data, no latency) is from passing


class Outcome(BaseModel):
    """A candidate's figures and its verdict on every gate: what ``run`` reports and ``tune`` optimises."""

    metric: str
    reference: float | None = None
    final: float | None = None
    drop: float | None = None
    drop_unit: str | None = None
    relative: bool = False
    size_bytes: int
    gzip_size_bytes: int
    latency: LatencyResult | None = None
    figures: DeviceFigures | None = None
    gates: list[GateVerdict]

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def latency_p50(self) -> float | None:
        return self.latency.p50 if self.latency is not None else None

    def constraints(self) -> list[float]:
        """One number per gate, <= 0 when it passes (Optuna's convention): how far the figure is past the
        threshold, or 1 for a failed readiness gate."""
        values = []
        for gate in self.gates:
            if gate.gate == "edgetpu_ready":
                values.append(0.0 if gate.passed else 1.0)
            else:
                values.append(UNMEASURED if gate.value is None else gate.value - gate.threshold)
        return values or [0.0]


def judge(recipe: Recipe, final: ModelArtifact, reference: float | None, *, edgetpu: EdgeTpuReadiness | None = None,
          device: DeviceProfile | None = None) -> Outcome:
    """``final`` (the last stage) against ``recipe``'s gates, its metric drop measured from ``reference``
    (the source model's metric). ``edgetpu`` is the .tflite's Edge TPU readiness (``inspect``'s), given
    for an Edge TPU device: it adds the ``edgetpu_ready`` gate. ``device`` (the recipe's) estimates the
    latency among the final model's device figures (flash, RAM, MACs)."""
    relative = recipe.gates.relative
    drop = None if reference is None or final.metric is None else metric_drop(
        recipe.metric, reference, final.metric, relative=relative)
    drop_unit = "percent of reference" if relative else recipe.metric.drop_unit
    figures = tflite_figures(final.path, device, final.latency) if final.path.suffix == ".tflite" else None
    verdicts = check_gates(recipe.gates, drop=drop, drop_unit=drop_unit, latency=final.latency,
                           gzip_bytes=final.gzip_size_bytes)
    verdicts += device_gates(_with_device_limits(recipe.gates, device), figures)
    if edgetpu is not None:
        verdicts.append(edgetpu_gate(edgetpu))
    return Outcome(metric=recipe.metric.value, reference=reference, final=final.metric, drop=drop,
                   drop_unit=drop_unit, relative=relative, size_bytes=final.size_bytes,
                   gzip_size_bytes=final.gzip_size_bytes, latency=final.latency, figures=figures, gates=verdicts)


def check_gates(gates: Gates, *, drop: float | None, drop_unit: str | None, latency: LatencyResult | None,
                gzip_bytes: int) -> list[GateVerdict]:
    """One verdict per gate on the metric, latency and download size the recipe sets."""
    verdicts = []
    if gates.max_accuracy_drop is not None:
        verdicts.append(GateVerdict(gate="max_accuracy_drop", threshold=gates.max_accuracy_drop, value=drop,
                                    unit=drop_unit or "", passed=drop is not None and drop <= gates.max_accuracy_drop))
    if gates.max_latency_ms is not None:
        p50 = latency.p50 if latency else None
        note = None
        if latency and latency.estimated:
            note = f"estimated: {latency.estimate_source or 'from the device profile'}"
        verdicts.append(GateVerdict(gate="max_latency_ms", threshold=gates.max_latency_ms, value=p50, unit="ms p50",
                                    passed=p50 is not None and p50 <= gates.max_latency_ms, note=note))
    if gates.max_size_kb is not None:
        verdicts.append(_at_most("max_size_kb", gates.max_size_kb, gzip_bytes / 1024, "KB gzip (the download)"))
    return verdicts


NOT_TFLITE = "counted on a .tflite; end the recipe with quantize or qat"


def _with_device_limits(gates: Gates, device: DeviceProfile | None) -> Gates:
    """The recipe's gates, with the device profile's flash and RAM limits where the recipe sets none."""
    if device is None:
        return gates
    update = {key: getattr(device, limit) for key, limit in (("max_flash_kb", "flash_kb"), ("max_ram_kb", "ram_kb"))
              if getattr(gates, key) is None and getattr(device, limit) is not None}
    return gates.model_copy(update=update) if update else gates


def device_gates(gates: Gates, figures: DeviceFigures | None) -> list[GateVerdict]:
    """The gates on what the device pays, judged on the final .tflite's figures (``None``: not a .tflite)."""
    wanted = [("max_flash_kb", gates.max_flash_kb, "KB .tflite (flash)",
               lambda f: f.flash_bytes / 1024 if f.flash_bytes is not None else None),
              ("max_ram_kb", gates.max_ram_kb, "KB tensor arena (RAM)",
               lambda f: f.ram_bytes / 1024 if f.ram_bytes is not None else None),
              ("max_macs", gates.max_macs, "MACs", lambda f: float(f.macs) if f.macs is not None else None)]
    verdicts = []
    for gate, threshold, unit, value_of in wanted:
        if threshold is None:
            continue
        if figures is None:
            verdicts.append(GateVerdict(gate=gate, threshold=threshold, value=None, unit=unit, passed=False,
                                        note=NOT_TFLITE))
            continue
        verdicts.append(_at_most(gate, threshold, value_of(figures), unit))
    return verdicts


def _at_most(gate: str, threshold: float, value: float | None, unit: str) -> GateVerdict:
    return GateVerdict(gate=gate, threshold=threshold, value=value, unit=unit,
                       passed=value is not None and value <= threshold,
                       note=None if value is not None else "not measured for this model")


def edgetpu_gate(readiness: EdgeTpuReadiness) -> GateVerdict:
    """The ``edgetpu_ready`` gate from the .tflite's predicted Edge TPU mapping."""
    note = "; ".join(readiness.reasons[:2]) or None
    return GateVerdict(gate="edgetpu_ready", threshold=1, value=1.0 if readiness.ready else 0.0,
                       unit="(1 = every op maps to the Edge TPU)", passed=readiness.ready, note=note)
