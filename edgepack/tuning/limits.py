"""When a study stops starting trials (no TensorFlow, no Optuna: the progress display reads it too)."""

from __future__ import annotations

from pydantic import BaseModel

DEFAULT_TRIALS = 20


class StopRule(BaseModel):
    """When a study stops starting trials: after ``trials`` more, after ``timeout`` seconds, or at
    whichever comes first (None: that limit is not set)."""

    trials: int | None = None
    timeout: float | None = None

    def describe(self) -> str:
        if self.trials is not None and self.timeout is not None:
            return f"{self.trials} more trial(s) or {self.timeout:g} s, whichever comes first"
        if self.timeout is not None:
            return f"trials until {self.timeout:g} s have passed (no trial limit)"
        return f"{self.trials} more trial(s) (no time limit)"
