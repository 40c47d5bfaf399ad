"""``prune``: prune-aware fine-tuning with tfmot, for Keras 3 and tf_keras models."""

from __future__ import annotations

from enum import Enum
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edgepack.compress.config import CompressInputs, CompressParams
from edgepack.compress.result import KerasArtifact
from edgepack.compress.pipeline import Technique, run
from edgepack.compress.progress import ProgressSink
from edgepack.compress.training import Plan
from edgepack.params import searched
from edgepack.steps._compress import allocation_hook, recorded_allocation, run_compress_step
from edgepack.steps.artifacts import ModelArtifact
from edgepack.steps.base import ModelKind, Step


class Schedule(str, Enum):
    POLYNOMIAL = "polynomial"
    CONSTANT = "constant"


class Structure(str, Enum):
    UNSTRUCTURED = "unstructured"
    TWO_FOUR = "2:4"


class PruneParams(CompressParams):
    """The ``prune`` step's parameters: the recipe keys, the CLI options and the API's arguments."""

    sparsity: float = Field(default=0.5, ge=0.0, lt=1.0,
                            description="Final fraction of zero weights in each pruned kernel, in [0, 1).",
                            json_schema_extra=searched(low=0.5, high=0.95))
    schedule: Schedule = Field(default=Schedule.POLYNOMIAL,
                               description="Ramp sparsity up gradually, or prune to the target at once.")
    structure: Structure = Field(default=Structure.UNSTRUCTURED,
                                 description="2:4 zeroes 2 of every 4 consecutive weights (Dense and Conv2D).")
    allocate: Literal["uniform", "sensitivity"] = Field(
        default="uniform", description="uniform: every pruned kernel gets the sparsity; sensitivity: the same "
                                       "fraction of all prunable weights, spread by measured damage per layer.",
        json_schema_extra=searched(choices=["uniform", "sensitivity"]))
    layer_sparsity: dict[str, float] = Field(
        default_factory=dict, description="Sparsity per layer name (overrides the sparsity for those layers; "
                                          "allocate: sensitivity fills it in and the resolved recipe records it).",
        json_schema_extra={"metavar": "NAME=SPARSITY"})

    @field_validator("layer_sparsity")
    @classmethod
    def _fractions(cls, value: dict[str, float]) -> dict[str, float]:
        for name, sparsity in value.items():
            if not (0.0 <= sparsity < 1.0):
                raise ValueError(f"{name}: {sparsity} is outside [0, 1)")
        return value

    @model_validator(mode="after")
    def _rules(self):
        if self.structure is Structure.TWO_FOUR and (self.allocate != "uniform" or self.layer_sparsity):
            raise ValueError("structure 2:4 fixes every layer at sparsity 0.5, so allocate and layer_sparsity "
                             "do not apply; leave them out")
        if self.structure is Structure.TWO_FOUR and self.sparsity != 0.5:
            raise ValueError(f"structure 2:4 zeroes exactly 2 of every 4 weights (sparsity 0.5), "
                             f"so sparsity {self.sparsity} cannot be honoured; leave sparsity at 0.5")
        return self


class PruneConfig(CompressInputs, PruneParams):
    """A library call of ``prune``: the params plus the model, data and output paths."""


def schedule_steps(plan: Plan, schedule: Schedule) -> dict:
    """Begin, end and frequency of pruning, in training steps, sized so the target is reached.

    The polynomial schedule ramps from 0 to the target over the first ~60% of the steps and
    leaves the rest for recovery at the final sparsity; the constant one prunes to the target at
    step 0 and keeps re-pruning.
    """
    total = plan.total_steps
    if schedule is Schedule.CONSTANT:
        return {"kind": "constant", "begin_step": 0, "end_step": -1, "frequency": max(1, min(100, total // 10))}
    end = max(1, int(total * 0.6))
    frequency = max(1, end // 8)
    return {"kind": "polynomial", "begin_step": 0, "end_step": frequency * max(1, end // frequency),
            "frequency": frequency}


def _allocation_hook(config: PruneConfig, allocation: dict[str, float]):
    def allocate(prepared, rows):
        from edgepack.allocation.sparsity import allocate_sparsity

        return allocate_sparsity(prepared.loaded.model, prepared.chosen, rows, prepared.predict, config.sparsity,
                                 memo=f"{prepared.source_sha} output {prepared.output.index}")

    return allocation_hook(config, allocation, key="layer_sparsity", verb="pruned", allocate=allocate)


def _technique(config: PruneConfig) -> Technique:
    two_four = config.structure is Structure.TWO_FOUR
    allocation = dict(config.layer_sparsity)

    def eligible(layer):
        if not two_four:
            return None
        if type(layer).__name__ not in ("Dense", "Conv2D"):
            return "2:4 structure applies to Dense and Conv2D kernels only"
        channels = int(layer.kernel.shape[-2])
        if channels % 4:
            return f"2:4 structure needs input channels in multiples of 4 (this kernel has {channels})"
        return None

    def wrap(tfmot, layer, plan):
        sk = tfmot.sparsity.keras
        steps = schedule_steps(plan, Schedule.CONSTANT if two_four else config.schedule)
        target = allocation.get(layer.name, config.sparsity)
        if steps["kind"] == "constant" or target == 0:
            schedule = sk.ConstantSparsity(target, begin_step=0, frequency=steps["frequency"])
        else:
            schedule = sk.PolynomialDecay(initial_sparsity=0.0, final_sparsity=target, begin_step=0,
                                          end_step=steps["end_step"], frequency=steps["frequency"])
        return sk.prune_low_magnitude(layer, pruning_schedule=schedule,
                                      sparsity_m_by_n=(2, 4) if two_four else None)

    return Technique(
        name="prune", flag="pruned", needs="Conv1D, Conv2D or Dense layer", eligible=eligible, wrap=wrap,
        strip=lambda tfmot, model: tfmot.sparsity.keras.strip_pruning(model),
        callbacks=lambda tfmot, plan: [tfmot.sparsity.keras.UpdatePruningStep()],
        describe=lambda plan: {"schedule_steps": schedule_steps(
            plan, Schedule.CONSTANT if two_four else config.schedule)},
        prepare=_allocation_hook(config, allocation))


def prune(config: PruneConfig, *, progress: ProgressSink | None = None) -> KerasArtifact:
    """Prune ``config.model`` to ``config.sparsity`` while fine-tuning on ``config.data``.

    Writes a stripped model (no pruning wrappers) in the input's Keras flavor to ``config.output``
    and the resolved config beside it. Raises ModelError for unsupported layers or nothing to
    prune, DataError for data or labels that do not fit the model.
    """
    return run(config, _technique(config), progress)


class PruneStep(Step):
    """Prune-aware fine-tuning on the recipe's training data."""

    name = "prune"
    params = PruneParams
    consumes = produces = ModelKind.KERAS
    trains = True
    summary = "prune-aware fine-tuning (tfmot)"

    def label(self, params: PruneParams) -> str:
        return f"prune {params.sparsity:g}" + (" 2:4" if params.structure is Structure.TWO_FOUR else "")

    def run(self, ctx, source: ModelArtifact, params: PruneParams) -> ModelArtifact:
        produced = run_compress_step(self, ctx, source, params, PruneConfig, prune)
        return recorded_allocation(produced, params, "layer_sparsity")
