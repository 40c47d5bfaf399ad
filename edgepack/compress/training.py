"""Fine-tuning helpers: the tf.distribute strategy, the tf_keras loss, and the training loop."""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass
from enum import Enum
from typing import Callable

import numpy as np

from edgepack.compress.loss import LossChoice
from edgepack.compress.progress import ProgressSink, keras_callback
from edgepack.errors import ConfigError, RuntimeUnavailable
from edgepack.util.tf import import_tf


class Distribute(str, Enum):
    NONE = "none"
    MIRRORED = "mirrored"
    MULTIWORKER = "multiworker"


@dataclass
class Plan:
    """How long fine-tuning runs: what schedules and callbacks are sized from."""

    samples: int
    batch_size: int
    epochs: int

    @property
    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(self.samples / self.batch_size))

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs


def make_strategy(mode: Distribute):
    """The tf.distribute strategy for ``mode`` (None for ``none``).

    ``mirrored`` uses every GPU, or every logical CPU device when there is no GPU (split one CPU
    with ``tf.config.set_logical_device_configuration`` before TF starts). ``multiworker``
    reads the cluster from TF_CONFIG (one local worker without it); create it before any other
    TensorFlow work, as tf.distribute requires.
    """
    if mode is Distribute.NONE:
        return None
    tf = import_tf()
    try:
        if mode is Distribute.MIRRORED:
            gpus = tf.config.list_logical_devices("GPU")
            if gpus:
                return tf.distribute.MirroredStrategy(devices=[d.name for d in gpus])
            # CPU collectives mis-pair the batched all-reduce of tfmot's clustering gradients
            # ("Shape mismatch in the collective instance"); reducing on one device avoids it.
            cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
            return tf.distribute.MirroredStrategy(devices=cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())
        _check_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    except (RuntimeError, ValueError) as exc:
        raise RuntimeUnavailable(f"cannot start the {mode.value} strategy: {str(exc).splitlines()[0][:200]}",
                                 hint="check TF_CONFIG and that every worker is reachable") from exc


def _check_tf_config() -> None:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return
    try:
        config = json.loads(raw)
        config["cluster"], config["task"]["type"], config["task"]["index"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError("TF_CONFIG is not valid JSON with 'cluster' and 'task' {type, index}",
                          hint="see https://www.tensorflow.org/guide/distributed_training#TF_CONFIG") from exc


def replicas(strategy) -> int:
    """How many replicas train in sync (1 without a strategy)."""
    return 1 if strategy is None else int(strategy.num_replicas_in_sync)


def scope(strategy):
    """The strategy's scope, or a no-op context without one."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


# Tracing the training step of a wrapped model costs seconds per hundred layers (18 s for MobileNetV3Small,
# where 4 eager steps took 2.3 s): a fine-tuning this short runs eagerly instead. Same computation.
EAGER_MAX_STEPS = 16


@dataclass
class TrainResult:
    model: object
    final_loss: float | None
    seconds: float
    device: str


def training_device(strategy=None) -> str:
    """Where fine-tuning runs, in words: ``GPU: NVIDIA H100 80GB HBM3``, ``2 x GPU: ...`` under a strategy,
    or ``CPU: AMD EPYC 7B13 (2 cores)``. TensorFlow trains on the first visible GPU when there is one."""
    tf = import_tf()
    if strategy is not None:
        devices = list(strategy.extended.worker_devices)
        gpus = [d for d in devices if "GPU" in d.upper()]
        if gpus:
            return f"{len(gpus)} x {_gpu_name(tf)}" if len(gpus) > 1 else _gpu_name(tf)
        return f"{len(devices)} x {_cpu_name()}" if len(devices) > 1 else _cpu_name()
    return _gpu_name(tf) if tf.config.list_logical_devices("GPU") else _cpu_name()


def _gpu_name(tf) -> str:
    gpus = tf.config.list_physical_devices("GPU")
    details = {}
    with contextlib.suppress(Exception):
        details = tf.config.experimental.get_device_details(gpus[0])
    return f"GPU: {details.get('device_name') or gpus[0].name}"


def _cpu_name() -> str:
    import platform

    name = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
            if line.lower().startswith(("model name", "hardware")):
                name = line.split(":", 1)[1].strip()
                break
    return f"CPU: {name} ({os.cpu_count()} cores)"


def fine_tune(build: Callable[[], object], *, strategy, loss: LossChoice, x: np.ndarray, y: np.ndarray,
              plan: Plan, learning_rate: float, callbacks: list, progress: ProgressSink | None,
              title: str, seed: int, loss_fn=None) -> TrainResult:
    """Build the wrapped tf_keras model inside the strategy scope, compile it and fit it on (x, y).

    ``loss_fn`` replaces ``loss``'s own loss object (distillation packs teacher outputs into ``y``; a
    model with several outputs gets one loss per output and ``y`` as a list)."""
    import tf_keras

    tf_keras.utils.set_random_seed(seed)
    with scope(strategy):
        model = build()
        model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate),
                      loss=loss_fn if loss_fn is not None else loss.loss_object(tf_keras),
                      run_eagerly=strategy is None and plan.total_steps <= EAGER_MAX_STEPS)
    callbacks = list(callbacks)
    if progress is not None:
        callbacks.append(keras_callback(progress))
        progress.start(title, plan.epochs, plan.steps_per_epoch)
    start = time.perf_counter()
    try:
        history = model.fit(x, y, batch_size=plan.batch_size, epochs=plan.epochs, shuffle=True, verbose=0,
                            callbacks=callbacks)
    finally:
        if progress is not None:
            progress.stop()
    losses = history.history.get("loss") or [None]
    final = losses[-1]
    return TrainResult(model, None if final is None else float(final), time.perf_counter() - start,
                       training_device(strategy))


def training_targets(config, prepared) -> tuple[object, object]:
    """``(y, loss_fn)`` for fine-tuning: the labels, or with ``config.distill`` the labels packed with
    the original model's outputs on the training data (computed once) and the distillation loss.

    A model with several outputs trains the labelled one (``prepared.output``) on that, and every
    other output on the source model's own predictions (computed once) with mean squared error:
    ``y`` and ``loss_fn`` are then lists in ``model.outputs`` order."""
    from edgepack.compress import bridge

    output = prepared.output
    distill = getattr(config, "distill", False)
    teacher = bridge.outputs_of(prepared.loaded.model, prepared.train.x) if distill or output.count > 1 else None
    y, loss_fn = prepared.y_train, None
    if distill:
        from edgepack.compress.distill import distillation_loss, pack_targets

        labelled = teacher[output.index]
        y = pack_targets(prepared.y_train, labelled)
        loss_fn = distillation_loss(prepared.loss, temperature=config.temperature, alpha=config.alpha,
                                    outputs=int(np.prod(labelled.shape[1:])))
    if output.count == 1:
        return y, loss_fn
    import tf_keras

    targets = [y if i == output.index else teacher[i].astype(np.float32) for i in range(output.count)]
    labelled_loss = loss_fn if loss_fn is not None else prepared.loss.loss_object(tf_keras)
    losses = [labelled_loss if i == output.index else tf_keras.losses.MeanSquaredError() for i in range(output.count)]
    return targets, losses
