"""Channel pruning's plan: analyse the groups, rank the channels, allocate the budget, rebuild the model.

``plan_channels`` is what ``prune --structure channels`` runs before fine-tuning; the smaller model it
returns is fine-tuned by the shared compression path like any other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
from pydantic import BaseModel, Field

from edgepack.channels.budget import Allocate, Budget, Meter, check_counts, damage_points, greedy, uniform
from edgepack.channels.cost import CostModel, Counts, latency_model
from edgepack.channels.criteria import Criterion, rank, taylor_gradients
from edgepack.channels.graph import ChannelGraph, analyze
from edgepack.channels.rebuild import Keep, flatten, pruned_model, silenced
from edgepack.compress import bridge
from edgepack.devices.schema import DeviceProfile
from edgepack.errors import ConfigError, ModelError


class BeforeAfter(BaseModel):
    """Channels, parameters and MACs before and after (of one layer, or of the whole model)."""

    channels_before: int
    channels_after: int
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int


class LayerChannels(BeforeAfter):
    """One weighted layer before and after."""

    name: str
    kind: str


class GroupChannels(BaseModel):
    """A group of channels removed together: the layers that produce them, its width and what it keeps."""

    layers: list[str]
    width: int
    kept: int


class FencedGroup(BaseModel):
    """A group left whole, and why."""

    layers: list[str]
    width: int
    reasons: list[str]


class LatencyFigures(BaseModel):
    """The estimated latency before and after on the device's cost model."""

    device: str
    dtype: str
    before_ms: float
    after_ms: float
    label: str


class ChannelReport(BeforeAfter):
    """What channel pruning did, recorded in the result, the sidecar and ``--json`` (the counts: the prunable
    channels, the model's parameters and MACs)."""

    criterion: Criterion
    allocate: Allocate
    budget: str
    round_to: int
    groups: list[GroupChannels]
    fenced: list[FencedGroup]
    layers: list[LayerChannels]
    latency: LatencyFigures | None = None
    layer_channels: dict[str, int] = Field(description="Channels kept per group, named by its first producing "
                                           "layer: the allocation the resolved recipe replays.")
    notes: list[str] = Field(default_factory=list)


@dataclass
class ChannelRequest:
    """What to prune and by how much (the prune params that concern channels)."""

    budget: Budget
    allocate: Allocate
    criterion: Criterion
    round_to: int
    layer_channels: dict[str, int]
    exclude: str | None = None
    refuse: bool = False   # a group fenced by a layer the walk cannot follow stops the run (--unsupported refuse)


@dataclass
class Evidence:
    """Training rows for the damage curves and the taylor criterion, and how to score them."""

    x: np.ndarray
    y: np.ndarray
    predict: Callable[[object, np.ndarray], np.ndarray]   # (model, rows) -> the labelled output
    loss: object   # a loss object of the model's flavour


def _keep(flat, graph: ChannelGraph, scores: dict[int, np.ndarray], counts: Counts) -> Keep:
    keep: Keep = {}
    for group in graph.prunable:
        kept = counts.get(group.id, group.width)
        if kept < group.width:
            keep[group.id] = np.sort(np.argsort(-scores[group.id], kind="stable")[:kept])
    return keep


def _allocate(flat, graph, scores, request: ChannelRequest, meter: Meter, evidence: Evidence) -> Counts:
    if request.layer_channels:
        return check_counts(graph, request.layer_channels)
    if request.allocate is Allocate.UNIFORM:
        return uniform(meter, request.round_to)
    rows = evidence.x
    reference = evidence.predict(flat, rows)

    def damage(counts: Counts) -> float:
        with silenced(flat, graph, _keep(flat, graph, scores, counts)):
            return float(np.mean((evidence.predict(flat, rows) - reference) ** 2))

    points = damage_points(graph.prunable, request.round_to, damage)
    return greedy(meter, request.allocate, request.round_to, points)


def plan_channels(model, request: ChannelRequest, evidence: Evidence, device: DeviceProfile | None):
    """``(pruned model, ChannelReport)``: ``model`` with the channels the request removes removed (nested
    models inlined, layer names kept), before any fine-tuning. ModelError when no group can be pruned."""
    flat = flatten(model)
    graph = analyze(flat, re.compile(request.exclude) if request.exclude else None)
    if not graph.prunable:
        reasons = [r for g in graph.fenced for r in g.fences][:3]
        raise ModelError(f"no channel group of the model can be pruned ({'; '.join(reasons) or 'no Conv or Dense'})",
                         hint="channel pruning needs a Conv/Dense layer whose channels reach neither the "
                              "model's output nor a layer it cannot follow")
    if request.refuse:
        _refuse_fenced(graph)
    notes: list[str] = []
    gradients = None
    if request.criterion is Criterion.TAYLOR:
        gradients = taylor_gradients(flat, evidence.x, evidence.y, evidence.loss)
    scores, ranked = rank(flat, graph, request.criterion, gradients=gradients)
    notes += ranked
    cost = CostModel(graph)
    latency = latency_model(device) if device is not None and device.estimate is not None else None
    if latency is None and (request.budget.target_latency is not None or request.allocate is Allocate.LATENCY):
        what = "no device was named" if device is None else f"device profile '{device.name}' has no estimate figures"
        raise ConfigError(f"a latency target or allocation needs the device's cost model, and {what}",
                          hint="name a device with an estimate: section (edgepack devices list), or use "
                               "--target-macs")
    meter = Meter(graph, cost, latency, request.budget)
    counts = _allocate(flat, graph, scores, request, meter, evidence)
    pruned = pruned_model(flat, graph, _keep(flat, graph, scores, counts))
    return pruned, _report(graph, cost, latency, counts, request, pruned, flat, notes)


FOLLOWED = ("the model's input", "the model's output")


def _refuse_fenced(graph: ChannelGraph) -> None:
    for group in graph.fenced:
        blocked = [r for r in group.fences if r not in FOLLOWED and "excluded by --exclude" not in r]
        if blocked:
            raise ModelError(f"channels of {', '.join(group.producers[:3])} cannot be pruned: {blocked[0]}",
                             hint="give --unsupported skip to leave such groups whole and prune the rest, or "
                                  "--exclude the layers on purpose")


def _layer_rows(cost: CostModel, counts: Counts, flat, pruned) -> list[LayerChannels]:
    """Per weighted layer: channels and MACs from the cost model, parameters counted on the two models."""
    before_layers, after_layers = dict(bridge.leaf_layers(flat)), dict(bridge.leaf_layers(pruned))
    rows = []
    for call, before, after in zip(cost.calls, cost.per_call({}), cost.per_call(counts)):
        layer = before_layers.get(call.name)
        if layer is None or not layer.weights:
            continue
        channels = lambda c: cost.kept(call.output, c)  # noqa: E731
        rows.append(LayerChannels(name=call.name, kind=call.kind, channels_before=channels({}),
                                  channels_after=channels(counts), params_before=int(layer.count_params()),
                                  params_after=int(after_layers[call.name].count_params()),
                                  macs_before=before.macs, macs_after=after.macs))
    return rows


def _report(graph, cost: CostModel, latency, counts: Counts, request: ChannelRequest, pruned, flat,
            notes: list[str]) -> ChannelReport:
    groups = [GroupChannels(layers=g.producers, width=g.width, kept=counts.get(g.id, g.width)) for g in graph.prunable]
    fenced = [FencedGroup(layers=g.producers, width=g.width, reasons=g.fences) for g in graph.fenced]
    figures = None
    if latency is not None:
        figures = LatencyFigures(device=latency.device.name, dtype=latency.dtype,
                                 before_ms=round(latency.ms(cost.per_call({})), 4),
                                 after_ms=round(latency.ms(cost.per_call(counts)), 4),
                                 label=f"estimated for {latency.device.name} ({latency.dtype}) from the Keras graph "
                                       f"with the device profile's per-operator figures")
    return ChannelReport(
        criterion=request.criterion, allocate=request.allocate,
        budget="layer_channels as given" if request.layer_channels else request.budget.describe,
        round_to=request.round_to, groups=groups, fenced=fenced, layers=_layer_rows(cost, counts, flat, pruned),
        channels_before=sum(g.width for g in groups), channels_after=sum(g.kept for g in groups),
        params_before=int(flat.count_params()), params_after=int(pruned.count_params()),
        macs_before=cost.macs({}), macs_after=cost.macs(counts), latency=figures,
        layer_channels={g.layers[0]: g.kept for g in groups}, notes=notes)
