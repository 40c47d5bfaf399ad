"""What the model-making steps share: a cached output path, the call, and the artifact."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from pydantic import BaseModel

from edgepack.compress.result import KerasArtifact, Trained
from edgepack.steps.artifacts import ModelArtifact
from edgepack.steps.base import Step, StepParams
from edgepack.steps.context import StepContext, data_fingerprint


def produce(step: Step, ctx: StepContext, source: ModelArtifact, params: StepParams, suffix: str,
            make: Callable[[Path], BaseModel | None], *, data=None) -> ModelArtifact:
    """Run ``make(output_path)`` unless the cache holds the output of the same (input, step, params, data).

    Returns the output as a ModelArtifact labelled by the step, with the effective params.
    """
    started = time.perf_counter()
    dumped = params.model_dump(mode="json")
    key = ctx.cache.key(source.sha256, step.name, dumped, data_fingerprint(data)) if ctx.cache else None
    cached = ctx.cache.get(key) if ctx.cache else None
    detail = None
    if cached is not None:
        ctx.say(f"  {step.name}: reusing the output of an identical earlier run ({cached.parent.name})")
        path = cached
    else:
        path = ctx.work / f"{step.name}-{source.sha256[:12]}-{time.monotonic_ns() % 10**9}{suffix}"
        ctx.work.mkdir(parents=True, exist_ok=True)
        detail = make(path)
        if ctx.cache:
            path = ctx.cache.put(key, path)
    produced = ModelArtifact.of_file(path, step.produces, label=step.label(params), step=step.name, params=dumped,
                                     started=started, detail=detail)
    if isinstance(detail, Trained):
        produced.trained_on = detail.trained_on
    return produced


def run_compress_step(step: Step, ctx: StepContext, source: ModelArtifact, params: StepParams, config_cls,
                      function, extra: dict | None = None) -> ModelArtifact:
    """Prune or cluster ``source`` with ``params`` (and the config's ``extra`` inputs, e.g. the device) on the
    context's training data.

    The val set is not given to the step: the pipeline scores each stage once itself.
    """
    def make(output: Path):
        config = config_cls(model=source.path, data=ctx.train, output=output, trust_model=ctx.trust_model,
                            **params.model_dump(), **(extra or {}))
        return function(config, progress=ctx.training_progress)

    return produce(step, ctx, source, params, ".keras", make, data=ctx.train)


def allocation_hook(config, allocation: dict, *, key: str, verb: str, allocate: Callable):
    """The ``prepare`` hook of prune/cluster: check the layers named in ``allocation`` (the params'
    ``key``: layer_sparsity or layer_clusters), and with ``allocate: sensitivity`` and no names given
    fill ``allocation`` from ``allocate(prepared, rows)`` (a result whose ``key`` field holds them),
    measured on training rows so the val set stays unseen. Returns the facts for the sidecar."""
    def prepare(prepared) -> dict:
        from edgepack.errors import ConfigError

        unknown = sorted(set(allocation) - set(prepared.chosen))
        if unknown:
            raise ConfigError(f"{key} names {', '.join(unknown)}, which is not a layer being {verb}",
                              hint=f"layers being {verb}: {', '.join(prepared.chosen)}")
        if config.allocate == "sensitivity" and not allocation:
            result = allocate(prepared, prepared.train.sample(512, seed=config.seed).x)
            allocation.update(getattr(result, key))
            return {"allocation": result.model_dump()}
        return {"allocation": {key: dict(allocation)}} if allocation else {}

    return prepare


def recorded_allocation(ctx: StepContext, source: ModelArtifact, produced: ModelArtifact, params: StepParams,
                        key: str) -> ModelArtifact:
    """``produced`` with the allocation it used written into its params, so the resolved recipe replays it;
    the cache keeps the output under those params too, so a recipe that states the allocation (the resolved
    or tuned recipe) reuses it."""
    allocation = produced.detail.allocation if isinstance(produced.detail, KerasArtifact) else None
    if allocation and not getattr(params, key):
        recorded = {**produced.params, key: allocation[key]}
        if ctx.cache:
            ctx.cache.put(ctx.cache.key(source.sha256, produced.step, recorded, data_fingerprint(ctx.train)),
                          produced.path)
        return produced.model_copy(update={"params": recorded})
    return produced
