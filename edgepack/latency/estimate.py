"""``--estimate``: latency from a model's per-operator work and a device profile's throughput figures.

Each operator costs ``op_overhead + max(MACs / effective GMAC/s, bytes moved / bandwidth)`` on the unit
that runs it; the inference adds ``invoke_overhead``. On an accelerator, operators it cannot run (no
figure for their arithmetic, or — on the Edge TPU — at or after the compiler's predicted cut) run on
the device's CPU with ``estimate.cpu_fallback``. The figures in ``devices/*.yaml`` are calibrated
against published MobileNet v1/v2 latencies, the Coral link bandwidths against VGG16's
(``estimate.anchors``); ``benchmarks/estimate_accuracy.py`` and ``benchmarks/edgetpu_streaming.py``
report how close the estimates come. An estimate is always labelled as one, with its source.

A profile with ``onchip_cache_mib`` and ``link_bandwidth_mbs`` (the Coral profiles) also models the
accelerator's parameter cache: operator by operator in execution order, an accelerator operator's
parameters (weights and biases, whole) take the cache while they fit what is left of it; the
parameters of the operators that do not fit are streamed over the link every inference, and such an
operator takes ``op_overhead + max(compute, memory, streamed bytes / link bandwidth)``: the
accelerator is assumed to fetch an operator's streamed parameters while it computes. The order the
compiler really fills the cache in is not published; this is the simplest reading of its report
(whole layers cached or streamed). The transfer of the model's input and output is not modelled apart: it is part of the
per-operator cost fitted to the MobileNet anchors (150 KB, 0.3 ms at USB 3 rates).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgepack.devices.schema import Accelerator, DeviceProfile, Throughput
from edgepack.errors import ConfigError
from edgepack.latency.op_counts import ModelWork, OpWork, parameter_bytes

FALLBACK_DTYPES = {"float16": "float32", "dynamic": "float32", "int4_conv": "int8"}


@dataclass
class OpEstimate:
    """One operator's estimated time, where it runs and what limits it."""

    index: int
    op: str
    dtype: str
    unit: str       # accelerator | cpu
    macs: int
    bytes: int
    ms: float
    bound: str      # compute | memory | link | overhead | folded
    streamed_bytes: int = 0   # parameters streamed over the link per inference (not in the cache)
    link_ms: float = 0.0      # their transfer time (overlapping the operator's compute)


@dataclass
class Estimate:
    """The estimated latency of one inference, per operator, with where the figures come from."""

    device: str
    latency_ms: float
    ops: list = field(default_factory=list)
    source: str = ""
    threads: int | None = None
    notes: list = field(default_factory=list)

    @property
    def label(self) -> str:
        return (f"estimated for {self.device} from per-operator MACs and bytes moved with the device "
                f"profile's throughput figures ({self.source})")


def gmacs_for(unit: Throughput, dtype: str) -> float | None:
    value = getattr(unit.gmacs, dtype, None)
    if value is None and dtype in FALLBACK_DTYPES:
        value = getattr(unit.gmacs, FALLBACK_DTYPES[dtype], None)
    return value


def thread_scale(figures, threads: int | None) -> float:
    if threads is None or threads == figures.threads:
        return 1.0
    speed = lambda n: 1 + (n - 1) * figures.parallel_efficiency  # noqa: E731
    return speed(threads) / speed(figures.threads)


def op_time(op: OpWork, unit: Throughput, gmacs: float, scale: float, link_us: float = 0.0) -> tuple[float, str]:
    if op.kind == "folded":
        return 0.0, "folded"
    efficiency = unit.depthwise if op.kind == "depthwise" else 1.0
    compute_us = op.macs / (gmacs * efficiency * scale * 1e3) if op.macs else 0.0
    memory_us = op.bytes / (unit.bandwidth_gbs * scale * 1e3)
    work_us = max(compute_us, memory_us, link_us)
    bound = "link" if link_us > max(compute_us, memory_us) else "compute" if compute_us >= memory_us else "memory"
    if unit.op_overhead_us > work_us:
        bound = "overhead"
    return (unit.op_overhead_us + work_us) / 1e3, bound


def _on_accelerator(device: DeviceProfile, work: ModelWork) -> list[bool]:
    """Which operators the accelerator takes. The Edge TPU compiler cuts the graph once: the first
    operator it cannot map (not on Coral's list, or not int8) and all after it run on the CPU; a
    QUANTIZE first and a DEQUANTIZE last (float I/O) run on the CPU without cutting."""
    if device.accelerator != Accelerator.EDGETPU:
        return [True] * len(work.ops)
    from edgepack.inspection.edgetpu import SUPPORTED_OPS

    placed, cut, last = [], False, len(work.ops) - 1
    for position, op in enumerate(work.ops):
        boundary = (position == 0 and op.op == "QUANTIZE") or (position == last and op.op == "DEQUANTIZE")
        cut = cut or (not boundary and (op.op not in SUPPORTED_OPS or op.dtype != "int8"))
        placed.append(not (cut or boundary))
    return placed


def _readiness_note(device: DeviceProfile, work: ModelWork) -> list[str]:
    if device.accelerator != Accelerator.EDGETPU:
        return []
    from edgepack.inspection.edgetpu import edgetpu_readiness

    readiness = edgetpu_readiness(work.graph)
    if readiness.ready:
        return []
    return ["the estimate assumes edgetpu_compiler accepts the model; edgepack inspect predicts it would not "
            f"as is: {readiness.reasons[0]}"]


def _streamed_parameters(device: DeviceProfile, work: ModelWork, placed: list[bool]) -> tuple[list[int], int]:
    """Per operator, the parameter bytes it streams over the link every inference (0 when cached or
    on the CPU), and the parameter bytes of all the accelerator's operators."""
    figures = device.estimate
    room = (figures.onchip_cache_mib or 0.0) * 2**20
    streamed, on_accelerator = [], 0
    for op, mapped, size in zip(work.ops, placed, parameter_bytes(work.graph)):
        mapped = mapped and op.kind != "folded" and gmacs_for(figures, op.dtype) is not None
        on_accelerator += size if mapped else 0
        fits = size <= room
        room -= size if mapped and fits else 0
        streamed.append(size if mapped and not fits and figures.streams_parameters else 0)
    return streamed, on_accelerator


def _streaming_note(device: DeviceProfile, work: ModelWork, rows: list, on_accelerator: int) -> list[str]:
    figures = device.estimate
    streamed = [(row, op) for row, op in zip(rows, work.ops) if row.streamed_bytes]
    if not streamed:
        return []
    total = sum(row.streamed_bytes for row, _ in streamed)
    added = sum(row.ms - op_time(op, figures, gmacs_for(figures, op.dtype), 1.0)[0] for row, op in streamed)
    cache_mb = figures.onchip_cache_mib * 2**20 / 1e6
    return [f"the {device.accelerator.value}'s operators hold {on_accelerator / 1e6:.1f} MB of parameters, more than "
            f"its {cache_mb:.1f} MB on-chip cache: {total / 1e6:.1f} MB of them ({len(streamed)} operator"
            f"{'s' if len(streamed) > 1 else ''}) stream "
            f"over the link every inference, {sum(row.link_ms for row, _ in streamed):.1f} ms at "
            f"{figures.link_bandwidth_mbs:g} MB/s, +{added:.1f} ms to the estimate where the transfer outlasts "
            f"the operators' compute"]


def _shape_notes(work: ModelWork) -> list[str]:
    """What the estimate assumed about inputs whose size the model leaves open."""
    notes = []
    for index in work.graph.inputs:
        tensor = work.graph.tensors[index]
        signature = [int(d) for d in (tensor.shape_signature or [])]
        if signature and signature[0] == -1:
            notes.append(f"input {tensor.name}: the batch is dynamic; estimated for batch 1")
        if any(d == -1 for d in signature[1:]):
            notes.append(f"input {tensor.name} accepts any size {signature}; estimated at the stored shape "
                         f"{[int(d) for d in tensor.shape]}, far smaller than a real input: measure with --data, "
                         f"or convert with a fixed input size")
    return notes


def estimate_latency(work: ModelWork, device: DeviceProfile, threads: int | None = None) -> Estimate:
    """Estimate one inference of ``work`` on ``device`` at ``threads`` (default: the profile's).

    ConfigError (exit 2) when the profile has no ``estimate`` figures or none for an operator's
    arithmetic (e.g. int16x8 on a profile that gives only float32 and int8).
    """
    figures = device.estimate
    if figures is None:
        raise ConfigError(f"device profile '{device.name}' has no 'estimate' figures",
                          hint="add an estimate: section (see devices/raspberry-pi-4.yaml) or profile on the device")
    threads = threads or device.threads
    cpu = figures if device.accelerator == Accelerator.CPU else figures.cpu_fallback
    placed = _on_accelerator(device, work)
    streamed, on_accelerator = _streamed_parameters(device, work, placed)
    notes, rows = _readiness_note(device, work) + _shape_notes(work), []
    on_cpu = 0
    for position, op in enumerate(work.ops):
        unit, name, scale = figures, "accelerator", 1.0
        gmacs = gmacs_for(figures, op.dtype) if placed[position] else None
        if device.accelerator == Accelerator.CPU:
            name, scale = "cpu", thread_scale(figures, threads)
        elif gmacs is None:
            unit, name, scale, gmacs = cpu, "cpu", thread_scale(figures, threads), gmacs_for(cpu, op.dtype)
            on_cpu += op.kind != "folded"
        if gmacs is None:
            raise ConfigError(f"device profile '{device.name}' has no estimate figure for {op.dtype} operators "
                              f"(operator {op.index} {op.op})",
                              hint=f"add estimate.gmacs.{op.dtype} (or cpu_fallback.gmacs.{op.dtype}) to the profile")
        link_us = streamed[position] / figures.link_bandwidth_mbs if streamed[position] else 0.0  # B / (MB/s) = us
        ms, bound = op_time(op, unit, gmacs, scale, link_us)
        rows.append(OpEstimate(op.index, op.op, op.dtype, name, op.macs, op.bytes, ms, bound,
                               streamed[position], link_us / 1e3))
    notes += _streaming_note(device, work, rows, on_accelerator)
    if device.accelerator != Accelerator.CPU and on_cpu:
        notes.append(f"{on_cpu} of {len(work.ops)} operators cannot run on the {device.accelerator.value} "
                     f"and were estimated on the device's CPU")
    modes = {m.value for m in device.modes}
    scheme_mode = {"full-integer": "int8", "int8 (float I/O)": "int8", "dynamic-range": "dynamic",
                   "mixed": "int8"}.get(work.scheme, work.scheme)
    if scheme_mode not in modes:
        notes.append(f"{device.name} lists modes {sorted(modes)}; this model is {work.scheme}")
    total = sum(row.ms for row in rows) + figures.invoke_overhead_us / 1e3
    return Estimate(device.name, total, rows, figures.source, threads, notes)
