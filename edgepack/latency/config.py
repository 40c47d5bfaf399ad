"""What ``profile`` takes (ProfileConfig) and what it gives back (ProfileResult)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from edgepack import __version__
from edgepack.loading.spec import DataSpec
from edgepack.latency.params import MeasureParams

LATENCY_KEYS = ("count", "mean", "std", "min", "p50", "p90", "p99", "max")


class ProfileConfig(MeasureParams):
    """Everything ``profile`` needs; checked before anything runs. The measuring fields (runs,
    warm-up, times, threads, timeout) are the profile step's too (``edgepack.latency.params``).

    ``device`` is a profile name from ``devices/`` or a path (None: this machine, no profile).
    ``remote`` is ``[user@]host[:port]``, or ``"@device"`` for the device profile's ``connection``.
    ``runtime`` overrides the device's (auto | litert | tflite-runtime | tf.lite); ``python`` is the
    interpreter that runs the latency probe (here, or on the remote device). ``timeout_s``
    bounds the probe (default ``2 * max_seconds + 60``). ``probe`` replaces the device-side latency
    probe script (for a patched one; the tests use it for a stand-in that crashes).
    """

    model: Path
    device: str | None = None
    runtime: Literal["auto", "litert", "tflite-runtime", "tf.lite"] | None = None
    remote: str | None = None
    python: str | None = None
    op_profile: bool = False
    estimate: bool = False
    data: DataSpec | None = None
    samples: int = Field(default=16, ge=1, le=100_000)
    allow_cpu_fallback: bool = False
    accept_new_host_key: bool = False
    ssh_config: Path | None = None
    connect_timeout_s: int = Field(default=10, ge=1, le=600)
    remote_tmpdir: str | None = None
    probe: Path | None = None

    @field_validator("remote_tmpdir")
    @classmethod
    def _plain_path(cls, value):
        if value is not None and not re.fullmatch(r"/[A-Za-z0-9._/-]*", value):
            raise ValueError("must be an absolute path of letters, digits and . _ - / only")
        return value

    @model_validator(mode="after")
    def _consistent(self):
        if self.estimate and self.remote:
            raise ValueError("--estimate and --remote exclude each other: estimate, or measure on the device")
        if self.estimate and not self.device:
            raise ValueError("--estimate needs --device NAME (the figures come from the device profile)")
        return self

    @property
    def probe_timeout_s(self) -> float:
        return self.timeout_s if self.timeout_s is not None else 2 * self.max_seconds + 60


class OpProfile(BaseModel):
    """Time per operator. ``measured`` says whether a runtime timed them; ``label`` says how."""

    measured: bool
    label: str
    ops: list[dict]


class ProfileResult(BaseModel):
    """The result of ``profile``. ``where`` is local, remote (``host`` names it) or estimate.

    ``runtime``: name, version, engine, accelerator, delegate, threads, fallback (why the CPU ran
    instead of the device's accelerator, or None). ``latency_ms``: count, mean, std, min, p50, p90,
    p99, max (an estimate gives its one figure for all of them, with count 0) and ``samples_ms``, the
    timed runs themselves (every run, or every k-th beyond 5,000) for the report's histogram.
    """

    tool: str = f"edgepack {__version__}"
    model: str
    device: str | None
    where: Literal["local", "remote", "estimate"]
    host: str | None = None
    estimated: bool
    estimate_source: str | None = None
    runtime: dict
    latency_ms: dict
    init_ms: float | None = None
    first_inference_ms: float | None = None
    warmup: dict | None = None
    peak_memory_mb: float | None = None
    memory: dict | None = None
    size_bytes: int
    gzip_size_bytes: int
    inputs: str
    settings: dict
    op_profile: OpProfile | None = None
    python: str | None = None
    notes: list[str] = Field(default_factory=list)

    @property
    def p50(self) -> float | None:
        """The median latency in milliseconds (measured, or estimated when ``estimated``)."""
        value = self.latency_ms.get("p50")
        return None if value is None else float(value)
