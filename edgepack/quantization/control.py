"""Accuracy control: keep the most harmful layers in float until the drop holds (NNCF's algorithm,
for TFLite).

Quantize fully; while the drop on the val set exceeds ``max_drop``: take the samples whose int8
outputs differ most from the float model's (the ranking subset), score every remaining layer by
keeping it (with the layers its output feeds, see ``LayerMap.unit``) in float on that subset,
keep the best one in float, and measure the drop on the whole val set again. Stop when the drop
holds, when ``max_float_ops`` layers run in float, or when no layer is left. The best model seen
is returned with the trace.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
from pydantic import BaseModel

from edgepack.evaluation.metrics import Metric, compute, drop as metric_drop
from edgepack.quantization.selective import BytesPredictor, SelectiveQuantizer


class ControlStep(BaseModel):
    """One round: the layers newly kept float, all float layers after it, and the drop measured."""

    kept_float: list[str]
    float_layers: list[str]
    metric: float
    drop: float
    size_bytes: int
    latency_ms: float | None = None  # one single-row invoke on the machine running edgepack, 1 thread


class RankedLayer(BaseModel):
    layer: str
    unit: list[str]
    metric: float
    output_mse: float


class AccuracyControl(BaseModel):
    """What accuracy control did: ``k of N layers kept in float``, the drop before and after, the trace."""

    metric: Metric
    drop_unit: str
    max_drop: float
    reference: float
    drop_before: float
    drop_after: float
    met: bool
    layers_total: int
    float_layers: list[str]
    ranking_samples: int
    trace: list[ControlStep]
    first_ranking: list[RankedLayer]
    seconds: float

    @property
    def summary(self) -> str:
        return (f"{len(self.float_layers)} of {self.layers_total} layers kept in float; {self.metric.value} drop "
                f"{self.drop_before:.2f} -> {self.drop_after:.2f} {self.drop_unit} (max {self.max_drop:g})")


class _Evaluator:
    def __init__(self, quantizer: SelectiveQuantizer, x: np.ndarray, y: np.ndarray, reference: np.ndarray,
                 metric: Metric, source: str):
        self.quantizer, self.x, self.y, self.reference, self.metric, self.source = \
            quantizer, x, y, reference, metric, source
        self.predictor = BytesPredictor()
        self.reference_value = compute(metric, y, reference, source)

    def run(self, float_layers: list[str], rows: np.ndarray | None = None) -> tuple[bytes, np.ndarray, float]:
        model = self.quantizer.quantize(float_layers)
        x = self.x if rows is None else self.x[rows]
        y = self.y if rows is None else self.y[rows]
        outputs = self.predictor.predict(model, x)
        return model, outputs, compute(self.metric, y, outputs, self.source)

    def step(self, kept: list[str], floats: list[str], model: bytes, value: float) -> ControlStep:
        """A trace step, with the model's size and its single-row latency here."""
        return ControlStep(kept_float=list(kept), float_layers=self.quantizer.float_layers_of(floats), metric=value,
                           drop=self.drop(value), size_bytes=len(model),
                           latency_ms=round(self.predictor.latency_ms(model, self.x[0]), 4))

    def drop(self, value: float) -> float:
        return metric_drop(self.metric, self.reference_value, value)


def _rank(ev: _Evaluator, float_layers: list[str], outputs: np.ndarray, samples: int) -> list[RankedLayer]:
    errors = np.mean((outputs.reshape(len(outputs), -1) - ev.reference.reshape(len(outputs), -1)) ** 2, axis=1)
    rows = np.sort(np.argsort(-errors, kind="stable")[:samples])
    ranked = []
    for layer in ev.quantizer.layers:
        if layer in float_layers:
            continue
        unit = [name for name in ev.quantizer.map.unit(layer) if name in ev.quantizer.layers]
        _, out, value = ev.run(float_layers + [n for n in unit if n not in float_layers], rows)
        mse = float(np.mean((out - ev.reference[rows]) ** 2))
        ranked.append(RankedLayer(layer=layer, unit=unit, metric=value, output_mse=mse))
    sign = -1 if ev.metric.higher_is_better else 1
    return sorted(ranked, key=lambda r: (sign * r.metric, r.output_mse))


def _first_that_fits(quantizer: SelectiveQuantizer, ranking: list[RankedLayer], floats: list[str],
                     max_float_ops: int | None) -> list[str] | None:
    for ranked in ranking:
        unit = [name for name in ranked.unit if name not in floats]
        if max_float_ops is None or len(quantizer.float_layers_of(floats + unit)) <= max_float_ops:
            return unit
    return None


def control_accuracy(quantizer: SelectiveQuantizer, x: np.ndarray, y: np.ndarray, reference_outputs: np.ndarray, *,
                     metric: Metric, max_drop: float, start: list[str] = (), max_float_ops: int | None = None,
                     ranking_samples: int = 100, source: str = "val",
                     say: Callable[[str], None] = lambda message: None) -> tuple[bytes, AccuracyControl]:
    """The best model found and the record of how (see the module docstring)."""
    started = time.perf_counter()
    ev = _Evaluator(quantizer, x, y, reference_outputs, metric, source)
    try:
        floats = list(start)
        model, outputs, value = ev.run(floats)
        trace = [ev.step(start, floats, model, value)]
        best, first_ranking = (trace[0].drop, model, trace[0]), []
        say(f"  accuracy control: full int8 drop {trace[0].drop:.2f} {metric.drop_unit} (max {max_drop:g})")
        while trace[-1].drop > max_drop:
            if max_float_ops is not None and len(trace[-1].float_layers) >= max_float_ops:
                break
            ranking = _rank(ev, floats, outputs, ranking_samples)
            first_ranking = first_ranking or ranking
            unit = _first_that_fits(quantizer, ranking, floats, max_float_ops)
            if unit is None:
                break
            floats += unit
            model, outputs, value = ev.run(floats)
            trace.append(ev.step(unit, floats, model, value))
            say(f"  kept {', '.join(unit)} in float: drop {trace[-1].drop:.2f} {metric.drop_unit}")
            if trace[-1].drop < best[0]:
                best = (trace[-1].drop, model, trace[-1])
    finally:
        ev.predictor.close()
    chosen = best[2]
    return best[1], AccuracyControl(
        metric=metric, drop_unit=metric.drop_unit, max_drop=max_drop, reference=ev.reference_value,
        drop_before=trace[0].drop, drop_after=chosen.drop, met=chosen.drop <= max_drop,
        layers_total=len(quantizer.layers), float_layers=chosen.float_layers, ranking_samples=ranking_samples,
        trace=trace, first_ranking=first_ranking[:20], seconds=round(time.perf_counter() - started, 3))
