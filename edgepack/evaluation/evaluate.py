"""``evaluate``: run a .tflite on validation data, compare with the Keras reference, gate the drop."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pydantic import BaseModel, model_validator

from edgepack import __version__
from edgepack.errors import DataError, GateFailed, ModelError
from edgepack.evaluation.metrics import Metric, MetricAccumulator, drop
from edgepack.loading.data import DataSpec, fit_to_inputs, load_data
from edgepack.loading.inputs import model_inputs, predict_rows
from edgepack.loading.preprocess import Preprocess
from edgepack.loading.outputs import OutputChoice
from edgepack.runtime.interpreter import RuntimeInfo
from edgepack.runtime.predict import TflitePredictor
from edgepack.evaluation.params import EvaluateParams
from edgepack.util.types import FiniteNonNegative


READ_ROWS = 64
"""Rows read from the data at a time, at least (more with a larger --batch-size): the interpreter may
run fewer per invoke (a batch-1 model), but reading and Python overhead are paid per read."""


class EvaluateConfig(EvaluateParams):
    """Everything ``evaluate`` needs; checked before any model runs (batch size and threads are the
    evaluate step's params, ``edgepack.evaluation.params``)."""

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
    runtime: RuntimeInfo
    batch_size: int
    preprocess: Preprocess | None = None
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
    """Run the .tflite (and the reference, if given) on the data, a batch at a time, and measure the
    metric. With several outputs the metric is computed on ``config.output``, matched by name in both
    models; with several inputs each is fed the array of its name. Each batch is read once and run
    through both models, so memory holds one batch of the data, never the data set."""
    reference_model, choice = None, OutputChoice(name=config.output) if config.output else None
    if config.reference is not None:
        from edgepack.loading.model import load_model

        reference_model = load_model(config.reference, trust_model=config.trust_model)
        choice = reference_model.choose_output(config.output)
    predictor = TflitePredictor(config.model, threads=config.threads, output=choice)
    specs = predictor.input_specs
    dataset = load_data(config.data.model_copy(update={"output": choice.name if choice else None}), inputs=specs)
    dataset = fit_to_inputs(dataset, specs, model_name=str(config.model))
    if not dataset.has_targets:
        raise DataError(f"{dataset.source} has no targets (array '{config.data.y_key}')",
                        hint="evaluate needs targets; name them with --y-key")
    reference = _Reference(config, reference_model, specs, dataset, choice) if reference_model is not None else None
    tflite, seconds = MetricAccumulator(config.metric, dataset.source), 0.0
    for x, y in dataset.batches(max(config.batch_size, READ_ROWS)):
        start = time.perf_counter()
        predictions = predictor.predict(x, batch_size=config.batch_size)
        seconds += time.perf_counter() - start
        tflite.update(y, predictions)
        if reference is not None:
            reference.update(x, y, predictions)
    result = Evaluation(data=dataset.source, samples=tflite.rows, metric=config.metric,
                        tflite=Score(model=str(config.model), value=tflite.value(), seconds=seconds),
                        output=predictor.output_key if choice is None else choice.name,
                        runtime=predictor.runtime, batch_size=predictor.batch_size,
                        max_drop=config.max_drop, relative=config.relative, preprocess=config.data.preprocess)
    if reference is not None:
        reference.record(result)
    return result


class _Reference:
    """The Keras reference run on the same batches as the .tflite, on the same output."""

    def __init__(self, config: EvaluateConfig, loaded, tflite_inputs: list, dataset, choice):
        self.config, self.loaded, self.choice = config, loaded, choice
        mine = model_inputs(loaded)
        if len(mine) > 1 and {s.name for s in mine} != {s.name for s in tflite_inputs}:
            raise ModelError(f"{config.reference} has inputs {', '.join(s.name for s in mine)} but {config.model} has "
                             f"inputs {', '.join(s.name for s in tflite_inputs)}",
                             hint="check that the .tflite was converted from this reference model")
        self.dataset = fit_to_inputs(dataset, mine, model_name=str(config.reference))
        self.dtypes = {spec.name: np.dtype(spec.dtype) for spec in mine}
        self.accumulator = MetricAccumulator(config.metric, dataset.source)
        self.seconds = 0.0

    def _cast(self, x):
        if isinstance(x, dict):
            return {name: value.astype(self.dtypes[name], copy=False) for name, value in x.items()}
        return x.astype(next(iter(self.dtypes.values())), copy=False)

    def update(self, x, y: np.ndarray, predictions: np.ndarray) -> None:
        start = time.perf_counter()
        ref_pred = predict_rows(self.loaded, self._cast(x), self.choice.name)
        self.seconds += time.perf_counter() - start
        if ref_pred.shape[1:] != predictions.shape[1:]:
            raise ModelError(f"output {self.choice.name!r} has shape {list(ref_pred.shape[1:])} in "
                             f"{self.config.reference} but {list(predictions.shape[1:])} in {self.config.model}",
                             hint="check that the .tflite was converted from this reference model")
        self.accumulator.update(y, ref_pred)

    def record(self, result: Evaluation) -> None:
        """Score the reference and record the drop (and the gate)."""
        config = self.config
        value = self.accumulator.value()
        result.reference = Score(model=str(config.reference), value=value, seconds=self.seconds)
        result.drop = drop(config.metric, value, result.tflite.value, relative=config.relative)
        result.drop_unit = "percent of reference" if config.relative else config.metric.drop_unit
        if config.max_drop is not None:
            result.passed = result.drop <= config.max_drop
