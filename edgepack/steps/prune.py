"""``prune``: prune-aware fine-tuning with tfmot, for Keras 3 and tf_keras models."""

from __future__ import annotations

from enum import Enum
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edgepack.channels.budget import Allocate, Budget
from edgepack.channels.criteria import Criterion
from edgepack.channels.plan import ChannelReport, ChannelRequest
from edgepack.compress.config import CompressInputs, CompressParams
from edgepack.compress.result import KerasArtifact
from edgepack.compress.pipeline import Technique, run
from edgepack.compress.progress import ProgressSink
from edgepack.compress.training import Plan
from edgepack.params import searched
from edgepack.steps._compress import allocation_hook, recorded_allocation, run_compress_step
from edgepack.steps.artifacts import ModelArtifact
from edgepack.steps.base import ModelKind, Problem, Step


class Schedule(str, Enum):
    POLYNOMIAL = "polynomial"
    CONSTANT = "constant"


class Structure(str, Enum):
    UNSTRUCTURED = "unstructured"
    TWO_FOUR = "2:4"
    CHANNELS = "channels"
    XNNPACK = "xnnpack"


XNNPACK_MIN_SPARSITY = 2 / 3  # XNNPACK's sparse kernels run 1x1 convolutions with at least this share of zeros
XNNPACK_DEFAULT_SPARSITY = 0.75


class PruneParams(CompressParams):
    """The ``prune`` step's parameters: the recipe keys, the CLI options and the API's arguments."""

    sparsity: float = Field(default=0.5, ge=0.0, lt=1.0,
                            description="Final fraction of zero weights in each pruned kernel, in [0, 1) (structure "
                                        "channels: the fraction of prunable channels removed).",
                            json_schema_extra=searched(low=0.5, high=0.95, when={"structure": "unstructured"},
                                                       corner=0.9))
    schedule: Schedule = Field(default=Schedule.POLYNOMIAL,
                               description="Ramp sparsity up gradually, or prune to the target at once.")
    structure: Structure = Field(default=Structure.UNSTRUCTURED,
                                 description="2:4 zeroes 2 of every 4 consecutive weights (Dense and Conv2D); "
                                             "channels removes whole filters and units and rebuilds a smaller "
                                             "model (sparsity = fraction of prunable channels removed); xnnpack "
                                             "prunes only the 1x1 convolutions, to the 2/3 zeros or more that "
                                             "XNNPACK's sparse float kernels need (sparsity default 0.75; convert "
                                             "with quantize --sparse, float32 or float16).")
    allocate: Literal["uniform", "sensitivity", "latency"] = Field(
        default="uniform", description="uniform: every pruned kernel (channel group) gets the sparsity; "
                                       "sensitivity: the same fraction of all prunable weights (channels), spread by "
                                       "measured damage per layer (group); latency (channels): spread by measured "
                                       "damage per millisecond saved on the device's cost model.",
        json_schema_extra=searched(choices=["uniform", "sensitivity"], corner="sensitivity", fast_corner="uniform"))
    criterion: Criterion = Field(default=Criterion.L1, description="channels: how channels are ranked within a "
                                 "group (l1/l2 weight norms, bn BatchNorm scale, taylor first-order loss change on "
                                 "the training data).")
    target_macs: float | None = Field(default=None, gt=0, lt=1, description="channels: the fraction of the model's "
                                      "MACs to keep (replaces sparsity as the budget).",
                                      json_schema_extra={"metavar": "R", **searched(low=0.25, high=0.8,
                                                                                    when={"structure": "channels"},
                                                                                    fast_corner=0.35)})
    target_latency: float | None = Field(default=None, gt=0, description="channels: the latency to reach in ms "
                                         "(replaces sparsity as the budget), estimated with the device's cost model (needs "
                                         "--device; a recipe uses its device).", json_schema_extra={"metavar": "MS"})
    round_to: int | None = Field(default=None, ge=1, le=1024, description="channels: keep each layer's channel "
                                 "count a multiple of N (unset: the device profile's channel_multiple, else 1).",
                                 json_schema_extra={"metavar": "N"})
    layer_channels: dict[str, int] = Field(
        default_factory=dict, description="channels: channels kept per group, named by its first producing layer "
                                          "(the resolved recipe records the allocation here).",
        json_schema_extra={"metavar": "NAME=COUNT"})
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
        channels = self.structure is Structure.CHANNELS
        chosen = [k for k in ("target_macs", "target_latency", "layer_channels") if getattr(self, k)]
        if chosen and not channels:
            raise ValueError(f"{chosen[0]} applies to structure channels only; add structure: channels")
        if self.allocate == "latency" and not channels:
            raise ValueError("allocate latency applies to structure channels only (unstructured zeros save no time)")
        if self.target_macs is not None and self.target_latency is not None:
            raise ValueError("give target_macs or target_latency, not both")
        if channels and self.layer_sparsity:
            raise ValueError("layer_sparsity applies to unstructured pruning; channels take layer_channels")
        for name, kept in self.layer_channels.items():
            if kept < 1:
                raise ValueError(f"layer_channels {name}={kept} would remove every channel of the group; keep 1 or more")
        if self.structure is Structure.TWO_FOUR and (self.allocate != "uniform" or self.layer_sparsity):
            raise ValueError("structure 2:4 fixes every layer at sparsity 0.5, so allocate and layer_sparsity "
                             "do not apply; leave them out")
        if self.structure is Structure.XNNPACK:
            self._xnnpack_rules()
        if self.structure is Structure.TWO_FOUR and self.sparsity != 0.5:
            raise ValueError(f"structure 2:4 zeroes exactly 2 of every 4 weights (sparsity 0.5), "
                             f"so sparsity {self.sparsity} cannot be honoured; leave sparsity at 0.5")
        return self


    def _xnnpack_rules(self) -> None:
        if "sparsity" not in self.model_fields_set:
            self.sparsity = XNNPACK_DEFAULT_SPARSITY
        if self.sparsity < XNNPACK_MIN_SPARSITY:
            raise ValueError(f"structure xnnpack needs sparsity 0.67 or more (XNNPACK's sparse kernels need 2/3 "
                             f"zeros in the 1x1 convolutions), not {self.sparsity}")
        if self.allocate != "uniform" or self.layer_sparsity:
            raise ValueError("structure xnnpack prunes every 1x1 convolution to the sparsity (XNNPACK counts the "
                             "zeros of all of them), so allocate and layer_sparsity do not apply; leave them out")


class PruneConfig(CompressInputs, PruneParams):
    """A library call of ``prune``: the params plus the model, data and output paths, and the device whose
    cost model channel pruning's latency target and allocation use."""

    device: str | None = Field(default=None, description="Device profile (name or .yaml) whose cost model "
                               "--target-latency and --allocate latency use.")

    @model_validator(mode="after")
    def _device_needed(self):
        if self.device is None and (self.target_latency is not None or self.allocate == "latency"):
            what = "target_latency" if self.target_latency is not None else "allocate latency"
            raise ValueError(f"{what} estimates latency on a device: name it with --device NAME")
        return self


class PruneArtifact(KerasArtifact):
    """What ``prune`` returns; ``channels`` says what channel pruning removed (structure channels)."""

    channels: ChannelReport | None = None


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


def xnnpack_eligible(layer) -> str | None:
    """None for a layer XNNPACK's sparse kernels run (a 1x1, stride-1, undilated, ungrouped Conv2D: the layers
    tfmot's ``PruneForLatencyOnXNNPack`` prunes), else why not."""
    if type(layer).__name__ != "Conv2D":
        return "structure xnnpack prunes 1x1 Conv2D layers only (XNNPACK's sparse kernels)"
    config = layer.get_config()
    if tuple(config["kernel_size"]) != (1, 1) or tuple(config["strides"]) != (1, 1) \
            or tuple(config.get("dilation_rate", (1, 1))) != (1, 1) or config.get("groups", 1) != 1:
        return "structure xnnpack prunes 1x1, stride-1, undilated, ungrouped convolutions only"
    return None


def _technique(config: PruneConfig) -> Technique:
    two_four = config.structure is Structure.TWO_FOUR
    allocation = dict(config.layer_sparsity)

    def eligible(layer):
        if config.structure is Structure.XNNPACK:
            return xnnpack_eligible(layer)
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
        name="prune", flag="pruned", eligible=eligible, wrap=wrap,
        needs="1x1 Conv2D layer" if config.structure is Structure.XNNPACK else "Conv1D, Conv2D or Dense layer",
        strip=lambda tfmot, model: tfmot.sparsity.keras.strip_pruning(model),
        callbacks=lambda tfmot, plan: [tfmot.sparsity.keras.UpdatePruningStep()],
        describe=lambda plan: {"schedule_steps": schedule_steps(
            plan, Schedule.CONSTANT if two_four else config.schedule)},
        prepare=_allocation_hook(config, allocation))


def _channel_request(config: PruneConfig, device) -> ChannelRequest:
    round_to = config.round_to or (device.channel_multiple if device is not None else None) or 1
    budget = Budget(target_macs=config.target_macs, target_latency=config.target_latency) \
        if config.target_macs or config.target_latency else Budget(sparsity=config.sparsity)
    return ChannelRequest(budget=budget, allocate=Allocate(config.allocate), criterion=config.criterion,
                          round_to=round_to, layer_channels=dict(config.layer_channels), exclude=config.exclude,
                          refuse=config.unsupported == "refuse")


def prune(config: PruneConfig, *, progress: ProgressSink | None = None) -> PruneArtifact:
    """Prune ``config.model`` to ``config.sparsity`` while fine-tuning on ``config.data``.

    Writes a stripped model (no pruning wrappers) in the input's Keras flavor to ``config.output``
    and the resolved config beside it; with ``structure: channels`` a smaller model (whole channels
    removed, nested models inlined). Raises ModelError for unsupported layers or nothing to
    prune, DataError for data or labels that do not fit the model.
    """
    if config.structure is not Structure.CHANNELS:
        return PruneArtifact(**dict(run(config, _technique(config), progress)))
    from edgepack.channels.technique import channel_technique
    from edgepack.devices.loader import load_device

    device = load_device(config.device) if config.device else None
    found: list[ChannelReport] = []
    technique = channel_technique(_channel_request(config, device), device, config.seed, found.append, progress)
    produced = run(config, technique, progress)
    return PruneArtifact(**dict(produced), channels=found[0] if found else None)


class PruneStep(Step):
    """Prune-aware fine-tuning on the recipe's training data."""

    name = "prune"
    params = PruneParams
    consumes = produces = ModelKind.KERAS
    trains = True
    summary = "prune-aware fine-tuning (tfmot)"

    def label(self, params: PruneParams) -> str:
        if params.structure is Structure.CHANNELS:
            budget = f"macs {params.target_macs:g}" if params.target_macs else \
                f"{params.target_latency:g} ms" if params.target_latency else f"{params.sparsity:g}"
            return f"prune channels {budget}"
        extra = {Structure.TWO_FOUR: " 2:4", Structure.XNNPACK: " xnnpack 1x1"}.get(params.structure, "")
        return f"prune {params.sparsity:g}{extra}"

    def check(self, params: PruneParams, setting) -> list:
        problems = list(super().check(params, setting))
        device = setting.device
        if (device is None or device.estimate is None) and (params.target_latency is not None
                                                             or params.allocate == "latency"):
            key = "target_latency" if params.target_latency is not None else "allocate"
            what = "names none" if device is None else f"device {device.name} has no estimate figures"
            problems.append(Problem(key=(key,), message=f"{key} estimates latency on the recipe's device, and "
                                    f"the recipe {what}", hint="use a device profile with an estimate: section "
                                                               "(edgepack devices list), or target_macs"))
        return problems

    def check_later(self, params: PruneParams, later: list) -> list:
        if params.structure is not Structure.XNNPACK:
            return []
        converting = next(((step, p) for step, p in later if step.produces is ModelKind.TFLITE), None)
        mode = getattr(getattr(converting[1], "mode", None), "value", "int8") if converting else None
        if mode is None or mode in ("float32", "float16"):
            return []
        return [Problem(key=("structure",), message=f"structure xnnpack makes zeros for XNNPACK's sparse float "
                        f"kernels, and the model is then converted to {mode}, which they do not run",
                        hint="convert with quantize: {mode: float32, sparse: true} (or float16), or prune "
                             "unstructured for int8")]

    def run(self, ctx, source: ModelArtifact, params: PruneParams) -> ModelArtifact:
        if params.structure is Structure.CHANNELS:
            produced = run_compress_step(self, ctx, source, params, PruneConfig, prune,
                                         extra={"device": ctx.device_ref})
            return recorded_allocation(ctx, source, produced, params, "layer_channels")
        produced = run_compress_step(self, ctx, source, params, PruneConfig, prune)
        return recorded_allocation(ctx, source, produced, params, "layer_sparsity")
