"""``edgepack run``: a recipe's planned steps in order, then gates and the bundle.

Each step takes the previous artifact and returns a new one (typed); each model is hashed, measured
and scored once, and the device profile is the one the loader read.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict

from edgepack.bundle.assemble import bundle_writes, stage_model, write_bundle
from edgepack.bundle.manifest import build_manifest
from edgepack.bundle.staging import failed_bundle_path, publish, staging_folder
from edgepack.recipes.accelerators import edgetpu_stage, gpu_stage, is_edgetpu
from edgepack.recipes.gates import judge
from edgepack.recipes.loader import LoadedRecipe, load_recipe
from edgepack.inspection.result import KerasInspection, TfliteInspection
from edgepack.report.result import RunResult, TfliteSummary
from edgepack.steps.artifacts import ModelArtifact, StageSummary
from edgepack.steps.artifacts import ModelKind
from edgepack.steps.context import ArtifactCache, StepContext
from edgepack.steps.scoring import Scorer
from edgepack.util.provenance import provenance

Say = Callable[[str], None]


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


def make_context(loaded: LoadedRecipe, work: Path, *, trust_model: bool = False, trust_code: bool = False,
                 estimate: bool = False, say: Say = lambda message: None, training_progress: Any = None,
                 cache_dir: Path | None = None, scorer: Scorer | None = None,
                 latencies: dict | None = None) -> StepContext:
    """The context a recipe's steps share: its data, device, scorer, work folder and cache. ``scorer`` and
    ``latencies`` share scores and latencies between contexts (the trials of a study score and measure each
    distinct model once)."""
    data = loaded.recipe.data
    train, val = _data_specs(loaded, trust_code)
    return StepContext(work=work, setting=loaded.setting, train=train, val=val, trust_model=trust_model,
                       estimate=estimate, device_ref=loaded.device_ref, say=say, training_progress=training_progress,
                       cache=ArtifactCache(cache_dir or work / "cache"),
                       scorer=scorer or Scorer(val, loaded.recipe.metric, trust_model=trust_model, output=data.output),
                       latencies=latencies)


def _data_specs(loaded: LoadedRecipe, trust_code: bool):
    from edgepack.loading.data import DataSpec

    data = loaded.recipe.data
    keys = dict(x_key=data.x_key, y_key=data.y_key, trust_code=trust_code, output=data.output,
                preprocess=data.preprocess)
    return (DataSpec(source=data.train, **keys) if data.train else None,
            DataSpec(source=data.val, **keys) if data.val else None)


def make_scorer(loaded: LoadedRecipe, *, trust_model: bool = False, trust_code: bool = False) -> Scorer:
    """The recipe's scorer on its val data (None val: scores are None)."""
    _, val = _data_specs(loaded, trust_code)
    return Scorer(val, loaded.recipe.metric, trust_model=trust_model, output=loaded.recipe.data.output)


def prepare_steps(plan: list) -> None:
    """Let each planned step start what it will wait for (the converter's process), so that it loads
    while the steps before it run."""
    for planned in plan:
        planned.step.prepare(planned.params)


def run_plan(ctx: StepContext, plan: list, source: ModelArtifact, say: Say = lambda message: None,
             first: int = 2, total: int | None = None,
             entries: list | None = None, check=None) -> tuple[ModelArtifact, list[ModelArtifact]]:
    """Run the planned steps on ``source``: ``(final artifact, one artifact per stage)``.

    Keras stages are scored here; the .tflite is scored by the evaluate step. A measuring step
    (evaluate, profile) adds its figures to the current stage instead of making a new one.
    ``entries``, when given, receives each step's effective params as ``{name: params}`` (what a
    step decided while running, such as a sensitivity allocation, included). ``check``, when given,
    sees every new stage and may raise to stop (the tuner stops hopeless trials early).
    """
    total = total or len(plan) + first
    prepare_steps(plan)
    stages, current = [source], source
    for number, planned in enumerate(plan, start=first):
        say(f"[{number}/{total}] {planned.step.label(planned.params)}")
        produced = planned.step.run(ctx, current, planned.params)
        if produced.kind is ModelKind.KERAS and ctx.scorer is not None:
            produced = produced.model_copy(update={"metric": ctx.scorer.score(produced)})
        if check is not None:
            check(produced)
        if planned.step.measures:
            stages[-1] = produced
        else:
            stages.append(produced)
        if entries is not None:
            entries.append(planned.entry() if planned.step.measures else {planned.name: produced.params})
        current = produced
    return current, stages


def _result(loaded: LoadedRecipe, stages: list[ModelArtifact], tflite: TfliteInspection, stage: Path, bundle: Path,
            trust_model: bool) -> RunResult:
    recipe, final = loaded.recipe, stages[-1]
    outcome = judge(recipe, final, stages[0].metric,
                    edgetpu=tflite.edgetpu if is_edgetpu(loaded.device) else None, device=loaded.device)
    edgetpu = edgetpu_stage(stage, stage / "model.tflite", tflite, loaded.device)
    gates, passed = outcome.gates, outcome.passed
    inspected = _keras_reports(trust_model)
    return RunResult(
        name=recipe.name, recipe=str(loaded.path), device=loaded.device.name,
        bundle=str(bundle if passed else failed_bundle_path(bundle)), passed=passed,
        summary=f"{len(gates)} gate(s), {sum(not g.passed for g in gates)} failed", metric=outcome.metric,
        reference=outcome.reference, final=outcome.final, drop=outcome.drop, drop_unit=outcome.drop_unit,
        size_bytes=outcome.size_bytes, gzip_size_bytes=outcome.gzip_size_bytes, stages=_stage_rows(loaded, stages, outcome.figures, inspected), gates=gates,
        figures=outcome.figures,
        latency=_in_bundle(final.latency), tflite=TfliteSummary(quantization=tflite.quantization, full_integer=tflite.full_integer,
                                                              operators=tflite.operators),
        edgetpu=edgetpu, gpu=gpu_stage(tflite, loaded.device), provenance=provenance(),
        mixed_precision=_mixed_precision(stages),
        sensitivity=next((s.sensitivity for s in stages if s.sensitivity is not None), None),
        layers=_layers(loaded, stages, tflite, inspected), float_ops=_float_ops(stages))


def _mixed_precision(stages: list[ModelArtifact]):
    """What the int8 conversion kept in float or int16x8, and why (None without such a conversion)."""
    from edgepack.steps.quantize import TfliteArtifact

    return next((s.detail.mixed for s in stages if isinstance(s.detail, TfliteArtifact) and s.detail.mixed), None)


def _float_ops(stages: list[ModelArtifact]) -> list[str]:
    """The operators the last int8 conversion left computing in float (no int8 kernel), as quantize said."""
    from edgepack.steps.quantize import TfliteArtifact

    converted = [s.detail for s in stages if isinstance(s.detail, TfliteArtifact)]
    return list(converted[-1].float_ops) if converted and converted[-1].mixed is None else []


def _keras_reports(trust_model: bool) -> Callable[[Path], KerasInspection]:
    """``inspect`` of a Keras stage, each file loaded once (the stage figures and the layer rows share it)."""
    from edgepack.inspection.keras_model import inspect_keras

    reports: dict[Path, KerasInspection] = {}

    def inspected(path: Path) -> KerasInspection:
        if path not in reports:
            reports[path] = inspect_keras(path, trust_model=trust_model)
        return reports[path]

    return inspected


def _stage_rows(loaded: LoadedRecipe, stages: list[ModelArtifact], final_figures,
                inspected: Callable[[Path], KerasInspection]):
    """Each stage with what the device pays for it (the final stage's figures are the judge's)."""
    from edgepack.footprint.figures import keras_figures, tflite_figures

    rows = []
    for index, stage in enumerate(stages):
        if index == len(stages) - 1 and final_figures is not None:
            figures = final_figures
        elif stage.kind is ModelKind.TFLITE:
            figures = tflite_figures(stage.path, loaded.device, stage.latency)
        else:
            figures = keras_figures(inspected(stage.path))
        rows.append(StageSummary.of(stage).model_copy(update={"device": figures}))
    return rows


def _in_bundle(latency):
    """The latency result naming the bundle's model file, not the work folder it was measured in."""
    from edgepack.bundle.assemble import MODEL_FILE

    return None if latency is None else latency.model_copy(update={"model": MODEL_FILE})


def _layers(loaded: LoadedRecipe, stages: list[ModelArtifact], tflite: TfliteInspection,
            inspected: Callable[[Path], KerasInspection]):
    """The per-layer rows of the report, from the last Keras stage (the model that was converted)."""
    from edgepack.inspection.per_layer import layer_rows

    keras_stage = next((s for s in reversed(stages) if s.kind is ModelKind.KERAS), None)
    if keras_stage is None:
        return None
    keras = inspected(keras_stage.path)
    accelerator = loaded.device.accelerator.value
    return layer_rows(keras.layers, tflite, accelerator, model_name=keras.name)


def run_loaded(loaded: LoadedRecipe, options: RunOptions, say: Say = lambda message: None,
               training_progress: Any = None, cache_dir: Path | None = None) -> RunResult:
    """Run an already loaded recipe and write its bundle (or ``<bundle>.failed`` when a gate fails).
    ``cache_dir``: step outputs to reuse (a study's: the tuned recipe's bundle is its best trial's models)."""
    with staging_folder(loaded.output) as stage, tempfile.TemporaryDirectory(prefix="edgepack-work-") as work:
        ctx = make_context(loaded, Path(work), trust_model=options.trust_model, trust_code=options.trust_code,
                           estimate=options.estimate, say=say, training_progress=training_progress,
                           cache_dir=cache_dir)
        prepare_steps(loaded.plan)  # before the float reference, which loads TensorFlow here
        total = len(loaded.plan) + 2
        say(f"[1/{total}] float reference: {loaded.recipe.metric.value} on {loaded.recipe.data.val or 'no val data'}")
        source = ModelArtifact.of_file(Path(loaded.recipe.model), ModelKind.KERAS, label="float (Keras)")
        source = source.model_copy(update={"metric": ctx.scorer.score(source)})
        entries: list[dict] = []
        final, stages = run_plan(ctx, loaded.plan, source, say, first=2, total=total, entries=entries)
        from edgepack.inspection.tflite_model import inspect_tflite

        with bundle_writes(loaded.output):
            tflite = inspect_tflite(stage_model(stage, final.path))
            result = _result(loaded, stages, tflite, stage, loaded.output, options.trust_model)
            say(f"[{total}/{total}] write bundle {result.bundle}")
            resolved = {**loaded.resolved_dump(), "steps": entries}
            write_bundle(stage, result=result, resolved_recipe=resolved, device=loaded.device,
                         manifest=build_manifest(loaded, result, source, final, tflite, entries))
            publish(stage, Path(result.bundle))
    return result


def run_recipe(options: RunOptions, progress: Say = lambda message: None, *,
               training_progress: Any = None, cache_dir: Path | None = None) -> RunResult:
    """Load ``options.recipe`` (with its overrides), run it end to end, and write the bundle.

    Gate failures do not raise here: the result says ``passed`` and ``raise_for_gates()`` raises
    GateFailed (exit 7). Every other problem raises the matching EdgepackError.
    """
    loaded = load_recipe(options.recipe, model=options.model, train=options.train, val=options.val,
                         device=options.device, output=options.output)
    return run_loaded(loaded, options, progress, training_progress, cache_dir)
