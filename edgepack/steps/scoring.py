"""Score models on the val data: the data is read once, and each model (by sha256) is scored once."""

from __future__ import annotations

from pathlib import Path

from edgepack.errors import DataError
from edgepack.evaluation.metrics import Metric, compute
from edgepack.loading.data import Dataset, DataSpec, fit_to_input, load_data
from edgepack.runtime.predict import OutputChoice
from edgepack.steps.artifacts import ModelArtifact
from edgepack.steps.base import ModelKind


class Scorer:
    """The recipe's metric for Keras and .tflite models on one val set (None without val data)."""

    def __init__(self, val: DataSpec | None, metric: Metric, *, trust_model: bool = False, output: str | None = None):
        self.spec, self.metric, self.trust_model = val, metric, trust_model
        self.choice = OutputChoice(name=output) if output else None  # completed by the first Keras model
        self.val: Dataset | None = None
        self._scores: dict[str, float] = {}

    def _dataset(self, input_shape: tuple, where: str) -> Dataset:
        if self.val is None:
            self.val = fit_to_input(load_data(self.spec, input_shape=input_shape), input_shape, "float32",
                                    model_name=where)
            if self.val.y is None:
                raise DataError(f"{self.val.source} has no targets", hint="the gates need labelled val data")
        return self.val

    def score(self, artifact: ModelArtifact, *, batch_size: int = 64, threads: int | None = None) -> float | None:
        """The metric of ``artifact`` on the val data; computed once per distinct model."""
        if self.spec is None:
            return None
        if artifact.sha256 not in self._scores:
            self._scores[artifact.sha256] = (
                self._score_tflite(artifact.path, batch_size, threads) if artifact.kind is ModelKind.TFLITE
                else self._score_keras(artifact.path))
        return self._scores[artifact.sha256]

    def _score_keras(self, path: Path) -> float:
        from edgepack.loading.model import load_model

        model = load_model(path, trust_model=self.trust_model)
        self.choice = model.choose_output(self.choice.name if self.choice else None)
        data = self._dataset(model.input_shape, str(path))
        return compute(self.metric, data.y, model.predict(data.x, output=self.choice.name), data.source)

    def _score_tflite(self, path: Path, batch_size: int, threads: int | None) -> float:
        from edgepack.runtime.predict import TflitePredictor

        runner = TflitePredictor(path, threads=threads, output=self.choice)
        shape = tuple(None if d == -1 else d for d in runner.input_shape)
        data = self._dataset(shape, str(path))
        return compute(self.metric, data.y, runner.predict(data.x, batch_size=batch_size), data.source)
