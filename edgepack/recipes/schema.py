"""The recipe file as types: every key, its range, and the rules between keys."""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from edgepack.evaluate.metrics import Metric
from edgepack.modes import IOType, QuantMode
from edgepack.util.types import FiniteNonNegative

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PruneParams(_Strict):
    """The ``prune`` step: prune-aware fine-tuning (tfmot)."""

    sparsity: float = Field(default=0.5, ge=0, lt=1)
    schedule: Literal["polynomial", "constant"] = "polynomial"
    structure: Literal["unstructured", "2:4"] = "unstructured"
    epochs: int = Field(default=2, ge=1, le=1000)
    batch_size: int = Field(default=32, ge=1)
    exclude: str | None = None

    @field_validator("exclude")
    @classmethod
    def _regex(cls, value):
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"is not a valid regular expression ({exc})") from None
        return value


class ClusterParams(_Strict):
    """The ``cluster`` step: weight clustering with fine-tuning (tfmot)."""

    clusters: int = Field(default=16, ge=2, le=65536)
    init: Literal["kmeans++", "linear", "density", "random"] = "kmeans++"
    preserve_sparsity: bool = False
    epochs: int = Field(default=1, ge=1, le=1000)
    batch_size: int = Field(default=32, ge=1)
    exclude: str | None = None

    _regex = field_validator("exclude")(PruneParams._regex.__func__)


class QuantizeParams(_Strict):
    """The ``quantize`` step: conversion to .tflite."""

    mode: QuantMode = QuantMode.INT8
    io: IOType = IOType.FLOAT32
    samples: int = Field(default=200, ge=1, le=100_000)

    @model_validator(mode="after")
    def _io_needs_int8(self):
        if self.io is not IOType.FLOAT32 and self.mode is not QuantMode.INT8:
            raise ValueError(f"io {self.io.value} needs mode int8")
        return self


class PruneStep(_Strict):
    prune: PruneParams = Field(default_factory=PruneParams)


class ClusterStep(_Strict):
    cluster: ClusterParams = Field(default_factory=ClusterParams)


class QuantizeStep(_Strict):
    quantize: QuantizeParams = Field(default_factory=QuantizeParams)


STEP_KEYS = ("prune", "cluster", "quantize")


def _step_kind(value) -> str | None:
    if isinstance(value, dict):
        return next(iter(value), None)
    return next((key for key in STEP_KEYS if hasattr(value, key)), None)


Step = Annotated[Union[Annotated[PruneStep, Tag("prune")], Annotated[ClusterStep, Tag("cluster")],
                       Annotated[QuantizeStep, Tag("quantize")]], Discriminator(_step_kind)]


class DataPaths(_Strict):
    """Data for fine-tuning and calibration (``train``) and for the gates (``val``)."""

    train: str | None = None
    val: str | None = None
    x_key: str = "x"
    y_key: str = "y"


class Gates(_Strict):
    """Thresholds that fail the run (exit 7); each is optional."""

    max_accuracy_drop: FiniteNonNegative | None = None
    max_latency_ms: FiniteNonNegative | None = None
    max_size_kb: FiniteNonNegative | None = None
    relative: bool = False


class Recipe(_Strict):
    """One recipe file. Paths are as written; the loader resolves them against the file's folder."""

    name: str
    description: str = ""
    device: str
    model: str
    data: DataPaths = Field(default_factory=DataPaths)
    metric: Metric = Metric.ACCURACY
    steps: list[Step] = Field(default_factory=list)
    gates: Gates = Field(default_factory=Gates)
    output: str = "dist/{name}"

    @field_validator("name")
    @classmethod
    def _slug(cls, value):
        if not NAME.match(value):
            raise ValueError("must be lower-case letters, digits, '.', '_' or '-' (it names the bundle folder)")
        return value

    @field_validator("steps", mode="before")
    @classmethod
    def _one_key_per_step(cls, value):
        if not isinstance(value, list):
            return value
        for index, step in enumerate(value):
            if not (isinstance(step, dict) and len(step) == 1 and next(iter(step)) in STEP_KEYS):
                keys = list(step) if isinstance(step, dict) else [step]
                guess = difflib.get_close_matches(str(keys[0]) if keys else "", STEP_KEYS, n=1)
                mean = f" (did you mean '{guess[0]}'?)" if guess else ""
                raise ValueError(f"step {index + 1} must be one of {', '.join(STEP_KEYS)} "
                                 f"(a single key), not {keys}{mean}")
            if next(iter(step.values())) is None:
                value[index] = {next(iter(step)): {}}
        return value

    @model_validator(mode="after")
    def _order_and_data(self):
        kinds = [self.step_kind(step) for step in self.steps]
        if kinds.count("quantize") > 1:
            raise ValueError("steps: only one quantize step is allowed")
        if "quantize" in kinds and kinds.index("quantize") != len(kinds) - 1:
            raise ValueError("steps: quantize must be the last step (it produces the .tflite)")
        for kind in ("prune", "cluster"):
            if kind in kinds and not self.data.train:
                raise ValueError(f"steps: {kind} fine-tunes the model and needs data.train")
        quantize = self.quantize_params
        if quantize.mode.needs_calibration and not self.data.train:
            raise ValueError(f"steps: quantize mode {quantize.mode.value} needs data.train for calibration")
        if self.gates.max_accuracy_drop is not None and not self.data.val:
            raise ValueError("gates.max_accuracy_drop needs data.val to measure accuracy on")
        return self

    @staticmethod
    def step_kind(step) -> str:
        return next(key for key in STEP_KEYS if hasattr(step, key))

    @property
    def quantize_params(self) -> QuantizeParams:
        """The quantize step's parameters; a recipe without one converts to float32."""
        for step in self.steps:
            if isinstance(step, QuantizeStep):
                return step.quantize
        return QuantizeParams(mode=QuantMode.FLOAT32)

    def resolved(self) -> "Recipe":
        """The recipe with every default written out, including the implicit float32 conversion."""
        steps = list(self.steps)
        if not any(isinstance(step, QuantizeStep) for step in steps):
            steps.append(QuantizeStep(quantize=QuantizeParams(mode=QuantMode.FLOAT32)))
        return self.model_copy(update={"steps": steps, "output": self.output})
