"""``quantize --mode int8`` with ``--float-ops`` and/or accuracy control (``--val --max-drop``)."""

from __future__ import annotations

from typing import Callable

import numpy as np
from pydantic import BaseModel

from edgepack.errors import DataError
from edgepack.evaluation.metrics import Metric
from edgepack.loading.data import DataSpec, fit_to_input, load_data
from edgepack.loading.model import LoadedModel
from edgepack.quantization.control import AccuracyControl, control_accuracy
from edgepack.quantization.layers import match_layers, strip_markers
from edgepack.quantization.selective import SelectiveQuantizer


class MixedPrecision(BaseModel):
    """Which layers run in float in an otherwise full-int8 model, and why."""

    patterns: list[str]
    float_layers: list[str]
    layers_total: int
    int16_layers: list[str] = []
    weights: str = "int8"
    int8_layers: list[str] = []   # with int4 weights: the layers accuracy control raised to int8 weights
    control: AccuracyControl | None = None
    fallback: dict | None = None

    @property
    def summary(self) -> str:
        if self.fallback is not None and self.fallback.get("used"):
            return (f"quantization-aware training (fallback), every layer int8: {self.control.metric.value} drop "
                    f"{self.fallback['drop']:.2f} {self.control.drop_unit} (max {self.control.max_drop:g}); "
                    f"keeping layers float reached {self.fallback['float_layers_drop']:.2f}")
        if self.control is not None:
            return self.control.summary
        return f"{len(self.float_layers)} of {self.layers_total} layers kept in float ({', '.join(self.float_layers)})"


def _val(spec: DataSpec, loaded: LoadedModel) -> tuple[np.ndarray, np.ndarray, str]:
    dataset = fit_to_input(load_data(spec, input_shape=loaded.input_shape), loaded.input_shape, loaded.input_dtype,
                           model_name=str(loaded.info.path))
    if dataset.y is None:
        raise DataError(f"{dataset.source} has no targets", hint="accuracy control needs labelled --val data")
    return dataset.x, dataset.y, dataset.source


def quantize_mixed(loaded: LoadedModel, config, calibration: np.ndarray, *, metric: Metric = Metric.ACCURACY,
                   say: Callable[[str], None] = lambda message: None) -> tuple[bytes, MixedPrecision]:
    """Full int8 with the layers matching ``config.float_ops`` in float, then (with ``config.max_drop``)
    more layers raised to ``config.promote`` (float, or int16x8 then float) by accuracy control until
    the drop on ``config.val`` holds."""
    if "int16x8" in config.promote or config.int4:
        from edgepack.quantization.precision import PrecisionQuantizer

        quantizer = PrecisionQuantizer(loaded, calibration, io=config.io, static_batch=bool(config.static_batch),
                                       weights=config.weights, int4_ops=config.int4_ops)
    else:
        quantizer = SelectiveQuantizer(loaded, calibration, io=config.io, static_batch=bool(config.static_batch))
    start = match_layers(config.float_ops, quantizer.layers) if config.float_ops else []
    if config.max_drop is None:
        return strip_markers(quantizer.quantize(start)), MixedPrecision(patterns=config.float_ops,
                                                         float_layers=quantizer.float_layers_of(start),
                                                         layers_total=len(quantizer.layers), weights=config.weights)
    x, y, source = _val(config.val, loaded)
    reference = loaded.predict(x)
    model, control = control_accuracy(quantizer, x, y, reference, metric=metric, max_drop=config.max_drop,
                                      start=start, max_float_ops=config.max_float_ops,
                                      ranking_samples=config.ranking_samples, source=source,
                                      promote=config.promote, say=say)
    return strip_markers(model), MixedPrecision(patterns=config.float_ops, float_layers=control.float_layers,
                                 int16_layers=control.int16_layers, layers_total=control.layers_total,
                                 weights=config.weights, int8_layers=control.int8_layers, control=control)
