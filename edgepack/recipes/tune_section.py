"""The ``tune:`` section of a recipe: objectives and the search space, checked like any recipe key."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgepack.modes import QuantMode
from edgepack.params import Domain, check_domain, tunable_fields

Objective = Literal["size", "flash", "ram", "latency", "drop"]


# Shorthand keys of earlier recipes, each the same as a ``space`` key path (distill: both training steps).
SHORTHANDS = {"sparsity": ("prune.sparsity",), "allocate": ("prune.allocate",), "clusters": ("cluster.clusters",),
              "cluster_allocate": ("cluster.allocate",), "distill": ("prune.distill", "cluster.distill")}


class TuneSection(BaseModel):
    """What ``edgepack tune`` searches and minimises. Without a ``tune:`` section the defaults search
    around the recipe's own steps: prune and cluster may be added or dropped, every field that
    declares a search domain in its params model varies (prune's sparsity, allocation and epochs, cluster's
    count, allocation and epochs, distillation on or off, and those of any step added later), and accuracy
    control is tried on and off. ``space`` overrides a field's domain by its key path:
    ``{prune.sparsity: [0.6, 0.9], cluster.clusters: [8, 16]}`` (a range as ``[low, high]``, choices
    as a list), each value checked by the field itself; ``sparsity``, ``allocate``, ``clusters``,
    ``cluster_allocate`` and ``distill`` are shorthands for the same keys.
    ``orders`` lists the orders tried when a trial both prunes and clusters: ``prune-cluster`` clusters
    the pruned model keeping its zeros; ``cluster-prune`` prunes the clustered model (its fine-tuning
    moves the shared values, so it is opt-in). ``promote`` is what accuracy control may raise layers
    to: ``float``, or ``int16x8`` (then float if that is not enough).
    ``structures`` lists the prune structures tried (unset: the recipe's, or unstructured and channels when
    ``latency``, ``flash`` or ``ram`` is an objective: only removing channels moves them; xnnpack joins
    them when the recipe converts to float32/float16 for a CPU device, and its trials store the weights
    sparse); a channel trial searches the MACs kept (``prune.target_macs``) and its
    allocation among the ``prune.allocate`` choices plus ``latency`` when latency is an objective.
    ``modes`` unset keeps the recipe's quantization mode; ``qat`` adds quantization-aware training as
    an alternative to post-training int8; ``epochs`` fixes the fine-tuning epochs of every trial (they are
    searched otherwise: prune 2-8, cluster 1-4; a higher sparsity often needs the longer fine-tuning)."""

    model_config = ConfigDict(extra="forbid")

    objectives: list[Objective] = Field(default_factory=lambda: ["size", "drop"], min_length=1)
    space: dict[str, list] = Field(default_factory=dict)
    sparsity: list[float] | None = None
    allocate: list[Literal["uniform", "sensitivity"]] | None = None
    clusters: list[int] | None = None
    cluster_allocate: list[Literal["uniform", "sensitivity"]] | None = None
    distill: list[bool] | None = None
    steps: list[Literal["prune", "cluster"]] = Field(default_factory=lambda: ["prune", "cluster"])
    orders: list[Literal["prune-cluster", "cluster-prune"]] = Field(
        default_factory=lambda: ["prune-cluster"], min_length=1)
    optional: bool = True
    accuracy_control: list[bool] = Field(default_factory=lambda: [False, True], min_length=1)
    promote: list[Literal["float", "int16x8"]] = Field(default_factory=lambda: ["float", "int16x8"], min_length=1)
    modes: list[QuantMode] | None = Field(default=None, min_length=1)
    qat: list[bool] = Field(default_factory=lambda: [False], min_length=1)
    structures: list[Literal["unstructured", "channels", "xnnpack"]] | None = Field(default=None, min_length=1)
    epochs: int | None = None
    seed: int = Field(default=0, ge=0)

    def structure_choices(self, float_cpu: bool = False) -> list[str] | None:
        """The prune structures a trial chooses from: ``structures``, else unstructured and channels when
        latency, flash or RAM is an objective (channel pruning is what makes a model faster, and smaller on
        the device rather than in the download), with xnnpack too for a float model on a CPU
        (``float_cpu``: XNNPACK's sparse float kernels), else None (the recipe's own)."""
        if self.structures is not None:
            return list(dict.fromkeys(self.structures))
        if not {"latency", "flash", "ram"} & set(self.objectives):
            return None
        return ["unstructured", "channels", *(["xnnpack"] if float_cpu else [])]

    def overrides(self) -> dict[str, list]:
        """The ``space`` overrides with the shorthands spelled out as key paths."""
        found = {}
        for key, paths in SHORTHANDS.items():
            value = getattr(self, key)
            if value is not None:
                found.update({path: list(value) for path in paths})
        return found | self.space

    def domains(self) -> dict[str, dict[str, Domain]]:
        """Every step's searched fields (``{step: {field: Domain}}``): the domains the params models
        declare, overridden by this section. Raises ValueError naming the key path of a bad override."""
        from edgepack.steps.base import registry

        steps = registry()
        found = {name: tunable_fields(step.params) for name, step in steps.items()}
        for path, values in self.overrides().items():
            name, _, field = path.partition(".")
            if name not in found or field not in found[name]:
                known = ", ".join(f"{s}.{f}" for s, fields in found.items() for f in fields)
                raise ValueError(f"space: {path} is not a searched field (searched fields: {known})")
            try:
                domain = found[name][field].with_values(values)
                check_domain(steps[name].params, field, domain)
            except ValueError as exc:
                raise ValueError(f"space: {path} {values}: {exc}") from None
            found[name][field] = domain
        if self.epochs is not None:  # fixed for every trial by this section
            found = {name: {f: d for f, d in fields.items() if f != "epochs"} for name, fields in found.items()}
        return found

    @model_validator(mode="after")
    def _not_empty(self):
        if len(set(self.objectives)) != len(self.objectives):
            raise ValueError("objectives: each objective once")
        if self.modes is not None:
            self.modes = list(dict.fromkeys(self.modes))
        fixed_quantization = (self.modes is None or len(self.modes) == 1) and len(set(self.qat)) == 1 \
            and len(set(self.accuracy_control)) == 1
        weights_vary = any(len(d.choices) > 1 or (d.low is not None and d.low < d.high)
                           for d in self.domains().get("quantize", {}).values())
        if not self.steps and fixed_quantization and not weights_vary:
            raise ValueError("the search space is empty: no steps to vary and the quantization fixed")
        if len(set(self.orders)) != len(self.orders) or len(set(self.promote)) != len(self.promote):
            raise ValueError("orders and promote: each value once")
        if True in self.qat and self.modes is not None and QuantMode.INT8 not in self.modes:
            raise ValueError("qat: [true] needs int8 among the modes (QAT writes a full-int8 model)")
        self.domains()
        if self.epochs is not None:
            from edgepack.compress.config import TrainingParams

            try:
                check_domain(TrainingParams, "epochs", Domain(kind="int", low=self.epochs, high=self.epochs))
            except ValueError as exc:
                raise ValueError(f"epochs: {exc}") from None
        return self
