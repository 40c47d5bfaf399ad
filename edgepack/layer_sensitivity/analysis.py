"""Per-layer sensitivity: what int8, pruning and clustering each cost, layer by layer.

* int8: the op's output error (RMSE in units of its quantization step, from TensorFlow's
  QuantizationDebugger on the calibrated model) and the metric when the layer (with the layers its
  output feeds) stays float while the rest is full int8;
* pruning: the metric drop when the layer alone is pruned by magnitude (no fine-tuning);
* clustering: the metric drop when the layer alone is clustered (1-D k-means, no fine-tuning).
Layers are named by their Keras names; the ranking puts the layer whose float copy helps most first.
"""

from __future__ import annotations

import time

import numpy as np
from pydantic import BaseModel

from edgepack.evaluation.metrics import Metric, compute, drop as metric_drop
from edgepack.loading.model import LoadedModel
from edgepack.quantization.selective import BytesPredictor, SelectiveQuantizer
from edgepack.layer_sensitivity.weights import cluster_kernel, prune_kernel
from edgepack.util.tf import captured_native_output

PRUNE_LEVELS = (0.5, 0.8, 0.9)
CLUSTER_LEVELS = (8, 16, 32)


class LayerSensitivity(BaseModel):
    """One layer's figures; drops are in the metric's drop unit (accuracy: percentage points)."""

    layer: str
    class_name: str
    weights: int
    int8_error: float | None = None
    int8_drop_if_float: float | None = None
    int8_gain_if_float: float | None = None
    float_unit: list[str] = []
    prune_drop: dict[str, float] = {}
    cluster_drop: dict[str, float] = {}


class Sensitivity(BaseModel):
    """The result of ``edgepack sensitivity``."""

    model: str
    data: str
    samples: int
    metric: Metric
    drop_unit: str
    reference: float
    int8: float | None = None
    int8_drop: float | None = None
    ranking: list[str]
    layers: list[LayerSensitivity]
    seconds: float

    def int8_errors(self) -> dict[str, float]:
        """Each layer's int8 error (RMSE over its quantization step), for the layers that have one."""
        return {row.layer: row.int8_error for row in self.layers if row.int8_error is not None}


def _rmse_over_scale(floats, quantized, scale, zero_point) -> float:
    f = np.concatenate([np.asarray(t, np.float64).ravel() for t in floats])
    q = np.concatenate([np.asarray(t, np.float64).ravel() for t in quantized])
    return float(np.sqrt(np.mean(((q - zero_point) * scale - f) ** 2)) / scale) if scale else 0.0


def int8_errors(quantizer: SelectiveQuantizer, rows: np.ndarray) -> dict[str, float]:
    """RMSE / quantization step of each layer's op output (the largest over a layer's ops)."""
    import tensorflow as tf
    from tensorflow.lite.python.convert import mlir_quantize

    def dataset():
        for row in rows:
            yield [row[None, ...]]

    with captured_native_output():
        debug_model = mlir_quantize(quantizer.calibrated, enable_numeric_verify=True)
        options = tf.lite.experimental.QuantizationDebugOptions(
            layer_direct_compare_metrics={"rmse_over_scale": _rmse_over_scale})
        debugger = tf.lite.experimental.QuantizationDebugger(quant_debug_model_content=debug_model,
                                                             debug_dataset=dataset, debug_options=options)
        debugger.run()
    errors: dict[str, float] = {}
    for name, stats in debugger.layer_statistics.items():
        layer = quantizer.map.layer_of(name)
        if layer is not None:
            errors[layer] = max(errors.get(layer, 0.0), float(np.asarray(stats["rmse_over_scale"]).ravel()[0]))
    return errors


def _int8_figures(quantizer, x, y, reference: float, metric: Metric, source: str) -> tuple[float, dict]:
    predictor = BytesPredictor()
    try:
        full = compute(metric, y, predictor.predict(quantizer.quantize([]), x), source)
        figures = {}
        for layer in quantizer.layers:
            unit = [name for name in quantizer.map.unit(layer) if name in quantizer.layers]
            value = compute(metric, y, predictor.predict(quantizer.quantize(unit), x), source)
            figures[layer] = (unit, metric_drop(metric, reference, value))
    finally:
        predictor.close()
    return full, figures


def _weight_drops(loaded: LoadedModel, x, y, reference: float, metric: Metric, source: str) -> dict[str, dict]:
    drops: dict[str, dict] = {}
    from edgepack.compress.layers import compressed_kernel

    for layer in loaded.model.layers:
        kernel = compressed_kernel(layer)
        if kernel is None:
            continue
        original = layer.get_weights()
        index = next(i for i, w in enumerate(original) if w.shape == tuple(kernel.shape))
        figures = {"prune": {}, "cluster": {}}
        for kind, levels, change in (("prune", PRUNE_LEVELS, prune_kernel), ("cluster", CLUSTER_LEVELS, cluster_kernel)):
            for level in levels:
                changed = list(original)
                changed[index] = change(original[index], level)
                layer.set_weights(changed)
                value = compute(metric, y, loaded.predict(x), source)
                figures[kind][f"{level:g}"] = round(metric_drop(metric, reference, value), 4)
        layer.set_weights(original)
        drops[layer.name] = figures
    return drops


def analyse(loaded: LoadedModel, calibration: np.ndarray, x: np.ndarray, y: np.ndarray, *, metric: Metric,
            source: str, int8: bool = True, weights: bool = True, error_rows: int = 100) -> Sensitivity:
    """Every layer's sensitivity to int8 (when ``int8``) and to pruning and clustering (``weights``)."""
    started = time.perf_counter()
    reference = compute(metric, y, loaded.predict(x), source)
    full, figures, errors = None, {}, {}
    if int8:
        quantizer = SelectiveQuantizer(loaded, calibration)
        full, figures = _int8_figures(quantizer, x, y, reference, metric, source)
        errors = int8_errors(quantizer, calibration[:error_rows])
    drops = _weight_drops(loaded, x, y, reference, metric, source) if weights else {}
    full_drop = None if full is None else metric_drop(metric, reference, full)
    layers = []
    for layer in loaded.model.layers:
        if layer.name not in figures and layer.name not in drops:
            continue
        unit, drop_if_float = figures.get(layer.name, (None, None))
        layers.append(LayerSensitivity(
            layer=layer.name, class_name=type(layer).__name__, weights=int(sum(np.prod(w.shape) for w in layer.weights)),
            int8_error=errors.get(layer.name), int8_drop_if_float=drop_if_float,
            int8_gain_if_float=None if drop_if_float is None else full_drop - drop_if_float, float_unit=unit or [],
            prune_drop=drops.get(layer.name, {}).get("prune", {}), cluster_drop=drops.get(layer.name, {}).get("cluster", {})))
    ranking = [s.layer for s in sorted(layers, key=lambda s: (-(s.int8_gain_if_float or 0.0), -(s.int8_error or 0.0)))]
    return Sensitivity(model=str(loaded.info.path), data=source, samples=len(x), metric=metric,
                       drop_unit=metric.drop_unit, reference=reference, int8=full, int8_drop=full_drop,
                       ranking=ranking, layers=layers, seconds=round(time.perf_counter() - started, 3))
