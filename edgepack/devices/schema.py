"""The device profile: what a target runs, how to reach it, and the figures ``--estimate`` uses.

The YAML keys are the field names below (see ``devices/*.yaml`` and the contract). Enum values are
the strings written in the YAML.
"""

from __future__ import annotations

import re
from enum import Enum

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edgepack.modes import QuantMode


class Runtime(str, Enum):
    """The interpreter package the device runs models with."""

    LITERT = "litert"                  # ai-edge-litert (LiteRT), the successor of tflite-runtime
    TFLITE_RUNTIME = "tflite-runtime"  # the last release is 2.14 (needs numpy<2)


class Accelerator(str, Enum):
    """Where the model's operators run."""

    CPU = "cpu"
    GPU = "gpu"
    EDGETPU = "edgetpu"
    NPU = "npu"


# Accelerators that need static shapes: a dynamic batch adds int32 SHAPE/PACK ops that the Edge TPU
# rejects and the GPU delegate leaves on the CPU (measured on the digits CNN: 3 of 10 ops delegated).
STATIC_BATCH_ACCELERATORS = frozenset({"edgetpu", "gpu", "npu"})

Mode = QuantMode  # a quantization mode, as ``edgepack quantize --mode`` names it


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=False)


class Connection(Strict):
    """How ``--remote`` reaches the device: ``ssh`` is ``[user@]host``."""

    ssh: str | None = None
    port: int = Field(default=22, ge=1, le=65535)
    python: str = "python3"

    @field_validator("ssh")
    @classmethod
    def _safe_host(cls, value):
        if value is not None and (value.startswith("-") or re.search(r"[\s'\"`;|&$<>\\]", value)):
            raise ValueError("must be [user@]host with no spaces, quotes or shell characters, "
                             "and must not start with '-'")
        return value


class Gmacs(Strict):
    """Effective multiply-accumulates per second (in G) of convolutions and matrix products, by the
    arithmetic an operator uses. A missing entry means the unit cannot run such operators."""

    float32: float | None = Field(default=None, gt=0)
    float16: float | None = Field(default=None, gt=0)
    dynamic: float | None = Field(default=None, gt=0)
    int8: float | None = Field(default=None, gt=0)
    int16x8: float | None = Field(default=None, gt=0)
    int4_conv: float | None = Field(default=None, gt=0, description="Convolutions with int4 weights and int8 "
                                    "activations: XNNPACK has no such kernel, the runtime's own runs them (unset: "
                                    "as int8). Fully-connected int4 runs at the int8 figure with half the bytes.")

    @model_validator(mode="after")
    def _at_least_one(self):
        if not any(getattr(self, name) for name in type(self).model_fields):
            raise ValueError("give at least one figure (float32, float16, dynamic, int8, int16x8)")
        return self


class Throughput(Strict):
    """How fast one compute unit (the CPU, or an accelerator) does an operator's work.

    An operator takes ``op_overhead_us + max(MACs / (gmacs[dtype] * efficiency), bytes / bandwidth)``,
    where efficiency is ``depthwise`` for depthwise convolutions and 1 otherwise.
    """

    gmacs: Gmacs
    depthwise: float = Field(default=1.0, gt=0, le=4)
    bandwidth_gbs: float = Field(gt=0)
    op_overhead_us: float = Field(default=0.0, ge=0)
    source: str | None = None


class Anchor(Strict):
    """A published (or measured) latency the figures were calibrated against."""

    model: str                     # mobilenet_v1 | mobilenet_v2 (1.0, 224x224)
    mode: Mode
    ms: float = Field(gt=0)
    threads: int | None = Field(default=None, ge=1)
    source: str


class EstimateFigures(Throughput):
    """``estimate:`` in a device profile. ``threads`` is the thread count the CPU figures hold for;
    other counts scale compute by ``1 + (n - 1) * parallel_efficiency``. ``cpu_fallback`` gives
    the figures for operators an accelerator cannot run (they run on the device's CPU).

    ``onchip_cache_mib`` and ``link_bandwidth_mbs`` (given together, accelerators only) model an
    accelerator that keeps parameters in an on-chip cache (the Edge TPU's ~8 MB SRAM): the part of
    the cache the compiler can fill, in MiB as ``edgetpu_compiler`` reports it, and the effective
    host-to-accelerator transfer rate in MB/s (10^6 bytes). Parameters that do not fit are streamed
    over the link every inference."""

    source: str
    threads: int = Field(default=1, ge=1)
    parallel_efficiency: float = Field(default=0.85, ge=0, le=1)
    invoke_overhead_us: float = Field(default=0.0, ge=0)
    cpu_fallback: Throughput | None = None
    onchip_cache_mib: float | None = Field(default=None, ge=0)
    link_bandwidth_mbs: float | None = Field(default=None, gt=0)
    anchors: list[Anchor] = Field(default_factory=list)

    @model_validator(mode="after")
    def _streaming_pair(self):
        if (self.onchip_cache_mib is None) != (self.link_bandwidth_mbs is None):
            raise ValueError("give onchip_cache_mib and link_bandwidth_mbs together (parameters that do not "
                             "fit the cache are streamed over the link)")
        return self

    @property
    def streams_parameters(self) -> bool:
        """Whether the profile models an on-chip parameter cache and the link that feeds it."""
        return self.onchip_cache_mib is not None


class DeviceProfile(Strict):
    """One device profile (``devices/NAME.yaml``)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str = ""
    arch: str
    runtime: Runtime = Runtime.LITERT
    accelerator: Accelerator = Accelerator.CPU
    threads: int = Field(default=1, ge=1, le=256)
    delegate: str | None = None
    modes: list[Mode] = Field(min_length=1)
    memory_mb: int = Field(gt=0)
    connection: Connection | None = None
    estimate: EstimateFigures | None = None
    channel_multiple: int | None = Field(default=None, ge=1, le=256, description="The channel-count multiple the "
                                         "runtime's kernels run fastest at: the default --round-to of channel "
                                         "pruning (unset: 1).")
    channel_multiple_source: str | None = Field(default=None, description="Where channel_multiple comes from.")
    flash_kb: float | None = Field(default=None, gt=0, description="The most model bytes the device can store "
                                   "(KB): a recipe for it without max_flash_kb is gated at this.")
    ram_kb: float | None = Field(default=None, gt=0, description="The most tensor arena the device can give a "
                                 "model (KB): a recipe for it without max_ram_kb is gated at this.")
    objectives: list[Literal["size", "flash", "ram", "latency", "drop"]] | None = Field(
        default=None, min_length=1, description="What `edgepack tune` minimises for this device when the recipe's "
                                                "tune: section names no objectives (unset: size and drop).")

    @model_validator(mode="after")
    def _consistent(self):
        if self.accelerator == Accelerator.EDGETPU and not self.delegate:
            raise ValueError("an edgetpu device needs 'delegate' (e.g. libedgetpu.so.1)")
        if self.estimate and self.accelerator != Accelerator.CPU and self.estimate.cpu_fallback is None:
            raise ValueError(f"estimate.cpu_fallback is needed for a {self.accelerator.value} device "
                             f"(figures for the operators that run on its CPU)")
        if self.estimate and self.accelerator == Accelerator.CPU and self.estimate.streams_parameters:
            raise ValueError("estimate.onchip_cache_mib and link_bandwidth_mbs describe an accelerator's "
                             "parameter cache; a cpu device has none")
        return self

    def summary(self) -> dict:
        """The short form ``devices list`` shows."""
        return {"name": self.name, "description": self.description, "arch": self.arch,
                "runtime": self.runtime.value, "accelerator": self.accelerator.value,
                "threads": self.threads, "modes": [m.value for m in self.modes],
                "estimate": bool(self.estimate)}
