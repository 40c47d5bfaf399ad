"""``profile`` as a pipeline step: latency of the .tflite on the recipe's device.

Measured here for ``host-cpu``, over SSH when the device profile has a connection, otherwise
estimated from the device profile's figures and labelled as an estimate.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edgepack.latency.params import MeasureParams
from edgepack.steps.artifacts import ModelArtifact
from edgepack.steps.base import ModelKind, Problem, Step

LOCAL_DEVICES = {"host-cpu"}


class ProfileParams(MeasureParams):
    """The ``profile`` step's parameters. ``where``: auto measures when the device is at hand."""

    where: Literal["auto", "local", "remote", "estimate"] = Field(
        default="auto", description="auto: here for host-cpu, over SSH when the device has a connection, "
                                    "else an estimate from the device profile.")


def how_to_profile(device, where: str = "auto") -> str:
    """``local``, ``remote`` or ``estimate`` for this device."""
    if where != "auto":
        return where
    if device is None or device.name in LOCAL_DEVICES:
        return "local"
    connection = getattr(device, "connection", None)
    return "remote" if connection is not None and connection.ssh else "estimate"


class ProfileStep(Step):
    """Latency of the final .tflite on the device: measured or estimated (and labelled so)."""

    name = "profile"
    params = ProfileParams
    consumes = produces = ModelKind.TFLITE
    measures = True
    summary = "latency on the device: measured here, over SSH, or estimated"

    def check(self, params: ProfileParams, setting) -> list[Problem]:
        device = setting.device
        if params.where == "remote" and (device is None or device.connection is None or not device.connection.ssh):
            return [Problem(key=("where",), message="profile where: remote needs a device profile with "
                            "connection.ssh", hint="add connection: {ssh: user@host} to the device profile")]
        if params.where == "estimate" and (device is None or device.estimate is None):
            return [Problem(key=("where",), message="profile where: estimate needs a device profile with "
                            "estimate figures")]
        return []

    def resolve(self, params: ProfileParams, setting) -> ProfileParams:
        return params.model_copy(update={"where": how_to_profile(setting.device, params.where)})

    def run(self, ctx, source: ModelArtifact, params: ProfileParams) -> ModelArtifact:
        from edgepack.latency import LatencyConfig, profile

        how = how_to_profile(ctx.device, "estimate" if ctx.estimate else params.where)
        config = LatencyConfig(model=source.path, device=ctx.device_ref or (ctx.device.name if ctx.device else None),
                               estimate=how == "estimate", remote="@device" if how == "remote" else None,
                               **params.model_dump(exclude={"where"}))
        ctx.say("  profile: " + ("estimating from the device profile" if how == "estimate" else
                                 f"measuring {'over SSH' if how == 'remote' else 'here'}: {params.warmup} warm-up "
                                 f"runs, then at least {params.runs} runs and {params.min_seconds:g} s"))
        key = (source.sha256, config.model_dump_json(exclude={"model"}))
        if ctx.latencies is not None and key in ctx.latencies:
            ctx.say("  profile: reusing the measurement of an identical earlier model")
            latency = ctx.latencies[key]
        else:
            latency = profile(config, device=ctx.device)
            if ctx.latencies is not None:
                ctx.latencies[key] = latency
        ctx.say(f"  profile: p50 {latency.p50:.4g} ms"
                + (" (estimated)" if latency.estimated else f" over {latency.latency_ms.count} runs"))
        return source.model_copy(update={"latency": latency})
