"""What a recipe run produces: per-stage figures, gate verdicts, and the whole result."""

from __future__ import annotations

from pydantic import BaseModel, Field

from edgepack.errors import GateFailed
from edgepack.footprint.figures import DeviceFigures
from edgepack.inspection.per_layer import LayerRow
from edgepack.latency.result import LatencyResult
from edgepack.quantization.mixed import MixedPrecision
from edgepack.layer_sensitivity.analysis import Sensitivity
from edgepack.steps.artifacts import StageSummary


class GateVerdict(BaseModel):
    gate: str
    threshold: float
    value: float | None
    unit: str
    passed: bool
    note: str | None = None


class RunResult(BaseModel):
    """The result of ``edgepack run``; report.json holds exactly this."""

    name: str
    recipe: str
    device: str
    bundle: str
    passed: bool
    summary: str
    metric: str
    reference: float | None = None
    final: float | None = None
    drop: float | None = None
    drop_unit: str | None = None
    size_bytes: int
    gzip_size_bytes: int
    stages: list[StageSummary]
    gates: list[GateVerdict]
    latency: LatencyResult | None = None
    figures: DeviceFigures | None = None
    tflite: dict
    edgetpu: dict | None = None
    gpu: dict | None = None
    mixed_precision: MixedPrecision | None = None
    sensitivity: Sensitivity | None = None
    layers: list[LayerRow] | None = None
    float_ops: list[str] = Field(default_factory=list, description="Operators the int8 conversion left computing "
                                 "in float (the converter has no int8 kernel for them), as OP#index.")
    explorer: list[str] = Field(default_factory=list, description="Model Explorer node-data files in the bundle "
                                "(explorer/*.json, relative to it): one overlay each.")
    provenance: dict

    def raise_for_gates(self) -> None:
        """Raise GateFailed (exit 7) naming the failed gates; the bundle path says where the report is."""
        failed = [g for g in self.gates if not g.passed]
        if failed:
            detail = "; ".join(g.note if g.gate == "edgetpu_ready" and g.note else
                               f"{g.gate} {'-' if g.value is None else f'{g.value:.3f}'} > {g.threshold} {g.unit}"
                               for g in failed)
            raise GateFailed(f"recipe {self.name}: {detail}",
                             hint=f"report kept in {self.bundle}; the previous bundle was not touched")
