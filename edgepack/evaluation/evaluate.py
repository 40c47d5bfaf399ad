"""``evaluate``: run a .tflite on validation data, compare with the Keras reference, gate the drop."""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgepack import __version__
from edgepack.errors import DataError, GateFailed, ModelError
from edgepack.evaluation.metrics import Metric, compute, drop
from edgepack.loading.data import DataSpec, fit_to_input, load_data
from edgepack.runtime.predict import OutputChoice, TflitePredictor
from edgepack.steps.evaluate import EvaluateParams
from edgepack.util.types import FiniteNonNegative


class EvaluateConfig(EvaluateParams):
    """Everything ``evaluate`` needs; checked before any model runs (batch size and threads are the
    evaluate step's params, ``edgepack.steps.evaluate``)."""

    model: Path
    data: DataSpec
    reference: Path | None = None
    metric: Metric = Metric.ACCURACY
    max_drop: FiniteNonNegative | None = None
    relative: bool = False
    trust_model: bool = False
    output: str | None = None

    @model_validator(mode="after")
    def _gate_needs_reference(self):
        if self.max_drop is not None and self.reference is None:
            raise ValueError("--max-drop needs --reference MODEL to measure the drop against")
        if self.relative and self.max_drop is None:
            raise ValueError("--relative needs --max-drop")
        return self


class Score(BaseModel):
    """One model's metric value on the data."""

    model: str
    value: float
    seconds: float


class Evaluation(BaseModel):
    """The result of ``evaluate``, as printed and as written into reports."""

    tool: str = f"edgepack {__version__}"
    data: str
    samples: int
    metric: Metric
    output: str | None = None
    tflite: Score
    runtime: dict
    batch_size: int
    reference: Score | None = None
    drop: float | None = None
    drop_unit: str | None = None
    max_drop: FiniteNonNegative | None = None
    relative: bool = False
    passed: bool | None = None

    def raise_for_gate(self) -> None:
        """Raise GateFailed (exit 7) when the drop exceeds ``max_drop``."""
        if self.passed is False:
            unit = "%" if self.relative else f" {self.drop_unit}"
            raise GateFailed(f"{self.metric.value} drop {self.drop:.3f}{unit} exceeds --max-drop "
                             f"{self.max_drop}{unit} ({self.reference.value:.4f} -> {self.tflite.value:.4f})",
                             hint="loosen the threshold or change the compression settings")


def evaluate(config: EvaluateConfig) -> Evaluation:
    """Run the .tflite (and the reference, if given) on the data and measure the metric. With several
    outputs the metric is computed on ``config.output``, matched by name in both models."""
    reference_model, choice = None, OutputChoice(name=config.output) if config.output else None
    if config.reference is not None:
        from edgepack.loading.model import load_model

        reference_model = load_model(config.reference, trust_model=config.trust_model)
        choice = reference_model.choose_output(config.output)
    runner = TflitePredictor(config.model, threads=config.threads, output=choice)
    shape = tuple(None if d == -1 else d for d in runner.input_shape)
    dataset = load_data(config.data.model_copy(update={"output": choice.name if choice else None}), input_shape=shape)
    dataset = fit_to_input(dataset, shape, "float32", model_name=str(config.model))
    if dataset.y is None:
        raise DataError(f"{dataset.source} has no targets (array '{config.data.y_key}')",
                        hint="evaluate needs targets; name them with --y-key")
    if reference_model is not None:
        fit_to_input(dataset, reference_model.input_shape, "float32", model_name=str(config.reference))
    start = time.perf_counter()
    predictions = runner.predict(dataset.x, batch_size=config.batch_size)
    tflite = Score(model=str(config.model), value=compute(config.metric, dataset.y, predictions, dataset.source),
                   seconds=time.perf_counter() - start)
    result = Evaluation(data=dataset.source, samples=len(dataset), metric=config.metric, tflite=tflite,
                        output=runner.output_key if choice is None else choice.name,
                        runtime=runner.runtime.as_dict(), batch_size=runner.batch_size,
                        max_drop=config.max_drop, relative=config.relative)
    if reference_model is not None:
        _compare(config, result, reference_model, dataset, predictions, choice)
    return result


def _compare(config: EvaluateConfig, result: Evaluation, reference_model, dataset, predictions, choice) -> None:
    """Score the reference on the same output and record the drop (and the gate)."""
    start = time.perf_counter()
    ref_pred = reference_model.predict(dataset.x.astype(reference_model.input_dtype, copy=False), output=choice.name)
    if ref_pred.shape[1:] != predictions.shape[1:]:
        raise ModelError(f"output {choice.name!r} has shape {list(ref_pred.shape[1:])} in {config.reference} but "
                         f"{list(predictions.shape[1:])} in {config.model}",
                         hint="check that the .tflite was converted from this reference model")
    value = compute(config.metric, dataset.y, ref_pred, dataset.source)
    result.reference = Score(model=str(config.reference), value=value, seconds=time.perf_counter() - start)
    result.drop = drop(config.metric, value, result.tflite.value, relative=config.relative)
    result.drop_unit = "percent of reference" if config.relative else config.metric.drop_unit
    if config.max_drop is not None:
        result.passed = result.drop <= config.max_drop
