"""How many channels each group keeps: uniform, by measured damage, or by damage per millisecond saved.

The budget is a fraction of the prunable channels to remove (``sparsity``), a fraction of the
model's MACs to keep (``target_macs``) or an estimated latency on the device (``target_latency``).
Every count is a multiple of ``round_to`` (a group narrower than that keeps its width) and at least
one channel stays.

- ``uniform``: every group loses the same fraction (for a target, the smallest fraction that meets it,
  found by bisection);
- ``sensitivity``: channels leave where the measured damage per unit of the budget is least (per channel
  removed; per MAC saved for a MACs target, per estimated millisecond for a latency target);
- ``latency``: channels leave where the measured damage per estimated millisecond saved on the device
  is least.

Damage is measured per group, as the allocators of unstructured pruning do: the group's lowest-ranked
channels are silenced (their consumers read them with zero weights, which is what the pruned model
computes) and the model's output moves by a mean squared error against its own output; a few points
per group, linear in between. The greedy pass then removes one step at a time from the group whose
next step costs least for what it saves, until the budget is met.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from enum import Enum
from typing import Callable

import numpy as np

from edgepack.channels.cost import CostModel, Counts, LatencyModel
from edgepack.channels.graph import ChannelGraph, Group
from edgepack.errors import ConfigError

DAMAGE_FRACTIONS = (0.25, 0.5, 0.75)


class Allocate(str, Enum):
    UNIFORM = "uniform"
    SENSITIVITY = "sensitivity"
    LATENCY = "latency"


@dataclass(frozen=True)
class Budget:
    """What the allocation must reach: exactly one of the three."""

    sparsity: float | None = None
    target_macs: float | None = None
    target_latency: float | None = None

    @property
    def describe(self) -> str:
        if self.target_macs is not None:
            return f"MACs kept <= {self.target_macs:g} of the model's"
        if self.target_latency is not None:
            return f"estimated latency <= {self.target_latency:g} ms"
        return f"{self.sparsity:g} of the prunable channels removed"


def levels(width: int, round_to: int) -> list[int]:
    """The channel counts a group of ``width`` may keep, widest first."""
    if round_to <= 1:
        return list(range(width, 0, -1))
    if width <= round_to:
        return [width]
    return [width] + list(range((width - 1) // round_to * round_to, 0, -round_to))


def nearest_level(width: int, kept: float, round_to: int) -> int:
    """The allowed count closest to ``kept``."""
    return min(levels(width, round_to), key=lambda k: (abs(k - kept), -k))


def uniform_counts(groups: list[Group], sparsity: float, round_to: int) -> Counts:
    return {g.id: nearest_level(g.width, g.width * (1.0 - sparsity), round_to) for g in groups}


class Meter:
    """The budget's measure (channels removed, MACs, estimated ms) of a set of counts."""

    def __init__(self, graph: ChannelGraph, cost: CostModel, latency: LatencyModel | None, budget: Budget):
        self.graph, self.cost, self.latency, self.budget = graph, cost, latency, budget
        self.full_macs = cost.macs({})
        self.total = sum(g.width for g in graph.prunable)

    def met(self, counts: Counts) -> bool:
        b = self.budget
        if b.target_macs is not None:
            return self.cost.macs(counts) <= b.target_macs * self.full_macs
        if b.target_latency is not None:
            return self.latency.ms(self.cost.per_call(counts)) <= b.target_latency
        removed = sum(g.width - counts.get(g.id, g.width) for g in self.graph.prunable)
        return removed >= b.sparsity * self.total - 1e-9


def _unreachable(meter: Meter, counts: Counts) -> ConfigError:
    b = meter.budget
    if b.target_macs is not None:
        best = f"{meter.cost.macs(counts) / meter.full_macs:.3g} of the MACs"
    else:
        best = f"{meter.latency.ms(meter.cost.per_call(counts)):.3g} ms"
    return ConfigError(f"no allocation reaches {b.describe}: with every prunable group at its narrowest the model "
                       f"still needs {best}", hint="relax the target, lower --round-to, or free fenced layers "
                                                   "(see the fenced groups in the output)")


def uniform(meter: Meter, round_to: int) -> Counts:
    """Every group the same fraction; for a target, the smallest fraction that meets it."""
    groups = meter.graph.prunable
    if meter.budget.sparsity is not None:
        return uniform_counts(groups, meter.budget.sparsity, round_to)
    narrowest = {g.id: levels(g.width, round_to)[-1] for g in groups}
    if not meter.met(narrowest):
        raise _unreachable(meter, narrowest)
    low, high = 0.0, 1.0
    for _ in range(30):
        middle = (low + high) / 2
        low, high = (low, middle) if meter.met(uniform_counts(groups, middle, round_to)) else (middle, high)
    return uniform_counts(groups, high, round_to)


Damage = Callable[[Counts], float]


def damage_points(groups: list[Group], round_to: int, damage: Damage) -> dict[int, list[tuple[int, float]]]:
    """Per group, (kept, damage) at its full width and at DAMAGE_FRACTIONS removed."""
    points = {}
    for group in groups:
        found = {group.width: 0.0}
        for fraction in DAMAGE_FRACTIONS:
            kept = nearest_level(group.width, group.width * (1 - fraction), round_to)
            if kept not in found:
                found[kept] = max(0.0, damage({group.id: kept}))
        points[group.id] = sorted(found.items())
    return points


def interpolate(points: list[tuple[int, float]], kept: int) -> float:
    """Damage at ``kept`` channels: linear between measured points, the last slope beyond them, never falling
    as channels leave."""
    ks = [k for k, _ in points]
    ds = np.maximum.accumulate([d for _, d in points][::-1])[::-1]
    if kept >= ks[0]:
        return float(np.interp(kept, ks, ds))
    if len(ks) == 1:
        return float(ds[0])
    slope = (ds[0] - ds[1]) / max(1, ks[1] - ks[0])
    return float(ds[0] + slope * (ks[0] - kept))


def greedy(meter: Meter, allocate: Allocate, round_to: int, points: dict[int, list[tuple[int, float]]]) -> Counts:
    """Remove one step at a time where the next step's damage per unit saved is least, until the budget is met:
    per estimated millisecond with ``latency`` (or a latency target), per MAC for a MACs target, else per
    channel."""
    groups = {g.id: g for g in meter.graph.prunable}
    counts: Counts = {gid: g.width for gid, g in groups.items()}
    steps = {gid: levels(g.width, round_to) for gid, g in groups.items()}
    position = {gid: 0 for gid in groups}
    touching = _calls_touching(meter)

    by_ms = allocate is Allocate.LATENCY or meter.budget.target_latency is not None
    by_macs = not by_ms and meter.budget.target_macs is not None

    def saving(gid: int, kept: int) -> float:
        before = [meter.cost.work(c, counts) for c in touching[gid]]
        after = [meter.cost.work(c, {**counts, gid: kept}) for c in touching[gid]]
        if by_ms:
            return max(1e-12, meter.latency.ms(before) - meter.latency.ms(after))
        if by_macs:
            return max(1e-12, float(sum(w.macs for w in before) - sum(w.macs for w in after)))
        return float(counts[gid] - kept)

    def push(heap, gid):
        if position[gid] + 1 >= len(steps[gid]):
            return
        kept = steps[gid][position[gid] + 1]
        cost = interpolate(points[gid], kept) - interpolate(points[gid], counts[gid])
        heapq.heappush(heap, (cost / saving(gid, kept), gid, kept))

    heap: list = []
    for gid in groups:
        push(heap, gid)
    while not meter.met(counts):
        if not heap:
            raise _unreachable(meter, counts)
        _, gid, kept = heapq.heappop(heap)
        counts[gid] = kept
        position[gid] += 1
        if by_ms or by_macs:   # a width change moves the savings of the groups sharing its calls
            heap = []
            for other in groups:
                push(heap, other)
        else:
            push(heap, gid)
    return counts


def _calls_touching(meter: Meter) -> dict[int, list]:
    touching: dict[int, list] = {g.id: [] for g in meter.graph.prunable}
    for call in meter.cost.calls:
        ids = {gid for layout in (*call.inputs, call.output) for gid in meter.graph.layout(layout).groups}
        for gid in ids & touching.keys():
            touching[gid].append(call)
    return touching


def check_counts(graph: ChannelGraph, counts: dict[str, int]) -> Counts:
    """Counts given per producing layer (the recorded allocation) as counts per group; ConfigError for a name
    that produces no prunable group or a count outside [1, width]."""
    by_layer = {name: g for g in graph.prunable for name in g.producers}
    out: Counts = {}
    for name, kept in counts.items():
        group = by_layer.get(name)
        if group is None:
            raise ConfigError(f"layer_channels names {name!r}, which produces no prunable channel group",
                              hint=f"prunable groups (by their first layer): "
                                   f"{', '.join(g.producers[0] for g in graph.prunable[:8])}")
        if not 1 <= kept <= group.width:
            what = "would remove every channel of" if kept < 1 else "is wider than"
            raise ConfigError(f"layer_channels {name}={kept} {what} the group ({group.width} channels)",
                              hint=f"give a count from 1 to {group.width}")
        out[group.id] = int(kept)
    return out
