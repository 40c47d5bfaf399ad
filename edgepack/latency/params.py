"""How latency is measured: the parameters ``edgepack profile`` and the profile step share."""

from __future__ import annotations

import math

from pydantic import Field, field_validator, model_validator

from edgepack.params import StepParams


class MeasureParams(StepParams):
    """How latency is measured (LiteRT benchmark_model's method); shared by the step and ``edgepack profile``."""

    threads: int | None = Field(default=None, ge=1, le=256,
                                description="Interpreter threads (default: the device's, else all cores).")
    runs: int = Field(default=50, ge=1, description="Timed runs, at least.")
    warmup: int = Field(default=5, ge=0, description="Warm-up runs, at least.")
    warmup_seconds: float = Field(default=0.5, ge=0, description="Warm-up time, at least.")
    min_seconds: float = Field(default=1.0, ge=0, description="Timed-run time, at least.")
    max_seconds: float = Field(default=150.0, gt=0, description="Cap on warm-up and on timed runs.")
    timeout_s: float | None = Field(default=None, gt=0, description="Kill the latency probe after this many seconds "
                                    "(default 2x max-seconds + 60).", json_schema_extra={"flag": "--timeout"})

    @field_validator("warmup_seconds", "min_seconds", "max_seconds", "timeout_s")
    @classmethod
    def _finite(cls, value):
        if value is not None and not math.isfinite(value):
            raise ValueError(f"must be a finite number, not {value}")
        return value

    @model_validator(mode="after")
    def _min_below_max(self):
        if self.min_seconds > self.max_seconds:
            raise ValueError(f"min_seconds ({self.min_seconds:g}) is more than max_seconds ({self.max_seconds:g})")
        return self
