"""The ``tune:`` section of a recipe: objectives and the search space, checked like any recipe key."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edgepack.modes import QuantMode

Objective = Literal["size", "latency", "drop"]


class TuneSection(BaseModel):
    """What ``edgepack tune`` searches and minimises. Without a ``tune:`` section the defaults search
    around the recipe's own steps: prune and cluster may be added or dropped, the sparsity, its
    allocation and the cluster count vary, and accuracy control and distillation are tried on and off.
    ``orders`` lists the orders tried when a trial both prunes and clusters: ``prune-cluster`` clusters
    the pruned model keeping its zeros; ``cluster-prune`` prunes the clustered model (its fine-tuning
    moves the shared values, so it is opt-in). ``promote`` is what accuracy control may raise layers
    to: ``float``, or ``int16x8`` (then float if that is not enough).
    ``modes`` unset keeps the recipe's quantization mode; ``qat`` adds quantization-aware training as
    an alternative to post-training int8."""

    model_config = ConfigDict(extra="forbid")

    objectives: list[Objective] = Field(default_factory=lambda: ["size", "drop"], min_length=1)
    sparsity: tuple[float, float] = (0.5, 0.95)
    allocate: list[Literal["uniform", "sensitivity"]] = Field(default_factory=lambda: ["uniform", "sensitivity"],
                                                              min_length=1)
    clusters: list[int] = Field(default_factory=lambda: [8, 16, 32], min_length=1)
    cluster_allocate: list[Literal["uniform", "sensitivity"]] = Field(
        default_factory=lambda: ["uniform", "sensitivity"], min_length=1)
    steps: list[Literal["prune", "cluster"]] = Field(default_factory=lambda: ["prune", "cluster"])
    orders: list[Literal["prune-cluster", "cluster-prune"]] = Field(
        default_factory=lambda: ["prune-cluster"], min_length=1)
    optional: bool = True
    accuracy_control: list[bool] = Field(default_factory=lambda: [False, True], min_length=1)
    promote: list[Literal["float", "int16x8"]] = Field(default_factory=lambda: ["float", "int16x8"], min_length=1)
    distill: list[bool] = Field(default_factory=lambda: [False, True], min_length=1)
    modes: list[QuantMode] | None = Field(default=None, min_length=1)
    qat: list[bool] = Field(default_factory=lambda: [False], min_length=1)
    epochs: int | None = Field(default=None, ge=1, le=1000)
    seed: int = Field(default=0, ge=0)

    @field_validator("sparsity")
    @classmethod
    def _range(cls, value):
        low, high = value
        if not (0.0 <= low <= high < 1.0):
            raise ValueError(f"sparsity [{low}, {high}] must be a range inside [0, 1) with low <= high")
        return value

    @field_validator("clusters")
    @classmethod
    def _counts(cls, value):
        if any(count < 2 for count in value):
            raise ValueError("cluster counts must be at least 2")
        return sorted(set(value))

    @model_validator(mode="after")
    def _not_empty(self):
        if len(set(self.objectives)) != len(self.objectives):
            raise ValueError("objectives: each objective once")
        if self.modes is not None:
            self.modes = list(dict.fromkeys(self.modes))
        fixed_quantization = (self.modes is None or len(self.modes) == 1) and len(set(self.qat)) == 1 \
            and len(set(self.accuracy_control)) == 1
        if not self.steps and fixed_quantization:
            raise ValueError("the search space is empty: no steps to vary and the quantization fixed")
        if len(set(self.orders)) != len(self.orders) or len(set(self.promote)) != len(self.promote):
            raise ValueError("orders and promote: each value once")
        if True in self.qat and self.modes is not None and QuantMode.INT8 not in self.modes:
            raise ValueError("qat: [true] needs int8 among the modes (QAT writes a full-int8 model)")
        return self
