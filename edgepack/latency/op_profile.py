"""``--op-profile``: time per operator — measured when the runtime times operators, else estimated.

The Python APIs of ai-edge-litert 2.3 and tflite-runtime 2.14 expose no per-operator timer, so the
breakdown is estimated: the cost model of ``edgepack.latency.estimate`` (MACs and bytes moved per
operator, with a device profile's throughput figures) gives each operator its share, and the
measured mean latency is split in those proportions. The label says so, every time.
"""

from __future__ import annotations

from edgepack.devices.schema import DeviceProfile
from edgepack.latency.result import OpProfile, OpTime
from edgepack.latency.estimate import Estimate


def _rows(estimate: Estimate, total_ms: float) -> list[OpTime]:
    model_total = sum(op.ms for op in estimate.ops) or 1.0
    return [OpTime(index=op.index, op=op.op, dtype=op.dtype, unit=op.unit, macs=op.macs, bytes=op.bytes,
                   bound=op.bound, ms=round(op.ms / model_total * total_ms, 6),
                   percent=round(100 * op.ms / model_total, 3)) for op in estimate.ops]


def estimated_breakdown(estimate: Estimate) -> OpProfile:
    """Per-operator times of an ``--estimate`` run."""
    return OpProfile(measured=False, label=estimate.label + "; not measured", ops=_rows(estimate, estimate.latency_ms))


def measured_split(estimate: Estimate, figures_from: DeviceProfile, measured_mean_ms: float, reason: str) -> OpProfile:
    """The measured mean latency split across operators in proportion to the cost model."""
    label = (f"estimated breakdown: the measured mean ({measured_mean_ms:.3f} ms) split across "
             f"{len(estimate.ops)} operators in proportion to their modelled cost (MACs and bytes moved, "
             f"with the throughput figures of device profile '{figures_from.name}'); per-operator times "
             f"were not measured because {reason}")
    return OpProfile(measured=False, label=label, ops=_rows(estimate, measured_mean_ms))


def top_ops(profile: OpProfile, count: int = 10) -> list[OpTime]:
    """The ``count`` costliest operators, for the table view."""
    return sorted(profile.ops, key=lambda row: -row.ms)[:count]
