"""Accuracy control's last resort: quantization-aware training of the whole model (every layer int8)."""

from __future__ import annotations

from edgepack.evaluation.metrics import compute, drop as metric_drop
from edgepack.loading.model import LoadedModel
from edgepack.quantization.mixed import MixedPrecision, QatFallback, _val
from edgepack.quantization.selective import BytesPredictor


def qat_fallback(config, loaded: LoadedModel, best: bytes, mixed: MixedPrecision, *, say) -> tuple[bytes, MixedPrecision]:
    """QAT on ``config.calibration`` (the training data); the QAT model is used when its drop on
    ``config.val`` is smaller than the best float-layer model's. Both figures are recorded."""
    from edgepack.compress.qat import train_and_convert
    from edgepack.steps.qat import QatConfig

    say("  accuracy control missed its target; trying quantization-aware training (--fallback qat)")
    qat_config = QatConfig(model=config.model, data=config.calibration, output=config.output, io=config.io,
                           static_batch=config.static_batch, trust_model=config.trust_model, seed=config.seed)
    flatbuffer, facts = train_and_convert(qat_config)
    x, y, source = _val(config.val, loaded)
    predictor = BytesPredictor()
    try:
        value = compute(config.metric, y, predictor.predict(flatbuffer, x), source)
    finally:
        predictor.close()
    control = mixed.control
    drop = metric_drop(config.metric, control.reference, value)
    used = drop < control.drop_after
    say(f"  qat: drop {drop:.2f} {control.drop_unit}" + (" (used)" if used else " (not better; not used)"))
    fallback = QatFallback(drop=drop, float_layers_drop=control.drop_after, met=drop <= control.max_drop, used=used,
                           steps=facts.steps, seconds=facts.seconds, preserve=facts.preserve)
    if not used:
        return best, mixed.model_copy(update={"fallback": fallback})
    met = control.model_copy(update={"met": drop <= control.max_drop, "drop_after": drop, "float_layers": []})
    return flatbuffer, mixed.model_copy(update={"fallback": fallback, "control": met, "float_layers": []})
