"""What a study gives back: every trial, the Pareto front, the best trial and the files written."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from edgepack.tuning.limits import StopRule
from edgepack.tuning.trials import TrialSummary


class TuneResult(BaseModel):
    """The whole study as ``--json`` prints it."""

    study: str
    storage: str
    objectives: list[str]
    trials: list[TrialSummary]
    pareto: list[int]
    best: int | None
    tuned_recipe: str | None = None
    bundle: str | None = None
    page: str | None = None
    seconds: float
    stop: StopRule = Field(default_factory=StopRule, description="The limits this run of the study had.")
    stopped_by: Literal["trials", "timeout"] | None = Field(
        default=None, description="The limit that ended this run: its trial count, or its time.")
