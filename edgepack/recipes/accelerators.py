"""Accelerator checks in a run: the Edge TPU readiness gate and compiler, the GPU delegation prediction."""

from __future__ import annotations

from pathlib import Path

from edgepack.recipes.result import GateVerdict


def edgetpu_stage(stage: Path, model: Path, tflite: dict, device) -> tuple[dict | None, list[GateVerdict]]:
    """For an Edge TPU device: ``(edgetpu section of the result, [readiness gate])``; else ``(None, [])``."""
    if getattr(device.accelerator, "value", device.accelerator) != "edgetpu":
        return None, []
    from edgepack.edgetpu.compiler import compare, compile_model, find_compiler

    readiness = tflite.get("edgetpu") or {}
    first = readiness.get("first_unsupported")
    note = "; ".join(readiness.get("reasons", [])[:2]) or None
    gate = GateVerdict(gate="edgetpu_ready", threshold=1, value=1.0 if readiness.get("ready") else 0.0,
                       unit="(1 = every op maps to the Edge TPU)", passed=bool(readiness.get("ready")), note=note)
    section = {"prediction": readiness, "compiler": None}
    if first:
        section["partition"] = f"op {first['index']} ({first['op']}) and everything after it run on the CPU"
    if find_compiler() is None:
        section["compiler_note"] = "edgetpu_compiler is not installed here; the prediction above stands"
        return section, [gate]
    compiled, log = compile_model(model, stage)
    compiled.rename(stage / "model_edgetpu.tflite")
    section["compiler"] = log.model_dump()
    section["comparison"] = compare(log, readiness)
    return section, [gate]


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
    return {"prediction": prediction, "summary": summary}
