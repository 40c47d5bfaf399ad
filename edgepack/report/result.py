"""What a recipe run produces: per-stage figures, gate verdicts, and the whole result."""

from __future__ import annotations

from pydantic import BaseModel, Field

from edgepack.edgetpu.compiler import CompilerLog, Comparison
from edgepack.errors import GateFailed
from edgepack.inspection.result import DeviceFigures, EdgeTpuReadiness, FixIt, GpuReadiness
from edgepack.explore import Decisions
from edgepack.inspection.per_layer import CONVERTER, LayerRow
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


class EdgeTpuCheck(BaseModel):
    """An Edge TPU device's section of the result: the prediction, the partition point, the fix-it rows and,
    where ``edgetpu_compiler`` is installed, its log set beside the prediction."""

    prediction: EdgeTpuReadiness
    partition: str | None = None
    fixes: list[FixIt] = Field(default_factory=list)
    compiler: CompilerLog | None = None
    comparison: Comparison | None = None
    compiler_note: str | None = None


class GpuCheck(BaseModel):
    """A GPU device's section: the operators the delegate is predicted to leave on the CPU (no gate)."""

    prediction: GpuReadiness
    summary: str
    fixes: list[FixIt] = Field(default_factory=list)


class TfliteSummary(BaseModel):
    """What the bundled .tflite is: its quantization scheme and operator counts."""

    quantization: str | None = None
    full_integer: bool
    operators: dict[str, int] | None = None


class Provenance(BaseModel):
    """What produced the result (``util.provenance.provenance()``)."""

    edgepack: str
    libraries: dict[str, str] = Field(default_factory=dict)
    python: str
    platform: str
    created: str


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
    tflite: TfliteSummary
    edgetpu: EdgeTpuCheck | None = None
    gpu: GpuCheck | None = None
    mixed_precision: MixedPrecision | None = None
    sensitivity: Sensitivity | None = None
    layers: list[LayerRow] | None = None
    float_ops: list[str] = Field(default_factory=list, description="Operators the int8 conversion left computing "
                                 "in float (the converter has no int8 kernel for them), as OP#index.")
    explorer: list[str] = Field(default_factory=list, description="Model Explorer node-data files in the bundle "
                                "(explorer/*.json, relative to it): one overlay each.")
    provenance: Provenance

    def decisions(self) -> Decisions:
        """What the graph view overlays from this result: each layer's int8 error, accuracy control's choices,
        and the operators each layer became (from the per-layer rows)."""
        op_layers = {op.index: layer.name for layer in self.layers or [] if layer.name != CONVERTER for op in layer.ops}
        return Decisions(int8_errors=self.sensitivity.int8_errors() if self.sensitivity else None,
                         mixed_precision=self.mixed_precision, op_layers=op_layers or None)

    def fixes(self) -> list[FixIt]:
        """The fix-it rows of the device's accelerator (Edge TPU, then GPU)."""
        return [*(self.edgetpu.fixes if self.edgetpu else []), *(self.gpu.fixes if self.gpu else [])]

    def raise_for_gates(self) -> None:
        """Raise GateFailed (exit 7) naming the failed gates; the bundle path says where the report is."""
        failed = [g for g in self.gates if not g.passed]
        if failed:
            detail = "; ".join(g.note if g.gate == "edgetpu_ready" and g.note else
                               f"{g.gate} {'-' if g.value is None else f'{g.value:.3f}'} > {g.threshold} {g.unit}"
                               for g in failed)
            raise GateFailed(f"recipe {self.name}: {detail}",
                             hint=f"report kept in {self.bundle}; the previous bundle was not touched")
