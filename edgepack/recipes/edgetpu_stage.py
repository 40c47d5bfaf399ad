"""The Edge TPU part of a run: the readiness gate, and the compiler where it is installed."""

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
