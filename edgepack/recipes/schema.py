"""The recipe file as types. The ``steps`` entries are generated from the step registry: each step's
own params model is the schema of its entry, so a default or a range is written once."""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, create_model, field_validator, model_validator

from edgepack.evaluation.metrics import Metric
from edgepack.steps.base import StepParams, registry
from edgepack.recipes.tune_section import TuneSection
from edgepack.util.types import FiniteNonNegative
from edgepack.loading.preprocess import Preprocess

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _step_kind(value) -> str | None:
    if isinstance(value, dict):
        return next(iter(value), None)
    return next(iter(type(value).model_fields), None)


def _step_union():
    """One ``{name: params}`` entry model per registered step, discriminated by its single key."""
    entries = []
    for name, step_cls in registry().items():
        entry = create_model(f"{step_cls.__name__}Entry", __base__=_Strict,
                             **{name: (step_cls.params, Field(default_factory=step_cls.params))})
        entries.append(Annotated[entry, Tag(name)])
    return Annotated[Union[tuple(entries)], Discriminator(_step_kind)]


STEP_KEYS = tuple(registry())
StepEntry = _step_union()


def entry_name(entry) -> str:
    """The step name of one ``steps`` entry (its single key)."""
    return _step_kind(entry)


def entry_params(entry) -> StepParams:
    """The params of one ``steps`` entry."""
    return getattr(entry, entry_name(entry))


class DataPaths(_Strict):
    """Data for fine-tuning and calibration (``train``) and for the gates (``val``)."""

    train: str | None = None
    val: str | None = None
    x_key: str = "x"
    y_key: str = "y"
    output: str | None = None  # the model output the metric and gates are computed on (several outputs)
    preprocess: Preprocess | None = None  # what is done to inputs as they are read (scale, mean/std, a family)


class Gates(_Strict):
    """Thresholds that fail the run (exit 7); each is optional."""

    max_accuracy_drop: FiniteNonNegative | None = None
    max_latency_ms: FiniteNonNegative | None = None
    max_size_kb: FiniteNonNegative | None = None   # gzip -9 of the final model: the download
    max_flash_kb: FiniteNonNegative | None = None  # the final .tflite's bytes: what the device stores
    max_ram_kb: FiniteNonNegative | None = None    # the final .tflite's tensor arena
    max_macs: FiniteNonNegative | None = None   # multiply-accumulates of one inference of the final .tflite
    relative: bool = False


class Recipe(_Strict):
    """One recipe file. Paths are as written; the loader resolves them against the file's folder."""

    name: str
    description: str = ""
    device: str
    model: str
    data: DataPaths = Field(default_factory=DataPaths)
    metric: Metric = Metric.ACCURACY
    steps: list[StepEntry] = Field(default_factory=list)
    gates: Gates = Field(default_factory=Gates)
    output: str = "dist/{name}"
    tune: TuneSection | None = None

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
    def _gates_need_data(self):
        if self.gates.max_accuracy_drop is not None and not self.data.val:
            raise ValueError("gates.max_accuracy_drop needs data.val to measure accuracy on")
        return self
