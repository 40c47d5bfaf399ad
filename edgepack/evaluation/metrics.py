"""Metrics, and how a drop between reference and candidate is measured for each."""

from __future__ import annotations

from enum import Enum

import numpy as np

from edgepack.errors import DataError


class Metric(str, Enum):
    ACCURACY = "accuracy"
    TOP5 = "top5"
    MAE = "mae"
    MSE = "mse"

    @property
    def higher_is_better(self) -> bool:
        return self in (Metric.ACCURACY, Metric.TOP5)

    @property
    def drop_unit(self) -> str:
        return "percentage points" if self.higher_is_better else "increase"


def class_labels(y: np.ndarray, classes: int, source: str) -> np.ndarray:
    """Integer class labels from indices or one-hot rows, checked against the output width."""
    if y.ndim == 2 and y.shape[1] > 1:
        if y.shape[1] != classes:
            raise DataError(f"{source}: one-hot targets have {y.shape[1]} columns but the model has "
                            f"{classes} outputs")
        return y.argmax(axis=1)
    labels = y.reshape(len(y))
    if labels.dtype.kind == "f":
        if not np.all(labels == np.round(labels)):
            raise DataError(f"{source}: targets are not class indices",
                            hint="use --metric mae or mse for regression targets")
    labels = labels.astype(np.int64)
    limit = max(classes, 2)
    if labels.min() < 0 or labels.max() >= limit:
        raise DataError(f"{source}: labels range over {labels.min()}..{labels.max()} but the model has "
                        f"{classes} output{'s' if classes != 1 else ''} (labels 0..{limit - 1})",
                        hint="check the labels belong to this model")
    return labels


class MetricAccumulator:
    """``metric`` computed over batches: per-batch checks, and only what the metric needs kept (hit
    counts, error sums; the scores of a one-column classifier, whose threshold depends on them all)."""

    def __init__(self, metric: Metric, source: str):
        self.metric, self.source = metric, source
        self.rows = 0
        self._hits = 0
        self._total, self._count = 0.0, 0
        self._binary: list[tuple[np.ndarray, np.ndarray]] = []
        self._width: int | None = None

    def update(self, y_true: np.ndarray, y_pred: np.ndarray) -> None:
        """Add one batch of targets and predictions."""
        scores = y_pred.reshape(len(y_pred), -1)
        if self._width is not None and scores.shape[1] != self._width:
            raise DataError(f"{self.source}: the model gave {scores.shape[1]} values per row in one batch and "
                            f"{self._width} in another")
        self._width = scores.shape[1]
        self.rows += len(y_pred)
        if self.metric.higher_is_better:
            self._classify(y_true, scores)
            return
        truth = y_true.astype(np.float64).reshape(len(y_true), -1)
        if truth.shape != scores.shape:
            shown = (self.rows - len(y_pred) + len(y_true), *y_true.shape[1:])
            raise DataError(f"{self.source}: targets have shape {shown} but the model outputs "
                            f"{(self.rows, *y_pred.shape[1:])}",
                            hint="give targets with one value per model output")
        error = scores.astype(np.float64) - truth
        self._total += float(np.sum(np.abs(error)) if self.metric is Metric.MAE else np.sum(error ** 2))
        self._count += error.size

    def _classify(self, y_true: np.ndarray, scores: np.ndarray) -> None:
        labels = class_labels(y_true, scores.shape[1], self.source)
        if scores.shape[1] == 1:
            self._binary.append((scores[:, 0].copy(), labels))
        elif self.metric is Metric.ACCURACY:
            self._hits += int(np.sum(scores.argmax(axis=1) == labels))
        else:
            k = min(5, scores.shape[1])
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            self._hits += int(np.sum(np.any(top == labels[:, None], axis=1)))

    def value(self) -> float:
        """The metric over every batch added."""
        if self.rows == 0:
            raise DataError(f"{self.source} gave no rows to compute {self.metric.value} on")
        if not self.metric.higher_is_better:
            return self._total / self._count if self._count else 0.0
        if self._binary:
            scores = np.concatenate([part[0] for part in self._binary])
            labels = np.concatenate([part[1] for part in self._binary])
            threshold = 0.5 if scores.min() >= 0 and scores.max() <= 1 else 0.0
            return float(np.mean((scores > threshold).astype(np.int64) == labels))
        return self._hits / self.rows


def compute(metric: Metric, y_true: np.ndarray, y_pred: np.ndarray, source: str) -> float:
    """The value of ``metric`` for predictions ``y_pred`` against targets ``y_true``."""
    accumulator = MetricAccumulator(metric, source)
    accumulator.update(y_true, y_pred)
    return accumulator.value()


def absolute_allowance(metric: Metric, reference: float, percent: float) -> float:
    """A relative gate (``percent`` of the reference) in the metric's own drop unit at ``reference``: accuracy
    points, or the error increase; the inverse of :func:`drop` with ``relative=True``."""
    base = reference * 100.0 if metric.higher_is_better else reference
    return percent * base / 100.0


def drop(metric: Metric, reference: float, candidate: float, *, relative: bool = False) -> float:
    """How much worse ``candidate`` is: accuracy points lost, or error increase (percent if relative)."""
    if metric.higher_is_better:
        absolute = (reference - candidate) * 100.0
        base = reference * 100.0
    else:
        absolute = candidate - reference
        base = reference
    if not relative:
        return absolute
    return absolute / base * 100.0 if base else (0.0 if absolute <= 0 else float("inf"))
