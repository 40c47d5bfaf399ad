"""The path prune and cluster share: load, check, bridge (checked against the source's outputs),
fine-tune, strip, copy the weights back into the source model, save, report."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from edgepack.compress import bridge
from edgepack.compress.batchnorm import BatchNormReport, batchnorm_layers, reestimate
from edgepack.compress.config import CompressConfig
from edgepack.compress.result import KerasArtifact
from edgepack.compress.layers import NO_KERNEL, check_supported, refuse_unsupported, select_layers
from edgepack.compress.loss import LossChoice, check_targets, choose_loss, last_activation, metric, require_targets
from edgepack.compress.progress import ProgressSink
from edgepack.compress.report import layer_reports
from edgepack.compress.training import Plan, fine_tune, make_strategy, replicas, training_targets
from edgepack.errors import ConfigError, ModelError
from edgepack.loading.data import Dataset, fit_to_input, load_data
from edgepack.loading.model import LoadedModel, load_model
from edgepack.util.files import atomic_output, check_writable_target, sha256_file
from edgepack.util.provenance import write_sidecar
from edgepack.util.tf import captured_native_output, import_tf


@dataclass
class Technique:
    """What one compression step does to the tf_keras model; the rest of the path is shared."""

    name: str                                   # "prune" or "cluster"
    flag: str                                   # per-layer report key: "pruned" or "clustered"
    needs: str                                  # what a layer needs, for the "nothing to do" message
    eligible: Callable[[object], str | None]    # None if the layer can be compressed, else why not
    wrap: Callable[[object, object, Plan], object] | None   # (tfmot, layer, plan) -> wrapped layer; None: train as is
    strip: Callable[[object, object], object]   # (tfmot, model) -> model without wrappers
    callbacks: Callable[[object, Plan], list] = lambda tfmot, plan: []
    describe: Callable[[Plan], dict] = lambda plan: {}   # extra facts for the sidecar (e.g. the schedule)
    prepare: Callable[[object], dict] = lambda prepared: {}   # after the checks, before training (allocation)


def _load(config: CompressConfig) -> LoadedModel:
    loaded = load_model(config.model, trust_model=config.trust_model)
    if not loaded.is_keras:
        raise ModelError(f"{config.model} is a plain SavedModel without Keras layers; {config.output.suffix} "
                         f"output and fine-tuning need a Keras model", hint="give the .keras or .h5 file")
    check_supported(loaded.model, config.model)
    return loaded


def _data(spec, loaded: LoadedModel, config: CompressConfig) -> Dataset:
    dataset = load_data(spec, input_shape=loaded.input_shape)
    return fit_to_input(dataset, loaded.input_shape, loaded.input_dtype, model_name=str(config.model))


@dataclass
class OutputPick:
    """The output trained on the labels: its name, its position in ``model.outputs``, how many there are."""

    name: str
    index: int
    count: int

    @property
    def others(self) -> list[int]:
        return [i for i in range(self.count) if i != self.index]


def _pick_output(model, path, name: str | None) -> OutputPick:
    """The output the labels are for: the only one, or the one named (ConfigError, exit 2, listing them)."""
    names = bridge.output_names(model)
    if name is None and len(names) == 1:
        return OutputPick(names[0], 0, 1)
    if name in names:
        return OutputPick(name, names.index(name), len(names))
    what = f"has no output {name!r}" if name is not None else f"has {len(names)} outputs"
    raise ConfigError(f"{path} {what} ({', '.join(names)}); fine-tuning needs the one the labels are for",
                      hint="name it with --output-name NAME (recipe: data.output); the other outputs are kept "
                           "close to the model's own predictions")


def _targets(dataset: Dataset, loss: LossChoice, model, output: OutputPick) -> np.ndarray:
    return check_targets(loss, dataset.y, tuple(model.outputs[output.index].shape), dataset.source)


def _save(model, path: Path, loss: LossChoice, output: OutputPick) -> None:
    """Save ``model`` (compiled with ``loss`` on the labelled output, so the next step finds it) through a
    temporary file."""
    loss_object = loss.loss_object(bridge.keras_module(bridge.flavor_of(model)))
    model.compile(optimizer="adam", loss=loss_object if output.count == 1 else {output.name: loss_object})
    with atomic_output(path) as tmp:
        staged = tmp.with_name(tmp.name + path.suffix.lower())
        try:
            with captured_native_output():
                model.save(staged)
            os.replace(staged, tmp)
        finally:
            staged.unlink(missing_ok=True)


def _nothing_to_do(technique: Technique, config: CompressConfig, skipped: dict[str, str]) -> ModelError:
    kernels = {name: reason for name, reason in skipped.items() if reason != NO_KERNEL}
    why = "; ".join(f"{name}: {reason}" for name, reason in list(kernels.items())[:4])
    why = why or f"it has no {technique.needs}"
    hint = f"{technique.name} needs at least one {technique.needs}"
    if config.exclude:
        hint += f"; --exclude {config.exclude!r} may have excluded them"
    return ModelError(f"nothing to {technique.name} in {config.model} ({why})", hint=hint)


@dataclass
class _Prepared:
    """Everything checked before training starts (so bad input fails in seconds, not after epochs)."""

    loaded: LoadedModel
    source_sha: str
    chosen: list[str]
    skipped: dict[str, str]
    loss: LossChoice
    train: Dataset
    y_train: np.ndarray
    val: Dataset | None
    y_val: np.ndarray | None
    output: OutputPick
    rebuilt: object = None              # the model trained, rebuilt in tf_keras (checked against the source)
    bridge_difference: float | None = None
    val_before: tuple[str, float] | None = None
    student: object = None              # a smaller model made from the source (channel pruning), trained instead

    @property
    def target(self):
        """The model fine-tuned and written: the source, or the student made from it."""
        return self.student if self.student is not None else self.loaded.model

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The source model's labelled output on ``x``."""
        return bridge.outputs_of(self.loaded.model, x)[self.output.index]


def _check_bridge(prepared: _Prepared, path) -> None:
    """Rebuild the source in tf_keras and check that it computes the same outputs on training rows."""
    rows = prepared.train.x[:32]
    with captured_native_output():
        prepared.rebuilt = bridge.rebuild(prepared.loaded.model, bridge.TF_KERAS)
        prepared.bridge_difference = bridge.check_same_function(prepared.loaded.model, prepared.rebuilt, rows, path)


def _prepare(config: CompressConfig, technique: Technique) -> _Prepared:
    loaded = _load(config)
    source = loaded.model
    source_sha = loaded.info.sha256  # hashed now: -o may overwrite MODEL
    if technique.wrap is None:  # the technique decides what it changes itself (channel pruning)
        chosen, skipped = [name for name, layer in bridge.leaf_layers(source) if layer.weights], {}
    else:
        chosen, skipped = select_layers(source, config.exclude, technique.eligible)
    if getattr(config, "unsupported", "skip") == "refuse" and technique.wrap is not None:
        refuse_unsupported(source, skipped, technique.flag, config.model)
    if not chosen:
        raise _nothing_to_do(technique, config, skipped)
    output = _pick_output(source, config.model, config.data.output)
    train = _data(config.data, loaded, config)
    width = source.outputs[output.index].shape[-1]
    loss = choose_loss(loaded.info.compile_config, require_targets(train.y, train.source), int(width or 1),
                       last_activation(source, output.index), output=(output.name, output.index, output.count))
    y_train = _targets(train, loss, source, output)
    val = _data(config.val, loaded, config) if config.val is not None else None
    y_val = _targets(val, loss, source, output) if val is not None else None
    prepared = _Prepared(loaded, source_sha, chosen, skipped, loss, train, y_train, val, y_val, output)
    _check_bridge(prepared, config.model)
    if val is not None:
        with captured_native_output():
            prepared.val_before = metric(loss, prepared.predict(val.x), y_val)
    return prepared


def _build(technique: Technique, tfmot, prepared: _Prepared, plan: Plan, reuse: bool):
    """The function that makes the wrapped tf_keras model (called inside the strategy scope); ``reuse``
    wraps the checked rebuild instead of rebuilding (no strategy: no scope to build in)."""

    def build():
        try:
            with captured_native_output():
                working = prepared.rebuilt if reuse else bridge.rebuild(prepared.target, bridge.TF_KERAS)
                if technique.wrap is None:
                    return working
                return _wrap_model(working, prepared.chosen, lambda layer: technique.wrap(tfmot, layer, plan))
        except ModelError:
            raise
        except Exception as exc:  # tfmot raises ValueError/InvalidArgumentError for layers it rejects
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ModelError(f"tfmot could not {technique.name} {prepared.loaded.info.path}: {reason[:300]}",
                             hint="leave the layer out with --exclude REGEX") from exc

    return build


def _val_metrics(prepared: _Prepared, final) -> dict | None:
    if prepared.val is None or prepared.val_before is None:
        return None
    name, before = prepared.val_before
    with captured_native_output():
        _, after = metric(prepared.loss, bridge.outputs_of(final, prepared.val.x)[prepared.output.index],
                          prepared.y_val)
    return {"metric": name, "samples": len(prepared.val), "before": before, "after": after,
            "change": after - before, "output": prepared.output.name if prepared.output.count > 1 else None}


def outputs_note(prepared: _Prepared) -> str:
    """How a model with several outputs is fine-tuned, for the progress line ('' with one output)."""
    if prepared.output.count == 1:
        return ""
    others = [bridge.output_names(prepared.loaded.model)[i] for i in prepared.output.others]
    return (f" on output '{prepared.output.name}'; outputs {', '.join(others)} kept close to the model's own "
            f"predictions (mean squared error)")


def run(config: CompressConfig, technique: Technique, progress: ProgressSink | None = None) -> KerasArtifact:
    """Compress ``config.model`` with ``technique`` and write ``config.output``; see prune/cluster.

    The output is the source model itself (its structure, names and nested models) with the
    fine-tuned weights copied in by layer name."""
    check_writable_target(config.output)
    strategy = make_strategy(config.distribute)  # multi-worker must start before TF's context does
    prepared = _prepare(config, technique)
    facts = technique.prepare(prepared)
    if progress is not None:
        progress.note(f"{technique.name}: loss {prepared.loss.describe()}{outputs_note(prepared)}")
    tfmot = _tfmot() if technique.wrap is not None else None
    plan = Plan(len(prepared.train), config.batch_size, config.epochs)
    targets, loss_fn = training_targets(config, prepared)
    result = fine_tune(_build(technique, tfmot, prepared, plan, reuse=strategy is None), strategy=strategy,
                       loss=prepared.loss, x=prepared.train.x, y=targets, plan=plan,
                       learning_rate=config.learning_rate, callbacks=technique.callbacks(tfmot, plan),
                       progress=progress, title=technique.name, seed=config.seed, loss_fn=loss_fn)
    final = prepared.target
    with captured_native_output():
        stripped = technique.strip(tfmot, result.model)
    # On the tf_keras model: it keeps a sub-model's training=False call in inference mode, which a
    # Keras 3 model's training-mode call does not.
    batchnorm = refresh_batchnorm(config, prepared, stripped, progress, technique.name)
    with captured_native_output():
        bridge.copy_weights(stripped, final)
    metrics = _val_metrics(prepared, final)
    _save(final, config.output, prepared.loss, prepared.output)
    return _artifact(config, technique, prepared, final, plan, result, strategy, facts, metrics, batchnorm)


SCORE_TRAIN_ROWS = 2048  # rows of the training data scored around the re-estimation when there is no val data


def refresh_batchnorm(config, prepared: _Prepared, model, progress: ProgressSink | None,
                      title: str) -> BatchNormReport | None:
    """Re-estimate ``model``'s BatchNorm statistics on the training data (``config.bn_batches`` batches)
    and score it before and after on the val data (the training rows without it); None when
    ``config.bn_reestimate`` is off."""
    if not config.bn_reestimate:
        return None
    if not batchnorm_layers(model):
        return BatchNormReport(layers=0, batches=0, rows=0)
    on = "val" if prepared.val is not None else "train"
    x, y = (prepared.val.x, prepared.y_val) if on == "val" else \
        (prepared.train.x[:SCORE_TRAIN_ROWS], prepared.y_train[:SCORE_TRAIN_ROWS])

    def score() -> tuple[str, float]:
        return metric(prepared.loss, bridge.outputs_of(model, x)[prepared.output.index], y)

    with captured_native_output():
        name, before = score()
        report = reestimate(model, prepared.train.x, batches=config.bn_batches, batch_size=config.batch_size,
                            seed=config.seed)
        _, after = score()
    report = report.model_copy(update={"metric": name, "scored_on": on, "before": before, "after": after})
    if progress is not None:
        progress.note(f"{title}: BatchNorm statistics re-estimated in {report.layers} layer(s) on {report.rows} "
                      f"training rows; {name} on {on} {before:.4g} -> {after:.4g}")
    return report


def _artifact(config, technique, prepared: _Prepared, final, plan: Plan, result, strategy, facts: dict,
              metrics: dict | None, batchnorm: BatchNormReport | None) -> KerasArtifact:
    """Write the sidecar beside the output and describe the output."""
    layers = layer_reports(final, prepared.chosen, prepared.skipped, technique.flag)
    skipped = {name: reason for name, reason in prepared.skipped.items() if reason != NO_KERNEL}
    names = bridge.output_names(final)
    several = prepared.output.count > 1
    outputs = {"output": prepared.output.name if several else None,
               "self_distilled": [names[i] for i in prepared.output.others]}
    output_sha = sha256_file(config.output)
    sidecar = write_sidecar(config.output, {
        "step": technique.name, "config": config.model_dump(mode="json"), **technique.describe(plan), **facts,
        "source_sha256": prepared.source_sha, "output_sha256": output_sha,
        "loss": prepared.loss.model_dump(mode="json"), **outputs, "skipped": skipped,
        "bridge_difference": prepared.bridge_difference, "layers": layers, "metrics": metrics,
        "batchnorm": None if batchnorm is None else batchnorm.model_dump(mode="json"), "trained_on": result.device,
    })
    return KerasArtifact(step=technique.name, path=config.output, flavor=bridge.flavor_of(final),
                         size_bytes=config.output.stat().st_size, sha256=output_sha, source=config.model,
                         source_sha256=prepared.source_sha, config_path=sidecar, loss=prepared.loss, layers=layers,
                         compressed_layers=len(prepared.chosen), metrics=metrics, train_samples=len(prepared.train),
                         epochs=config.epochs, steps=plan.total_steps, final_loss=result.final_loss,
                         distribute=config.distribute, replicas=replicas(strategy), seconds=round(result.seconds, 3),
                         allocation=facts.get("allocation"), skipped=skipped,
                         bridge_difference=prepared.bridge_difference, batchnorm=batchnorm, trained_on=result.device,
                         **outputs)


def _tfmot():
    import_tf()
    with captured_native_output():
        import tensorflow_model_optimization as tfmot
    from edgepack.compress.tfmot_compat import register_tf_keras_rnn_cells

    register_tf_keras_rnn_cells()
    return tfmot


def _wrap_model(model, chosen: list[str], wrap):
    """A clone of the tf_keras ``model`` with the ``chosen`` layers wrapped (others shared as they are)."""
    import tf_keras

    names = set(chosen)
    return tf_keras.models.clone_model(model, clone_function=lambda layer: wrap(layer) if layer.name in names
                                       else layer)
