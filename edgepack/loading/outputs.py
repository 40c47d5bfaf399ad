"""Which output of a model a metric is computed on (shared by the Keras loader and the LiteRT predictor)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OutputChoice:
    """Which model output a metric is computed on: a name (a Keras output name, or a .tflite signature
    output key) and, when a Keras model is known, that output's position among its outputs."""

    name: str | None = None
    index: int | None = None
