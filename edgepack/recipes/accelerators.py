"""Accelerator checks in a run: the Edge TPU readiness gate and compiler, the GPU delegation prediction."""

from __future__ import annotations

from pathlib import Path

from edgepack.inspection.result import FixIt, TfliteInspection
from edgepack.report.result import EdgeTpuCheck, GpuCheck


def is_edgetpu(device) -> bool:
    """True for a device whose accelerator is the Edge TPU (its runs get the ``edgetpu_ready`` gate)."""
    return device is not None and device.accelerator.value == "edgetpu"


def edgetpu_stage(stage: Path, model: Path, tflite: TfliteInspection, device) -> EdgeTpuCheck | None:
    """For an Edge TPU device, the edgetpu section of the result (prediction, partition point, and
    the compiler's log where ``edgetpu_compiler`` is installed); else None. The readiness gate is
    judged with the others (``recipes.gates.judge``)."""
    if not is_edgetpu(device):
        return None
    from edgepack.edgetpu.compiler import compare, compile_model, find_compiler

    readiness = tflite.edgetpu
    first = readiness.first_unsupported
    section = EdgeTpuCheck(prediction=readiness, fixes=_fixes(tflite, "edgetpu"),
                           partition=f"op {first.index} ({first.op}) and everything after it run on the CPU"
                           if first else None)
    if find_compiler() is None:
        section.compiler_note = "edgetpu_compiler is not installed here; the prediction above stands"
        return section
    compiled, log = compile_model(model, stage)
    compiled.rename(stage / "model_edgetpu.tflite")
    section.compiler = log
    section.comparison = compare(log, readiness)
    return section


def gpu_stage(tflite: TfliteInspection, device) -> GpuCheck | None:
    """For a GPU device: which ops the GPU delegate is predicted to leave on the CPU (no gate: a
    fallback is slow, not wrong). Measured delegation, where a GPU is at hand, is in the profile."""
    if device.accelerator.value != "gpu" or tflite.gpu is None:
        return None
    prediction = tflite.gpu
    cpu_ops = prediction.cpu_ops
    summary = ("every op is predicted to run on the GPU" if prediction.fully_delegated else
               f"{len(cpu_ops)} of {prediction.ops_total} ops are predicted to fall back to the CPU "
               f"(first: {cpu_ops[0].op}: {cpu_ops[0].reason})" if cpu_ops else "no prediction")
    return GpuCheck(prediction=prediction, summary=summary, fixes=_fixes(tflite, "gpu"))


def _fixes(tflite: TfliteInspection, target: str) -> list[FixIt]:
    """The fix-it rows (inspection.fixes) for one accelerator: operator, Keras layer, why, what to change."""
    return [fix for fix in tflite.fixes if fix.target == target]
