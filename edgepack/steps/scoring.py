"""Score models on the val data: the data is opened once and streamed a batch at a time for each
model, and each model (by sha256) is scored once."""

from __future__ import annotations

from pathlib import Path

from edgepack.errors import DataError
from edgepack.evaluation.evaluate import READ_ROWS
from edgepack.evaluation.metrics import Metric, MetricAccumulator
from edgepack.loading.data import Dataset, DataSpec, InputSpec, fit_to_inputs, load_data
from edgepack.loading.outputs import OutputChoice
from edgepack.steps.artifacts import ModelArtifact
from edgepack.steps.artifacts import ModelKind


class Scorer:
    """The recipe's metric for Keras and .tflite models on one val set (None without val data)."""

    def __init__(self, val: DataSpec | None, metric: Metric, *, trust_model: bool = False, output: str | None = None):
        self.spec, self.metric, self.trust_model = val, metric, trust_model
        self.choice = OutputChoice(name=output) if output else None  # completed by the first Keras model
        self.val: Dataset | None = None
        self._scores: dict[str, float] = {}

    def _dataset(self, inputs: list[InputSpec], where: str) -> Dataset:
        """The val data (opened by the first model scored, which sizes images) fitted to ``inputs``."""
        if self.val is None:
            self.val = load_data(self.spec, inputs=inputs)
            if not self.val.has_targets:
                raise DataError(f"{self.val.source} has no targets", hint="the gates need labelled val data")
        return fit_to_inputs(self.val, inputs, model_name=where)

    def score(self, artifact: ModelArtifact, *, batch_size: int = 64, threads: int | None = None) -> float | None:
        """The metric of ``artifact`` on the val data; computed once per distinct model."""
        if self.spec is None:
            return None
        if artifact.sha256 not in self._scores:
            self._scores[artifact.sha256] = (
                self._score_tflite(artifact.path, batch_size, threads) if artifact.kind is ModelKind.TFLITE
                else self._score_keras(artifact.path, batch_size))
        return self._scores[artifact.sha256]

    def _score_keras(self, path: Path, batch_size: int) -> float:
        from edgepack.loading.inputs import model_inputs, predict_rows
        from edgepack.loading.model import load_model

        model = load_model(path, trust_model=self.trust_model)
        self.choice = model.choose_output(self.choice.name if self.choice else None)
        data = self._dataset(model_inputs(model), str(path))
        accumulator = MetricAccumulator(self.metric, data.source)
        for x, y in data.batches(max(batch_size, READ_ROWS)):
            accumulator.update(y, predict_rows(model, x, self.choice.name))
        return accumulator.value()

    def _score_tflite(self, path: Path, batch_size: int, threads: int | None) -> float:
        from edgepack.runtime.predict import TflitePredictor

        predictor = TflitePredictor(path, threads=threads, output=self.choice)
        data = self._dataset(predictor.input_specs, str(path))
        accumulator = MetricAccumulator(self.metric, data.source)
        for x, y in data.batches(max(batch_size, READ_ROWS)):
            accumulator.update(y, predictor.predict(x, batch_size=batch_size))
        return accumulator.value()
