"""What ``profile`` takes: the model, the device, how and where to measure its latency."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edgepack.loading.spec import DataSpec
from edgepack.latency.params import MeasureParams

class LatencyConfig(MeasureParams):
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
