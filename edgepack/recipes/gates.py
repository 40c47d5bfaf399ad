"""The one judge of a candidate: its figures against the recipe's gates, for ``run`` and ``tune`` alike."""

from __future__ import annotations

from pydantic import BaseModel

from edgepack.bundle.result import GateVerdict
from edgepack.evaluation.metrics import drop as metric_drop
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


def judge(recipe: Recipe, final: ModelArtifact, reference: float | None, *, edgetpu: dict | None = None) -> Outcome:
    """``final`` (the last stage) against ``recipe``'s gates, its metric drop measured from ``reference``
    (the source model's metric). ``edgetpu`` is the .tflite's Edge TPU readiness (``inspect``'s), given
    for an Edge TPU device: it adds the ``edgetpu_ready`` gate."""
    relative = recipe.gates.relative
    drop = None if reference is None or final.metric is None else metric_drop(
        recipe.metric, reference, final.metric, relative=relative)
    drop_unit = "percent of reference" if relative else recipe.metric.drop_unit
    verdicts = check_gates(recipe.gates, drop=drop, drop_unit=drop_unit, latency=final.latency,
                           size_bytes=final.size_bytes)
    if recipe.gates.max_macs is not None:
        verdicts.append(macs_gate(recipe.gates.max_macs, final))
    if edgetpu is not None:
        verdicts.append(edgetpu_gate(edgetpu))
    return Outcome(metric=recipe.metric.value, reference=reference, final=final.metric, drop=drop,
                   drop_unit=drop_unit, relative=relative, size_bytes=final.size_bytes,
                   gzip_size_bytes=final.gzip_size_bytes, latency=final.latency, gates=verdicts)


def check_gates(gates: Gates, *, drop: float | None, drop_unit: str | None, latency: LatencyResult | None,
                size_bytes: int) -> list[GateVerdict]:
    """One verdict per figure gate the recipe sets."""
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
        size_kb = size_bytes / 1024
        verdicts.append(GateVerdict(gate="max_size_kb", threshold=gates.max_size_kb, value=size_kb, unit="KB",
                                    passed=size_kb <= gates.max_size_kb))
    return verdicts


def macs_gate(threshold: float, final: ModelArtifact) -> GateVerdict:
    """The ``max_macs`` gate: the MACs of one inference, counted on the final .tflite's operators."""
    if final.path.suffix != ".tflite":
        return GateVerdict(gate="max_macs", threshold=threshold, value=None, unit="MACs", passed=False,
                           note="MACs are counted on a .tflite; end the recipe with quantize or qat")
    from edgepack.latency.op_counts import model_work

    macs = float(sum(op.macs for op in model_work(final.path).ops))
    return GateVerdict(gate="max_macs", threshold=threshold, value=macs, unit="MACs", passed=macs <= threshold)


def edgetpu_gate(readiness: dict) -> GateVerdict:
    """The ``edgetpu_ready`` gate from the .tflite's predicted Edge TPU mapping."""
    note = "; ".join(readiness.get("reasons", [])[:2]) or None
    return GateVerdict(gate="edgetpu_ready", threshold=1, value=1.0 if readiness.get("ready") else 0.0,
                       unit="(1 = every op maps to the Edge TPU)", passed=bool(readiness.get("ready")), note=note)
