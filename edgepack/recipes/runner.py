"""``edgepack run``: a recipe's steps in order, evaluated, profiled, gated, and bundled."""

from __future__ import annotations

import gzip
import json
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict

from edgepack.bundle.checksums import write_sha256sums
from edgepack.bundle.staging import failed_path, publish, staging_folder
from edgepack.evaluate.metrics import compute, drop as metric_drop
from edgepack.loading.data import Dataset, DataSpec, fit_to_input, load_data
from edgepack.recipes.accelerators import edgetpu_stage, gpu_stage
from edgepack.recipes.gates import check_gates
from edgepack.recipes.loader import LoadedRecipe, load_recipe
from edgepack.recipes.profiling import profile_for_recipe
from edgepack.recipes.result import RunResult, StageResult
from edgepack.recipes.schema import ClusterStep, PruneStep, QuantizeStep
from edgepack.report.render import write_reports
from edgepack.util.files import sha256_file
from edgepack.util.provenance import provenance

Progress = Callable[[str], None]
# Accelerators that need static shapes: a dynamic batch adds int32 SHAPE/PACK ops that the Edge TPU
# rejects and the GPU delegate leaves on the CPU (measured on the digits CNN: 3 of 10 ops delegated).
STATIC_BATCH_ACCELERATORS = {"edgetpu", "gpu", "npu"}


class RunOptions(BaseModel):
    """The command line's view of a run: the recipe and what overrides it."""

    model_config = ConfigDict(extra="forbid")

    recipe: Path
    model: Path | None = None
    train: str | None = None
    val: str | None = None
    device: str | None = None
    output: Path | None = None
    estimate: bool = False
    trust_model: bool = False
    trust_code: bool = False


class _Context:
    """What the steps share: the loaded recipe, data specs, the val set, and a work folder."""

    def __init__(self, loaded: LoadedRecipe, options: RunOptions, work: Path, progress: Progress):
        self.loaded, self.options, self.work, self.say = loaded, options, work, progress
        recipe = loaded.recipe
        keys = dict(x_key=recipe.data.x_key, y_key=recipe.data.y_key, trust_code=options.trust_code)
        self.train = DataSpec(source=recipe.data.train, **keys) if recipe.data.train else None
        self.val_spec = DataSpec(source=recipe.data.val, **keys) if recipe.data.val else None
        self.val: Dataset | None = None

    def score_keras(self, path: Path) -> float | None:
        if self.val_spec is None:
            return None
        from edgepack.loading.model import load_model

        model = load_model(path, trust_model=self.options.trust_model)
        if self.val is None:
            self.val = fit_to_input(load_data(self.val_spec, input_shape=model.input_shape), model.input_shape,
                                    "float32", model_name=str(path))
            if self.val.y is None:
                from edgepack.errors import DataError

                raise DataError(f"{self.val.source} has no targets", hint="the gates need labelled val data")
        return compute(self.loaded.recipe.metric, self.val.y, model.predict(self.val.x), self.val.source)

    def score_tflite(self, path: Path) -> float | None:
        if self.val is None:
            return None
        from edgepack.runtime.runner import TfliteRunner

        runner = TfliteRunner(path)
        return compute(self.loaded.recipe.metric, self.val.y, runner.predict(self.val.x), self.val.source)


def _stage(name: str, path: Path, metric: float | None, started: float) -> StageResult:
    data = path.read_bytes() if path.is_file() else b""
    return StageResult(name=name, size_bytes=path.stat().st_size if path.is_file() else 0,
                       gzip_size_bytes=len(gzip.compress(data, 9, mtime=0)) if data else None,
                       metric=metric, seconds=time.perf_counter() - started)


def _run_step(ctx: _Context, step, current: Path, index: int) -> tuple[Path, str]:
    common = dict(trust_model=ctx.options.trust_model)
    if isinstance(step, PruneStep):
        from edgepack.steps.prune import PruneConfig, prune

        out = ctx.work / f"{index}-pruned.keras"
        prune(PruneConfig(model=current, data=ctx.train, output=out, val=ctx.val_spec,
                          **step.prune.model_dump(), **common))
        return out, f"prune {step.prune.sparsity:g}"
    if isinstance(step, ClusterStep):
        from edgepack.steps.cluster import ClusterConfig, cluster

        out = ctx.work / f"{index}-clustered.keras"
        cluster(ClusterConfig(model=current, data=ctx.train, output=out, val=ctx.val_spec,
                              **step.cluster.model_dump(), **common))
        return out, f"cluster {step.cluster.clusters}"
    from edgepack.steps.quantize import QuantizeConfig, quantize

    params = step.quantize
    out = ctx.work / "model.tflite"
    quantize(QuantizeConfig(model=current, output=out, mode=params.mode, io=params.io, samples=params.samples,
                            calibration=ctx.train if params.mode.needs_calibration else None,
                            static_batch=ctx.loaded.device.accelerator.value in STATIC_BATCH_ACCELERATORS, **common))
    return out, f"{params.mode.value} .tflite"


def _manifest(loaded: LoadedRecipe, result: RunResult, source_sha: str, tflite: dict) -> dict:
    return {"name": loaded.recipe.name, "description": loaded.recipe.description,
            "provenance": result.provenance,
            "source_model": {"path": loaded.recipe.model, "sha256": source_sha},
            "device": loaded.device.model_dump(mode="json"),
            "model": {"file": "model.tflite", "sha256": tflite["sha256"], "size_bytes": tflite["size_bytes"],
                      "gzip_size_bytes": tflite["gzip_size_bytes"], "quantization": tflite.get("quantization"),
                      "inputs": tflite["inputs"], "outputs": tflite["outputs"]},
            "metrics": {"metric": result.metric, "reference": result.reference, "final": result.final,
                        "drop": result.drop, "drop_unit": result.drop_unit},
            "latency": result.latency, "gates": [g.model_dump() for g in result.gates], "passed": result.passed}


def run_recipe(options: RunOptions, progress: Progress = lambda message: None) -> RunResult:
    """Run the recipe end to end; write the bundle (or ``<bundle>.failed`` when a gate fails)."""
    loaded = load_recipe(options.recipe, model=options.model, train=options.train, val=options.val,
                         device=options.device, output=options.output)
    recipe, target = loaded.recipe, loaded.output
    with staging_folder(target) as stage, tempfile.TemporaryDirectory(prefix="edgepack-work-") as work_dir:
        ctx = _Context(loaded, options, Path(work_dir), progress)
        steps = recipe.steps
        total = len(steps) + 3
        started = time.perf_counter()
        progress(f"[1/{total}] float reference: {recipe.metric.value} on {recipe.data.val or 'no val data'}")
        source = Path(recipe.model)
        reference = ctx.score_keras(source)
        stages = [_stage("float (Keras)", source, reference, started)]
        current = source
        for index, step in enumerate(steps, start=1):
            kind = next(k for k in ("prune", "cluster", "quantize") if hasattr(step, k))
            progress(f"[{index + 1}/{total}] {kind}")
            started = time.perf_counter()
            current, label = _run_step(ctx, step, current, index)
            is_tflite = isinstance(step, QuantizeStep)
            score = ctx.score_tflite(current) if is_tflite else ctx.score_keras(current)
            stages.append(_stage(label, current, score, started))
        final_path = stage / "model.tflite"
        final_path.write_bytes(current.read_bytes())
        final = stages[-1].metric
        progress(f"[{total - 1}/{total}] profile on {loaded.device.name}")
        latency = profile_for_recipe(final_path, loaded.device, estimate=options.estimate,
                                     device_ref=loaded.device_ref)
        from edgepack.inspect.tflite_model import inspect_tflite

        tflite = inspect_tflite(final_path)
        drop = None if reference is None or final is None else metric_drop(
            recipe.metric, reference, final, relative=recipe.gates.relative)
        drop_unit = "percent of reference" if recipe.gates.relative else recipe.metric.drop_unit
        gates = check_gates(recipe.gates, drop=drop, drop_unit=drop_unit, latency=latency,
                            size_bytes=tflite["size_bytes"])
        edgetpu, edgetpu_gates = edgetpu_stage(stage, final_path, tflite, loaded.device)
        gates += edgetpu_gates
        passed = all(g.passed for g in gates)
        bundle = target if passed else failed_path(target)
        result = RunResult(
            name=recipe.name, recipe=str(loaded.path), device=loaded.device.name, bundle=str(bundle), passed=passed,
            summary=f"{len(gates)} gate(s), {sum(not g.passed for g in gates)} failed", metric=recipe.metric.value,
            reference=reference, final=final, drop=drop, drop_unit=drop_unit, size_bytes=tflite["size_bytes"],
            gzip_size_bytes=tflite["gzip_size_bytes"], stages=stages, gates=gates, latency=latency,
            tflite={k: tflite.get(k) for k in ("quantization", "full_integer", "operators")}, edgetpu=edgetpu,
            gpu=gpu_stage(tflite, loaded.device),
            provenance=provenance())
        progress(f"[{total}/{total}] write bundle {bundle}")
        (stage / "manifest.json").write_text(json.dumps(
            _manifest(loaded, result, sha256_file(source), tflite), indent=2, default=str) + "\n")
        (stage / "recipe.resolved.yaml").write_text(
            yaml.safe_dump(loaded.resolved_dump(), sort_keys=False, allow_unicode=True))
        write_reports(stage, result.model_dump(mode="json"))
        write_sha256sums(stage)
        publish(stage, bundle)
    return result
