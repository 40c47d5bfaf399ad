"""``sensitivity``: per-layer sensitivity of a Keras model to int8, pruning and clustering."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from edgepack.evaluation.metrics import Metric
from edgepack.loading.spec import DataSpec
from edgepack.steps.artifacts import ModelArtifact
from edgepack.steps.base import ModelKind, Problem, Step, StepParams


class SensitivityParams(StepParams):
    """The ``sensitivity`` step's parameters: the recipe keys, the CLI options and the API's arguments."""

    samples: int = Field(default=200, ge=1, le=100_000, description="Calibration samples drawn from the data.")
    seed: int = Field(default=0, ge=0, description="Seed of the calibration sample.")
    int8: bool = Field(default=True, description="Measure int8 error and the metric with each layer kept float.")
    weights: bool = Field(default=True, description="Measure pruning (50/80/90%) and clustering (8/16/32) per layer.")

    @model_validator(mode="after")
    def _something(self):
        if not (self.int8 or self.weights):
            raise ValueError("int8 and weights are both off: nothing to measure")
        return self


class SensitivityConfig(SensitivityParams):
    """A library call of ``sensitivity``."""

    model: Path
    calibration: DataSpec | None = None
    data: DataSpec
    metric: Metric = Metric.ACCURACY
    trust_model: bool = False

    @model_validator(mode="after")
    def _calibration(self):
        if self.int8 and self.calibration is None:
            raise ValueError("--calibration DATA is needed for the int8 figures (or --no-int8)")
        return self


def sensitivity(config: SensitivityConfig):
    """Per-layer sensitivity of ``config.model`` on ``config.data`` (see edgepack.layer_sensitivity.analysis)."""
    from edgepack.errors import DataError
    from edgepack.loading.data import fit_to_input, load_data
    from edgepack.loading.model import load_model
    from edgepack.layer_sensitivity.analysis import analyse

    loaded = load_model(config.model, trust_model=config.trust_model)
    if loaded.input_count != 1:
        from edgepack.errors import ModelError

        raise ModelError(f"{config.model} has {loaded.input_count} inputs; sensitivity supports single-input models",
                         hint="quantize and evaluate take several inputs; per-layer sensitivity does not yet")
    shape, dtype, name = loaded.input_shape, loaded.input_dtype, str(config.model)
    val = fit_to_input(load_data(config.data, input_shape=shape), shape, dtype, model_name=name)
    if val.y is None:
        raise DataError(f"{val.source} has no targets", hint="sensitivity needs labelled --data")
    calibration = None
    if config.int8:
        dataset = fit_to_input(load_data(config.calibration, input_shape=shape), shape, dtype, model_name=name)
        calibration = dataset.sample(config.samples, seed=config.seed).x
    return analyse(loaded, calibration, val.x, val.y, metric=config.metric, source=val.source, int8=config.int8,
                   weights=config.weights)


class SensitivityStep(Step):
    """Per-layer sensitivity of the current Keras model (figures only; the model is unchanged)."""

    name = "sensitivity"
    params = SensitivityParams
    consumes = produces = ModelKind.KERAS
    measures = True
    summary = "per-layer sensitivity to int8, pruning and clustering"

    def check(self, params: SensitivityParams, setting) -> list[Problem]:
        problems = []
        if not setting.has_val:
            problems.append(Problem(message="sensitivity measures the metric on data.val, which the recipe lacks"))
        if params.int8 and not setting.has_train:
            problems.append(Problem(key=("int8",), message="sensitivity int8 calibrates on data.train, which the "
                                    "recipe lacks", hint="add data.train or set int8: false"))
        return problems

    def run(self, ctx, source: ModelArtifact, params: SensitivityParams) -> ModelArtifact:
        result = sensitivity(SensitivityConfig(model=source.path, calibration=ctx.train if params.int8 else None,
                                               data=ctx.val, metric=ctx.setting.metric, trust_model=ctx.trust_model,
                                               **params.model_dump()))
        ctx.say(f"  most sensitive to int8: {', '.join(result.ranking[:3])}")
        return source.model_copy(update={"sensitivity": result})
