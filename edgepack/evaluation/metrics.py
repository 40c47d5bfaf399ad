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


def compute(metric: Metric, y_true: np.ndarray, y_pred: np.ndarray, source: str) -> float:
    """The value of ``metric`` for predictions ``y_pred`` against targets ``y_true``."""
    if metric.higher_is_better:
        scores = y_pred.reshape(len(y_pred), -1)
        labels = class_labels(y_true, scores.shape[1], source)
        if scores.shape[1] == 1:
            threshold = 0.5 if scores.min() >= 0 and scores.max() <= 1 else 0.0
            return float(np.mean((scores[:, 0] > threshold).astype(np.int64) == labels))
        if metric is Metric.ACCURACY:
            return float(np.mean(scores.argmax(axis=1) == labels))
        k = min(5, scores.shape[1])
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        return float(np.mean(np.any(top == labels[:, None], axis=1)))
    truth = y_true.astype(np.float64).reshape(len(y_true), -1)
    pred = y_pred.astype(np.float64).reshape(len(y_pred), -1)
    if truth.shape != pred.shape:
        raise DataError(f"{source}: targets have shape {tuple(y_true.shape)} but the model outputs "
                        f"{tuple(y_pred.shape)}", hint="give targets with one value per model output")
    error = pred - truth
    return float(np.mean(np.abs(error)) if metric is Metric.MAE else np.mean(error ** 2))


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
