"""manifest.json: what the bundle holds and what made it, as a typed model."""

from __future__ import annotations

from pydantic import BaseModel

from edgepack.devices.schema import DeviceProfile
from edgepack.inspection.result import TensorIO, TfliteInspection
from edgepack.latency.result import LatencyResult
from edgepack.report.result import GateVerdict, Provenance, RunResult
from edgepack.steps.artifacts import ModelArtifact


class SourceModel(BaseModel):
    """The model the recipe started from: by its path relative to the recipe file, and its sha256."""

    path: str
    sha256: str


class BundledModel(BaseModel):
    """The .tflite in the bundle, with its inputs and outputs (name, shape, dtype, scale, zero point)."""

    file: str = "model.tflite"
    sha256: str
    size_bytes: int
    gzip_size_bytes: int
    quantization: str | None = None
    inputs: list[TensorIO]
    outputs: list[TensorIO]


class Metrics(BaseModel):
    metric: str
    reference: float | None = None
    final: float | None = None
    drop: float | None = None
    drop_unit: str | None = None


class Manifest(BaseModel):
    """manifest.json. ``steps`` are the resolved steps, each with every parameter that shaped the result."""

    name: str
    description: str
    provenance: Provenance
    source_model: SourceModel
    device: DeviceProfile
    steps: list[dict]
    model: BundledModel
    metrics: Metrics
    latency: LatencyResult | None = None
    gates: list[GateVerdict]
    passed: bool


def build_manifest(loaded, result: RunResult, source: ModelArtifact, final: ModelArtifact, tflite: TfliteInspection,
                   steps: list[dict]) -> Manifest:
    """The manifest of a run of ``loaded`` (a LoadedRecipe) from its typed result and artifacts;
    ``steps`` are the effective params of every step."""
    return Manifest(
        name=loaded.recipe.name, description=loaded.recipe.description, provenance=result.provenance,
        source_model=SourceModel(path=loaded.relative_to_recipe(source.path), sha256=source.sha256),
        device=loaded.device, steps=steps,
        model=BundledModel(sha256=final.sha256, size_bytes=final.size_bytes, gzip_size_bytes=final.gzip_size_bytes,
                           quantization=tflite.quantization, inputs=tflite.inputs, outputs=tflite.outputs),
        metrics=Metrics(metric=result.metric, reference=result.reference, final=result.final, drop=result.drop,
                        drop_unit=result.drop_unit),
        latency=_without_samples(result.latency), gates=result.gates, passed=result.passed)


def _without_samples(latency: LatencyResult | None) -> LatencyResult | None:
    """The manifest keeps the statistics; the timing samples live in report.json only."""
    if latency is None or latency.latency_ms.samples_ms is None:
        return latency
    return latency.model_copy(update={"latency_ms": latency.latency_ms.model_copy(update={"samples_ms": None})})
