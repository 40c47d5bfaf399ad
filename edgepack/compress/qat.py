"""Quantization-aware training through tfmot on the tf_keras bridge, then full-int8 conversion.

Schemes: plain QAT, PQAT (keeps a pruned model's zeros), CQAT (keeps a clustered model's
centroids) and PCQAT (both). ``auto`` picks from the weights: kernels at least 30% zeros mean
sparsity, every large kernel with at most 256 distinct values means clusters.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from edgepack.compress import bridge
from edgepack.compress.batchnorm import BatchNormReport
from edgepack.compress.pipeline import Technique, _prepare, refresh_batchnorm
from edgepack.compress.training import Plan, fine_tune, make_strategy, scope, training_targets
from edgepack.errors import ModelError
from edgepack.util.tf import captured_native_output, import_tf

SPARSE_AT = 0.3
CLUSTERED_AT = 256


def detect_preserve(model) -> str:
    """``none``, ``sparsity``, ``clusters`` or ``both``, from the model's kernels."""
    from edgepack.compress.layers import compressed_kernel

    kernels = [np.asarray(compressed_kernel(layer)) for layer in model.layers if compressed_kernel(layer) is not None]
    if not kernels:
        return "none"
    zeros = sum(int(np.sum(k == 0)) for k in kernels) / sum(k.size for k in kernels)
    large = [k for k in kernels if k.size > CLUSTERED_AT * 2]
    clustered = bool(large) and all(np.unique(k).size <= CLUSTERED_AT for k in large)
    sparse = zeros >= SPARSE_AT
    return "both" if sparse and clustered else "sparsity" if sparse else "clusters" if clustered else "none"


def _scheme(tfmot, preserve: str):
    combine = tfmot.experimental.combine
    if preserve == "sparsity":
        return combine.Default8BitPrunePreserveQuantizeScheme()
    if preserve in ("clusters", "both"):
        return combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=preserve == "both")
    return None


def _build(tfmot, prepared, preserve: str, equalized: list | None):
    """The QAT model maker; when ``equalized`` is a list, equalization runs first and records its pairs there."""
    def build():
        try:
            with captured_native_output():
                working = bridge.rebuild(prepared.loaded.model, bridge.TF_KERAS)
                if equalized is not None:
                    from edgepack.quantization.equalize import equalize_model

                    equalized[:] = equalize_model(working)
                quant = tfmot.quantization.keras
                scheme = _scheme(tfmot, preserve)
                if scheme is None:
                    return quant.quantize_model(working)
                return quant.quantize_apply(quant.quantize_annotate_model(working), scheme)
        except ModelError:
            raise
        except Exception as exc:  # tfmot raises ValueError/RuntimeError for layers it cannot quantize
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ModelError(f"tfmot could not prepare {prepared.loaded.info.path} for quantization-aware training: "
                             f"{reason[:300]}", hint="accuracy control (quantize --max-drop) needs no training") from exc

    return build


def _convert(tf, model, io: str, static_batch: bool) -> bytes:
    """Full-int8 conversion of the fake-quantized tf_keras model (from its inference function and
    variables: 1.5 s instead of 6 s for a 20-layer CNN, the same outputs)."""
    from edgepack.quantization.convert import conversion_error, tf_keras_converter

    converter = tf_keras_converter(tf, model, static_batch)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    io_type = {"float32": tf.float32, "int8": tf.int8, "uint8": tf.uint8}[io]
    converter.inference_input_type = io_type
    converter.inference_output_type = io_type
    captured: list[str] = []
    try:
        with captured_native_output() as captured:
            return converter.convert()
    except Exception as exc:  # the converter raises ConverterError, ValueError, RuntimeError...
        raise conversion_error(exc, captured) from exc


class QatTraining(BaseModel):
    """What the QAT fine-tuning did: what it preserved, the equalized pairs, the training run and its device."""

    preserve: str
    equalized: list[dict] | None = None
    train_samples: int
    steps: int
    final_loss: float | None = None
    seconds: float
    source_sha256: str
    batchnorm: BatchNormReport | None = None
    trained_on: str | None = None


def train_and_convert(config, progress=None) -> tuple[bytes, QatTraining]:
    """QAT-fine-tune ``config.model`` on ``config.data`` and convert it to full int8; ``(bytes, facts)``."""
    strategy = make_strategy(config.distribute)
    everything = Technique(name="qat", flag="quantized", needs="Conv1D, Conv2D or Dense layer",
                           eligible=lambda layer: None, wrap=lambda *a: None, strip=lambda *a: None)
    prepared = _prepare(config, everything)
    preserve = detect_preserve(prepared.loaded.model) if config.preserve == "auto" else config.preserve
    equalize = config.equalize if config.equalize is not None else preserve in ("none", "sparsity")
    equalized = [] if equalize and preserve in ("none", "sparsity") else None
    if progress is not None:
        progress.note(f"qat: loss {prepared.loss.describe()}; preserving {preserve}"
                      f"{'; cross-layer equalization' if equalized is not None else ''}")
    tf = import_tf()
    with captured_native_output():
        import tensorflow_model_optimization as tfmot
    plan = Plan(len(prepared.train), config.batch_size, config.epochs)
    targets, loss_fn = training_targets(config, prepared)
    result = fine_tune(_build(tfmot, prepared, preserve, equalized), strategy=strategy, loss=prepared.loss, x=prepared.train.x,
                       y=targets, plan=plan, learning_rate=config.learning_rate, callbacks=[],
                       progress=progress, title="qat", seed=config.seed, loss_fn=loss_fn)
    with scope(strategy):  # tfmot keeps BatchNormalization (wrapped) in the QAT model; the converter folds it
        batchnorm = refresh_batchnorm(config, prepared, result.model, progress, "qat")
    flatbuffer = _convert(tf, result.model, config.io.value, bool(config.static_batch))
    return flatbuffer, QatTraining(
        preserve=preserve, equalized=None if equalized is None else [p.model_dump() for p in equalized],
        train_samples=len(prepared.train), steps=plan.total_steps, final_loss=result.final_loss,
        seconds=round(result.seconds, 3), source_sha256=prepared.source_sha, batchnorm=batchnorm,
        trained_on=result.device)
