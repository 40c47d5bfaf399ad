"""Accuracy control: raise the precision of the most harmful layers until the drop holds (NNCF's
algorithm, for TFLite, with a ladder of precisions).

Quantize fully; while the drop on the val set exceeds ``max_drop``: take the samples whose int8
outputs differ most from the float model's (the ranking subset), score every layer not yet at the
top of the ladder (``promote``: float, or int16x8 then float) by raising it (with the layers its
output feeds, see ``LayerMap.unit``) one rung on that subset, keep the best change, and measure
the drop on the whole val set again. Stop when the drop holds, when ``max_float_ops`` layers run
in float, or when no layer can rise. The best model seen is returned with the trace.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
from pydantic import BaseModel

from edgepack.evaluation.metrics import Metric, compute, drop as metric_drop
from edgepack.quantization.selective import BytesPredictor, LayerOps


ORDER = ("int4", "int8", "int16x8", "float")


def _raised(assignment: dict[str, str], layers: list[str], precision: str, base: str = "int8") -> dict[str, str]:
    """``assignment`` with ``layers`` at ``precision`` or higher (a layer not in it is at ``base``)."""
    out = dict(assignment)
    for name in layers:
        if ORDER.index(precision) > ORDER.index(out.get(name, base)):
            out[name] = precision
    return out


class ControlStep(BaseModel):
    """One round: the layers newly raised (to ``precision``), the float and int16x8 layers after it,
    and the drop measured."""

    kept_float: list[str]
    float_layers: list[str]
    int16_layers: list[str] = []
    int8_layers: list[str] = []   # int4 models: the layers raised to int8 weights
    precision: str = "float"
    metric: float
    drop: float
    size_bytes: int
    latency_ms: float | None = None  # one single-row invoke on the machine running edgepack, 1 thread


class RankedLayer(BaseModel):
    layer: str
    unit: list[str]
    precision: str = "float"
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
    int16_layers: list[str] = []
    int8_layers: list[str] = []
    promote: list[str] = ["float"]
    ranking_samples: int
    trace: list[ControlStep]
    first_ranking: list[RankedLayer]
    seconds: float

    @property
    def summary(self) -> str:
        wide = f"{len(self.int16_layers)} in int16x8, " if "int16x8" in self.promote else ""
        if "int8" in self.promote:
            wide = f"{len(self.int8_layers)} raised from int4 to int8 weights, {wide}"
        return (f"{wide}{len(self.float_layers)} of {self.layers_total} layers kept in float; {self.metric.value} "
                f"drop {self.drop_before:.2f} -> {self.drop_after:.2f} {self.drop_unit} (max {self.max_drop:g})")


class _Evaluator:
    def __init__(self, quantizer: "LayerOps", x: np.ndarray, y: np.ndarray, reference: np.ndarray,
                 metric: Metric, source: str):
        self.quantizer, self.x, self.y, self.reference, self.metric, self.source = \
            quantizer, x, y, reference, metric, source
        self.predictor = BytesPredictor()
        self.reference_value = compute(metric, y, reference, source)

    def run(self, assignment: dict[str, str], rows: np.ndarray | None = None) -> tuple[bytes, np.ndarray, float]:
        model = self.quantizer.quantize_assigned(assignment)
        x = self.x if rows is None else self.x[rows]
        y = self.y if rows is None else self.y[rows]
        outputs = self.predictor.predict(model, x)
        return model, outputs, compute(self.metric, y, outputs, self.source)

    def step(self, kept: list[str], assignment: dict[str, str], model: bytes, value: float,
             precision: str = "float") -> ControlStep:
        """A trace step, with the model's size and its single-row latency here."""
        floats = self.quantizer.float_layers_of([n for n, p in assignment.items() if p == "float"])
        wide = [n for n in self.quantizer.layers if assignment.get(n) == "int16x8" and n not in floats]
        eights = [n for n in self.quantizer.layers if assignment.get(n) == "int8" and n not in floats]
        return ControlStep(kept_float=list(kept), float_layers=floats, int16_layers=wide, int8_layers=eights,
                           precision=precision,
                           metric=value, drop=self.drop(value), size_bytes=len(model),
                           latency_ms=round(self.predictor.latency_ms(model, self.x[0]), 4))

    def drop(self, value: float) -> float:
        return metric_drop(self.metric, self.reference_value, value)


def _next_rung(current: str, promote: list[str]) -> str | None:
    return next((p for p in promote if ORDER.index(p) > ORDER.index(current)), None)


def _rank(ev: _Evaluator, assignment: dict[str, str], outputs: np.ndarray, samples: int,
          promote: list[str]) -> list[RankedLayer]:
    errors = np.mean((outputs.reshape(len(outputs), -1) - ev.reference.reshape(len(outputs), -1)) ** 2, axis=1)
    rows = np.sort(np.argsort(-errors, kind="stable")[:samples])
    ranked = []
    for layer in ev.quantizer.layers:
        precision = _next_rung(assignment.get(layer, ev.quantizer.base), promote)
        if precision is None:
            continue
        unit = [name for name in ev.quantizer.map.unit(layer) if name in ev.quantizer.layers]
        _, out, value = ev.run(_raised(assignment, unit, precision, ev.quantizer.base), rows)
        mse = float(np.mean((out - ev.reference[rows]) ** 2))
        ranked.append(RankedLayer(layer=layer, unit=unit, precision=precision, metric=value, output_mse=mse))
    sign = -1 if ev.metric.higher_is_better else 1
    return sorted(ranked, key=lambda r: (sign * r.metric, r.output_mse, ORDER.index(r.precision)))


def _first_that_fits(quantizer, ranking: list[RankedLayer], assignment: dict[str, str],
                     max_float_ops: int | None) -> RankedLayer | None:
    for ranked in ranking:
        floats = [n for n, p in _raised(assignment, ranked.unit, ranked.precision, quantizer.base).items()
                  if p == "float"]
        if max_float_ops is None or len(quantizer.float_layers_of(floats)) <= max_float_ops:
            return ranked
    return None


def control_accuracy(quantizer, x: np.ndarray, y: np.ndarray, reference_outputs: np.ndarray, *,
                     metric: Metric, max_drop: float, start: list[str] = (), max_float_ops: int | None = None,
                     ranking_samples: int = 100, source: str = "val", promote: list[str] = ("float",),
                     say: Callable[[str], None] = lambda message: None) -> tuple[bytes, AccuracyControl]:
    """The best model found and the record of how (see the module docstring). ``quantizer`` is a
    SelectiveQuantizer (float only) or a PrecisionQuantizer (int16x8 and float)."""
    started = time.perf_counter()
    ev = _Evaluator(quantizer, x, y, reference_outputs, metric, source)
    promote = list(promote)
    try:
        assignment = {name: "float" for name in start}
        model, outputs, value = ev.run(assignment)
        trace = [ev.step(list(start), assignment, model, value)]
        best, first_ranking = (trace[0].drop, model, trace[0]), []
        say(f"  accuracy control: {'int4 weights' if quantizer.base == 'int4' else 'full int8'} drop {trace[0].drop:.2f} {metric.drop_unit} (max {max_drop:g})")
        while trace[-1].drop > max_drop:
            if max_float_ops is not None and len(trace[-1].float_layers) >= max_float_ops and promote == ["float"]:
                break
            ranking = _rank(ev, assignment, outputs, ranking_samples, promote)
            first_ranking = first_ranking or ranking
            chosen = _first_that_fits(quantizer, ranking, assignment, max_float_ops)
            if chosen is None:
                break
            unit = [n for n in chosen.unit
                    if ORDER.index(assignment.get(n, quantizer.base)) < ORDER.index(chosen.precision)]
            assignment = _raised(assignment, chosen.unit, chosen.precision, quantizer.base)
            model, outputs, value = ev.run(assignment)
            trace.append(ev.step(unit, assignment, model, value, chosen.precision))
            say(f"  {', '.join(unit)} to {chosen.precision}: drop {trace[-1].drop:.2f} {metric.drop_unit}")
            if trace[-1].drop < best[0]:
                best = (trace[-1].drop, model, trace[-1])
    finally:
        ev.predictor.close()
    chosen_step = best[2]
    return best[1], AccuracyControl(
        metric=metric, drop_unit=metric.drop_unit, max_drop=max_drop, reference=ev.reference_value,
        drop_before=trace[0].drop, drop_after=chosen_step.drop, met=chosen_step.drop <= max_drop,
        layers_total=len(quantizer.layers), float_layers=chosen_step.float_layers,
        int16_layers=chosen_step.int16_layers, int8_layers=chosen_step.int8_layers, promote=promote, ranking_samples=ranking_samples,
        trace=trace, first_ranking=first_ranking[:20], seconds=round(time.perf_counter() - started, 3))
