"""Talking to the latency probe: its command line, and what its JSON and exit status mean.

The probe (``edgepack/on_device/latency_probe.py``) prints one JSON document. A probe killed by a
signal prints nothing: locally ``returncode`` is ``-signal``; through ssh the remote shell reports
``128 + signal``. The last ``@@stage NAME`` line on its stderr says what it was doing.
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass
from pathlib import Path

from edgepack.errors import DataError, EdgepackError, ModelError, RemoteError, RuntimeUnavailable

PROBE_SCRIPT = Path(__file__).resolve().parents[1] / "on_device" / "latency_probe.py"


class AcceleratorUnavailable(RuntimeUnavailable):
    """The delegate library or accelerator the device profile names could not be used (exit 5)."""


@dataclass
class ProbeSpec:
    """What the probe is asked to do (paths are filled in where it runs)."""

    runs: int
    warmup: int
    warmup_seconds: float
    min_seconds: float
    max_seconds: float
    threads: int | None
    runtime: str
    accelerator: str
    delegate: str | None
    op_profile: bool

    def args(self, model: str, inputs: str | None = None) -> list[str]:
        """The probe's arguments after the script path."""
        args = [model, "--runs", str(self.runs), "--warmup", str(self.warmup),
                "--warmup-seconds", repr(self.warmup_seconds), "--min-seconds", repr(self.min_seconds),
                "--max-seconds", repr(self.max_seconds), "--runtime", self.runtime,
                "--accelerator", self.accelerator]
        if self.threads:
            args += ["--threads", str(self.threads)]
        if self.delegate:
            args += ["--delegate", self.delegate]
        if self.op_profile:
            args.append("--op-profile")
        if inputs:
            args += ["--inputs", inputs]
        return args


def last_stage(stderr: str) -> str | None:
    """The probe's last ``@@stage`` marker (what it was doing when it stopped)."""
    stages = [line.split(None, 1)[1].strip() for line in stderr.splitlines()
              if line.startswith("@@stage ") and len(line.split(None, 1)) == 2]
    return stages[-1] if stages else None


def _document(stdout: str) -> dict | None:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                document = json.loads(line)
            except ValueError:
                return None
            return document if isinstance(document, dict) and "ok" in document else None
    return None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _tail(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("@@stage ")]
    return " ".join(" ".join(lines[-2:]).split())[:300]


def _raise_error(error: dict, where: str, remote: bool) -> None:
    kind, message = error.get("kind"), error.get("message", "unknown error")
    if kind == "missing-dependency":
        install = error.get("install") or "pip install ai-edge-litert"
        cls = RemoteError if remote else RuntimeUnavailable
        raise cls(f"{where}: {message}", hint=f"install it there: {install}")
    if kind == "model":
        raise ModelError(f"the runtime on {where} rejected the model: {message}",
                         hint="convert or copy the model again; the file is damaged or uses unsupported operators")
    if kind in ("delegate", "accelerator"):
        raise AcceleratorUnavailable(f"{where}: {message}",
                                     hint="install the delegate or driver there, profile with --estimate, or "
                                          "measure on the CPU with --allow-cpu-fallback")
    if kind == "inputs":
        raise DataError(f"{where}: {message}")
    raise EdgepackError(f"the latency probe failed on {where}: {message}",
                        hint="run again with --debug for details")


def interpret(stdout: str, stderr: str, returncode: int, *, where: str, remote: bool, python: str) -> dict:
    """The probe's result document, or the right edgepack error for how it failed."""
    document = _document(stdout)
    if document is not None and document.get("ok"):
        return document
    if document is not None:
        _raise_error(document.get("error") or {}, where, remote)
    stage = last_stage(stderr)
    during = f" during {stage}" if stage else ""
    crashed = -returncode if returncode < 0 else (returncode - 128 if remote and 128 < returncode < 160 else None)
    if crashed:
        raise RuntimeUnavailable(f"the runtime crashed on {where} with {_signal_name(crashed)}{during}",
                                 hint="the model or a delegate killed the process; edgepack isolated it — "
                                      "try another runtime (--runtime) or without the delegate")
    if returncode == 127 or "No such file or directory" in stderr and stage is None:
        cls = RemoteError if remote else RuntimeUnavailable
        raise cls(f"{where}: cannot start '{python}' ({_tail(stderr) or 'not found'})",
                  hint="install python3 there, or name the interpreter with --python")
    raise RuntimeUnavailable(f"the latency probe on {where} stopped with exit status {returncode}"
                             f"{during} and no result ({_tail(stderr) or 'no message'})",
                             hint="run again with --debug for details")
