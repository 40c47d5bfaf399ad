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


class Int4Cost(BaseModel):
    """What int4 weights save and cost against int8 weights for this model, measured here: the bytes of
    both .tflite files and one single-row invoke of each (1 thread, this machine, XNNPACK: its int4
    kernels are fully-connected only, so int4 convolutions run on slower ones)."""

    int8_bytes: int
    int4_bytes: int
    int8_ms: float
    int4_ms: float

    @property
    def summary(self) -> str:
        return (f"int4 weights: {self.int4_bytes:,} bytes against {self.int8_bytes:,} with int8 weights "
                f"({self.int8_bytes / max(self.int4_bytes, 1):.2f}x smaller); one inference {self.int4_ms:.3f} ms "
                f"against {self.int8_ms:.3f} ms here ({self.int8_ms / max(self.int4_ms, 1e-9):.2f}x as fast)")


class QatFallback(BaseModel):
    """Accuracy control's fallback: QAT of the whole model in int8, used when it beats the float layers."""

    method: str = "qat"
    drop: float
    float_layers_drop: float
    met: bool
    used: bool
    steps: int
    seconds: float
    preserve: str


class MixedPrecision(BaseModel):
    """Which layers run in float in an otherwise full-int8 model, and why."""

    patterns: list[str]
    float_layers: list[str]
    layers_total: int
    int16_layers: list[str] = []
    weights: str = "int8"
    int8_layers: list[str] = []   # with int4 weights: the layers accuracy control raised to int8 weights
    int4_cost: Int4Cost | None = None
    control: AccuracyControl | None = None
    fallback: QatFallback | None = None

    @property
    def summary(self) -> str:
        if self.fallback is not None and self.fallback.used:
            return (f"quantization-aware training (fallback), every layer int8: {self.control.metric.value} drop "
                    f"{self.fallback.drop:.2f} {self.control.drop_unit} (max {self.control.max_drop:g}); "
                    f"keeping layers float reached {self.fallback.float_layers_drop:.2f}")
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
                                       weights=config.weights, int4_ops=config.int4_ops,
                                       activation_bits=16 if config.mode.value == "int16x8" else 8)
    else:
        quantizer = SelectiveQuantizer(loaded, calibration, io=config.io, static_batch=bool(config.static_batch))
    start = match_layers(config.float_ops, quantizer.layers) if config.float_ops else []
    if config.max_drop is None:
        model = quantizer.quantize(start)
        return strip_markers(model), MixedPrecision(
            patterns=config.float_ops, float_layers=quantizer.float_layers_of(start),
            layers_total=len(quantizer.layers), weights=config.weights,
            int4_cost=_int4_cost(quantizer, model, start, calibration) if config.int4 else None)
    x, y, source = _val(config.val, loaded)
    reference = loaded.predict(x)
    model, control = control_accuracy(quantizer, x, y, reference, metric=metric, max_drop=config.max_drop,
                                      start=start, max_float_ops=config.max_float_ops,
                                      ranking_samples=config.ranking_samples, source=source,
                                      promote=config.promote, say=say)
    start_float = {name: "float" for name in control.float_layers}
    cost = _int4_cost(quantizer, model, list(start_float), x) if config.int4 else None
    return strip_markers(model), MixedPrecision(patterns=config.float_ops, float_layers=control.float_layers,
                                 int16_layers=control.int16_layers, layers_total=control.layers_total,
                                 weights=config.weights, int8_layers=control.int8_layers, int4_cost=cost,
                                 control=control)


def _int4_cost(quantizer, int4_model: bytes, float_layers: list[str], rows: np.ndarray) -> Int4Cost:
    """The model with int8 weights everywhere int4 was (same calibration, same float layers), beside it."""
    from edgepack.quantization.selective import BytesPredictor

    int8_model = quantizer.quantize_assigned({**{name: "int8" for name in quantizer.layers},
                                              **{name: "float" for name in float_layers}})
    predictor = BytesPredictor()
    try:
        row = np.asarray(rows)[0]
        int8_ms, int4_ms = predictor.latency_ms(int8_model, row), predictor.latency_ms(int4_model, row)
    finally:
        predictor.close()
    return Int4Cost(int8_bytes=len(strip_markers(int8_model)), int4_bytes=len(strip_markers(int4_model)),
                    int8_ms=round(int8_ms, 4), int4_ms=round(int4_ms, 4))
