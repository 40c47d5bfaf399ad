"""Re-estimate BatchNormalization moving statistics after fine-tuning.

Fine-tuning that changes weights under a BatchNormalization layer (pruning most of all: the
polynomial schedule changes the kernels most in its last steps) leaves the moving mean and
variance behind the weights: with Keras's momentum of 0.99 they average activations of kernels
that no longer exist, and a model that scores 87 % in training mode can score 8 % in inference
mode. Re-estimating them is a few forward passes in training mode, no gradient: each layer's
statistics become the exact mean and variance of its input over the rows drawn (a cumulative
average, not an exponential one), with every layer above it normalising by its batch statistics,
as during training.

Works on Keras 3 and tf_keras models, nested models, and layers inside tfmot's wrappers (QAT keeps
BatchNormalization as a layer of its own, wrapped; the converter folds it into the convolution). A
layer the model calls in inference mode (``training=False``) keeps its statistics; tf_keras honours
such a call, Keras 3 3.x trains through it, so prune and cluster re-estimate the tf_keras model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

BN_CLASSES = ("BatchNormalization", "SyncBatchNormalization")


class BatchNormReport(BaseModel):
    """What the re-estimation did, recorded in the step's result and sidecar."""

    layers: int = Field(description="BatchNormalization layers whose moving statistics were re-estimated.")
    inference_only: int = Field(default=0, description="BatchNormalization layers the model calls in inference "
                                "mode (a sub-model called with training=False): their statistics are left as "
                                "they were.")
    batches: int = Field(description="Training batches run (forward only, training mode).")
    rows: int = Field(description="Training rows those batches held.")
    metric: str | None = Field(default=None, description="The metric scored before and after.")
    scored_on: Literal["val", "train"] | None = Field(
        default=None, description="val: the validation data; train: the training rows (no --val given).")
    before: float | None = Field(default=None, description="The fine-tuned model's metric with the statistics "
                                 "fine-tuning left.")
    after: float | None = Field(default=None, description="The same model's metric after re-estimation.")


def _is_model(layer) -> bool:
    return hasattr(layer, "layers") and hasattr(layer, "inputs")


def batchnorm_layers(model) -> list:
    """Every BatchNormalization layer of ``model``: nested models and wrapped layers (tfmot's prune,
    cluster and quantize wrappers hold theirs in ``.layer``) included, each once."""
    found: list = []
    seen: set[int] = set()

    def visit(layer) -> None:
        if id(layer) in seen:
            return
        seen.add(id(layer))
        if type(layer).__name__ in BN_CLASSES:
            found.append(layer)
        inner = getattr(layer, "layer", None)
        if inner is not None and not isinstance(inner, (list, tuple)) and hasattr(inner, "weights"):
            visit(inner)
        if _is_model(layer):
            for child in layer.layers:
                visit(child)

    visit(model)
    return found


def _statistics(layer) -> tuple[np.ndarray, np.ndarray]:
    return (np.asarray(layer.moving_mean.numpy(), dtype=np.float64),
            np.asarray(layer.moving_variance.numpy(), dtype=np.float64))


@dataclass
class _Moments:
    """Row-weighted sums of each layer's batch means and second moments; a layer whose statistics the
    first batch left unchanged runs in inference mode inside the model and is left alone."""

    layers: list
    initial: list[tuple[np.ndarray, np.ndarray]]
    mean: list[np.ndarray] | None = None
    square: list[np.ndarray] | None = None
    active: list[bool] | None = None
    rows: int = 0

    def add(self, rows: int) -> None:
        current = [_statistics(layer) for layer in self.layers]
        if self.active is None:
            self.active = [not (np.array_equal(m, m0) and np.array_equal(v, v0))
                           for (m, v), (m0, v0) in zip(current, self.initial)]
            self.mean = [np.zeros_like(m) for m, _ in current]
            self.square = [np.zeros_like(v) for _, v in current]
        for i, (mean, variance) in enumerate(current):
            self.mean[i] += rows * mean
            self.square[i] += rows * (variance + mean * mean)
        self.rows += rows

    def assign(self) -> int:
        """Assign the pooled statistics to the active layers; how many there were."""
        for layer, active, total, square in zip(self.layers, self.active or [], self.mean or [], self.square or []):
            if active:
                mean = total / self.rows
                variance = np.maximum(square / self.rows - mean * mean, 0.0)
                layer.moving_mean.assign(mean.astype(np.float32))
                layer.moving_variance.assign(variance.astype(np.float32))
        return sum(self.active or [])


def reestimate(model, x: np.ndarray, *, batches: int, batch_size: int, seed: int = 0) -> BatchNormReport:
    """Replace the moving statistics of every BatchNormalization layer in ``model`` by their value over
    ``batches`` batches of ``batch_size`` rows drawn from ``x`` without replacement (all of ``x`` when it
    has fewer rows; a last partial batch is left out); the report counts the layers (0 when the model has none).

    Each batch runs with momentum 0 (so a layer's moving statistics become that batch's), the
    statistics are read back, and their row-weighted pooled mean and variance are assigned at the
    end; momentum and ``trainable`` are restored whatever happens."""
    layers = batchnorm_layers(model)
    if not layers or batches < 1 or len(x) == 0:
        return BatchNormReport(layers=0, batches=0, rows=0)
    order = np.random.default_rng(seed).permutation(len(x))[:batches * batch_size]
    order = order[:len(order) // batch_size * batch_size] if len(order) >= batch_size else order  # no ragged tail
    moments = _Moments(layers, [_statistics(layer) for layer in layers])
    saved = [(layer.momentum, layer.trainable) for layer in layers]
    count = 0
    try:
        for layer in layers:
            layer.momentum = 0.0
            layer.trainable = True  # a frozen layer ignores training=True in Keras 3
        for start in range(0, len(order), batch_size):
            rows = np.sort(order[start:start + batch_size])
            model(np.asarray(x[rows]), training=True)
            moments.add(len(rows))
            count += 1
    finally:
        for layer, (momentum, trainable) in zip(layers, saved):
            layer.momentum, layer.trainable = momentum, trainable
    active = moments.assign()
    return BatchNormReport(layers=active, inference_only=len(layers) - active, batches=count, rows=moments.rows)
