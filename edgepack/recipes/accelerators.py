"""Accelerator checks in a run: the Edge TPU readiness gate and compiler, the GPU delegation prediction."""

from __future__ import annotations

from pathlib import Path


def is_edgetpu(device) -> bool:
    """True for a device whose accelerator is the Edge TPU (its runs get the ``edgetpu_ready`` gate)."""
    return device is not None and getattr(device.accelerator, "value", device.accelerator) == "edgetpu"


def edgetpu_stage(stage: Path, model: Path, tflite: dict, device) -> dict | None:
    """For an Edge TPU device, the edgetpu section of the result (prediction, partition point, and
    the compiler's log where ``edgetpu_compiler`` is installed); else None. The readiness gate is
    judged with the others (``recipes.gates.judge``)."""
    if not is_edgetpu(device):
        return None
    from edgepack.edgetpu.compiler import compare, compile_model, find_compiler

    readiness = tflite.get("edgetpu") or {}
    first = readiness.get("first_unsupported")
    section = {"prediction": readiness, "compiler": None, "fixes": _fixes(tflite, "edgetpu")}
    if first:
        section["partition"] = f"op {first['index']} ({first['op']}) and everything after it run on the CPU"
    if find_compiler() is None:
        section["compiler_note"] = "edgetpu_compiler is not installed here; the prediction above stands"
        return section
    compiled, log = compile_model(model, stage)
    compiled.rename(stage / "model_edgetpu.tflite")
    section["compiler"] = log.model_dump()
    section["comparison"] = compare(log, readiness)
    return section


def gpu_stage(tflite: dict, device) -> dict | None:
    """For a GPU device: which ops the GPU delegate is predicted to leave on the CPU (no gate: a
    fallback is slow, not wrong). Measured delegation, where a GPU is at hand, is in the profile."""
    if getattr(device.accelerator, "value", device.accelerator) != "gpu":
        return None
    prediction = tflite.get("gpu") or {}
    cpu_ops = prediction.get("cpu_ops") or []
    summary = ("every op is predicted to run on the GPU" if prediction.get("fully_delegated") else
               f"{len(cpu_ops)} of {prediction.get('ops_total')} ops are predicted to fall back to the CPU "
               f"(first: {cpu_ops[0]['op']}: {cpu_ops[0]['reason']})" if cpu_ops else "no prediction")
    return {"prediction": prediction, "summary": summary, "fixes": _fixes(tflite, "gpu")}


def _fixes(tflite: dict, target: str) -> list[dict]:
    """The fix-it rows (inspection.fixes) for one accelerator: operator, Keras layer, why, what to change."""
    return [fix for fix in tflite.get("fixes") or [] if fix["target"] == target]
