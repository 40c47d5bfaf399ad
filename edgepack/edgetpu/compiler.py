"""Run ``edgetpu_compiler`` when it is on PATH, parse its log, and compare it with the prediction.

The log format is the compiler's own (versions 2.1 to 16.0 print the same lines)::

    Edge TPU Compiler version 16.0.384591198
    ...
    Number of Edge TPU subgraphs: 1
    Total number of operations: 246
    ...
    Number of operations that will run on Edge TPU: 261      (only when some ops stay on the CPU)
    Number of operations that will run on CPU: 6

    Operator                       Count      Status

    DEPTHWISE_CONV_2D              80         Mapped to Edge TPU
    LOGISTIC                       1          Operation is otherwise supported, but not mapped due to ...
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from pydantic import BaseModel

from edgepack.errors import ModelError, RuntimeUnavailable
from edgepack.inspection.result import EdgeTpuReadiness

COMPILER = "edgetpu_compiler"
MAPPED = "Mapped to Edge TPU"
_ROW = re.compile(r"^([A-Z][A-Z0-9_]*)\s+(\d+)\s+(\S.*?)\s*$")


class OperatorRow(BaseModel):
    op: str
    count: int
    status: str
    mapped: bool


class CompilerLog(BaseModel):
    """What the compiler reported."""

    version: str | None = None
    compiled: bool = False
    subgraphs: int | None = None
    total_ops: int | None = None
    ops_on_edgetpu: int | None = None
    ops_on_cpu: int | None = None
    on_chip_memory: str | None = None
    off_chip_memory: str | None = None
    operators: list[OperatorRow] = []
    errors: list[str] = []


def _int(pattern: str, text: str) -> int | None:
    match = re.search(pattern, text, re.M)
    return int(match.group(1)) if match else None


def parse_compiler_log(text: str) -> CompilerLog:
    """Read the compiler's standard output (with ``-s``, the operator table)."""
    log = CompilerLog()
    version = re.search(r"Edge TPU Compiler version (\S+)", text)
    log.version = version.group(1) if version else None
    log.compiled = "Model compiled successfully" in text
    log.subgraphs = _int(r"^Number of Edge TPU subgraphs:\s*(\d+)", text)
    log.total_ops = _int(r"^Total number of operations:\s*(\d+)", text)
    log.ops_on_edgetpu = _int(r"^Number of operations that will run on Edge TPU:\s*(\d+)", text)
    log.ops_on_cpu = _int(r"^Number of operations that will run on CPU:\s*(\d+)", text)
    for key, pattern in (("on_chip_memory", r"^On-chip memory used for caching model parameters:\s*(\S+)"),
                         ("off_chip_memory", r"^Off-chip memory used for streaming uncached model parameters:\s*(\S+)")):
        match = re.search(pattern, text, re.M)
        setattr(log, key, match.group(1) if match else None)
    in_table = False
    for line in text.splitlines():
        if line.startswith("Operator") and "Status" in line:
            in_table = True
            continue
        match = _ROW.match(line) if in_table else None
        if match:
            status = match.group(3)
            log.operators.append(OperatorRow(op=match.group(1), count=int(match.group(2)), status=status,
                                             mapped=status == MAPPED))
    if log.compiled and log.ops_on_edgetpu is None and log.total_ops is not None:
        mapped = sum(row.count for row in log.operators if row.mapped)
        log.ops_on_edgetpu = mapped if log.operators else log.total_ops
        log.ops_on_cpu = log.total_ops - log.ops_on_edgetpu
    log.errors = [line.strip() for line in text.splitlines() if re.match(r"\s*(ERROR|Internal compiler error)", line)]
    return log


def find_compiler() -> str | None:
    """The compiler's path, or None when it is not installed (it exists for x86-64 Debian only)."""
    return shutil.which(COMPILER)


def compile_model(model: Path, out_dir: Path, *, timeout_s: float = 300) -> tuple[Path, CompilerLog]:
    """Compile ``model`` into ``out_dir``; returns the ``*_edgetpu.tflite`` path and the parsed log."""
    compiler = find_compiler()
    if compiler is None:
        raise RuntimeUnavailable(f"{COMPILER} is not installed",
                                 hint="install it from Coral's package repository (x86-64 Debian/Ubuntu only)")
    try:
        done = subprocess.run([compiler, "-s", "-o", str(out_dir), "--", str(model)], capture_output=True,
                              text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise RuntimeUnavailable(f"{COMPILER} did not finish within {timeout_s:.0f} s") from None
    log = parse_compiler_log(done.stdout + "\n" + done.stderr)
    output = out_dir / f"{model.stem}_edgetpu.tflite"
    if done.returncode != 0 or not log.compiled or not output.exists():
        reason = log.errors[0] if log.errors else (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ModelError(f"{COMPILER} could not compile {model.name}: {reason}",
                         hint="check 'edgepack inspect' for the ops the Edge TPU cannot run")
    return output, log


class Comparison(BaseModel):
    """The compiler's mapping beside edgepack's prediction."""

    predicted_ops_on_edgetpu: int | None = None
    compiler_ops_on_edgetpu: int | None = None
    ops_total: int | None = None
    compiler_total_ops: int | None = None
    agrees: bool
    cpu_ops: list[OperatorRow] = []


def compare(log: CompilerLog, readiness: EdgeTpuReadiness) -> Comparison:
    """Set the compiler's mapping beside edgepack's prediction (from ``inspect``'s ``edgetpu``)."""
    predicted, actual = readiness.ops_mappable, log.ops_on_edgetpu
    return Comparison(predicted_ops_on_edgetpu=predicted, compiler_ops_on_edgetpu=actual,
                      ops_total=readiness.ops_total, compiler_total_ops=log.total_ops,
                      agrees=predicted is not None and actual is not None and predicted == actual,
                      cpu_ops=[row for row in log.operators if not row.mapped])
