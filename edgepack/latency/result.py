"""What ``profile`` gives back: the latency measured (or estimated), how, and time per operator."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_serializer

from edgepack import __version__

LATENCY_KEYS = ("count", "mean", "std", "min", "p50", "p90", "p99", "max")


class OpTime(BaseModel):
    """One operator's share of the time: its cost-model figures and the milliseconds given to it."""

    index: int
    op: str
    dtype: str
    unit: str
    macs: int
    bytes: int
    bound: str
    ms: float
    percent: float


class OpProfile(BaseModel):
    """Time per operator. ``measured`` says whether a runtime timed them; ``label`` says how."""

    measured: bool
    label: str
    ops: list[OpTime]


class MemorySnapshot(BaseModel):
    """A process's memory in MB: peak resident (ru_maxrss), and VmHWM/VmRSS where /proc exists."""

    ru_maxrss_mb: float | None = None
    vmhwm_mb: float | None = None
    vmrss_mb: float | None = None


class ProcessMemory(BaseModel):
    """The measuring process's memory before the model was loaded and at its peak."""

    before_model: MemorySnapshot | None = None
    peak: MemorySnapshot | None = None


class ProbeSettings(BaseModel):
    """How the latency was taken: runs and warm-up asked for, time limits, the wall time, threads."""

    runs: int | None = None
    warmup: int | None = None
    warmup_seconds: float | None = None
    min_seconds: float | None = None
    max_seconds: float | None = None
    timeout_s: float | None = None
    wall_seconds: float | None = None
    threads: int | None = None


class RuntimeUsed(BaseModel):
    """What ran the model: the runtime and its version, the engine (interpreter or compiled model), the
    accelerator and delegate, threads, whether everything ran on the accelerator, and ``fallback``: why
    the CPU ran instead of the device's accelerator (None when it did not)."""

    name: str
    version: str | None = None
    engine: str | None = None
    accelerator: str | None = None
    delegate: str | None = None
    threads: int | None = None
    fully_accelerated: bool | None = None
    fallback: str | None = None


class LatencyStats(BaseModel):
    """Latency statistics in milliseconds over the timed runs (an estimate gives its one figure for all of
    them, with ``count`` 0 and no ``std``); ``samples_ms``: the runs themselves (every run, or every k-th
    beyond 5,000) for the report's histogram, absent where none were kept."""

    count: int = 0
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None
    samples_ms: list[float] | None = None

    @model_serializer(mode="wrap")
    def _without_absent_samples(self, handler):
        data = handler(self)
        if self.samples_ms is None:
            data.pop("samples_ms", None)
        return data

    @classmethod
    def estimated(cls, value: float) -> "LatencyStats":
        """One estimated figure standing for every statistic (nothing was timed)."""
        return cls(count=0, mean=value, min=value, p50=value, p90=value, p99=value, max=value)


class LatencyResult(BaseModel):
    """The result of ``profile``. ``where`` is local, remote (``host`` names it) or estimate.

    ``runtime``: what ran it (RuntimeUsed). ``latency_ms``: the statistics (LatencyStats).
    """

    tool: str = f"edgepack {__version__}"
    model: str
    device: str | None
    where: Literal["local", "remote", "estimate"]
    host: str | None = None
    estimated: bool
    estimate_source: str | None = None
    runtime: RuntimeUsed
    latency_ms: LatencyStats
    init_ms: float | None = None
    first_inference_ms: float | None = None
    warmup: LatencyStats | None = None
    peak_memory_mb: float | None = None
    memory: ProcessMemory | None = None
    size_bytes: int
    gzip_size_bytes: int
    inputs: str
    settings: ProbeSettings
    op_profile: OpProfile | None = None
    python: str | None = None
    notes: list[str] = Field(default_factory=list)

    @property
    def p50(self) -> float | None:
        """The median latency in milliseconds (measured, or estimated when ``estimated``)."""
        return self.latency_ms.p50
