"""Create a TFLite interpreter from model bytes with whichever runtime is installed.

Bytes, not a path: the flatbuffer verifier only runs on ``model_content``. Never imports
TensorFlow unless ``tf.lite`` is the only runtime left or is asked for by name.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from edgepack.errors import ConfigError, ModelError, RuntimeUnavailable
from edgepack.util.quiet import captured_native_output

RUNTIMES = {
    "ai-edge-litert": ("ai_edge_litert.interpreter", "ai-edge-litert"),
    "tflite-runtime": ("tflite_runtime.interpreter", "tflite-runtime"),
    "tf.lite": ("tensorflow.lite", "tensorflow"),
}


@dataclass(frozen=True)
class RuntimeInfo:
    """Which runtime ran a model: every latency or accuracy figure names it."""

    name: str
    version: str
    threads: int | None

    def as_dict(self) -> dict:
        return asdict(self)


def _import_runtime(name: str):
    module_name, dist = RUNTIMES[name]
    if name == "tf.lite":
        from edgepack.util.tf import import_tf

        return import_tf().lite, metadata.version(dist)
    return importlib.import_module(module_name), metadata.version(dist)


def available_runtimes() -> list[str]:
    """The runtimes that import here, in order of preference."""
    found = []
    for name, (module_name, _) in RUNTIMES.items():
        if importlib.util.find_spec(module_name.split(".")[0]) is not None:
            found.append(name)
    return found


def read_model_bytes(path: str | Path) -> bytes:
    """The bytes of a .tflite file, with a clear error when it is missing or plainly not TFLite."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model not found: {path}" if not path.exists() else f"{path} is not a file",
                         hint="give the path of a .tflite file")
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError(f"{path} is not a TFLite model (empty, truncated or another format)",
                         hint="convert the model again with 'edgepack quantize'")
    return data


def make_interpreter(model: bytes, *, threads: int | None = None, runtime: str = "auto",
                     where: str = "model"):
    """Return ``(interpreter, RuntimeInfo)`` for ``model`` with tensors allocated."""
    if runtime != "auto" and runtime not in RUNTIMES:
        raise ConfigError(f"unknown runtime '{runtime}'", hint=f"choose one of: auto, {', '.join(RUNTIMES)}")
    candidates = [runtime] if runtime != "auto" else [r for r in RUNTIMES if r != "tf.lite"] + ["tf.lite"]
    errors = []
    for name in candidates:
        try:
            module, version = _import_runtime(name)
        except (ImportError, metadata.PackageNotFoundError) as exc:
            errors.append(f"{name}: {exc}")
            continue
        try:
            with captured_native_output():
                interpreter = module.Interpreter(model_content=model, num_threads=threads)
                interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{where} was rejected by {name} {version}: {reason}",
                             hint="check the file is a complete .tflite model; convert it again") from exc
        except SystemError as exc:  # tflite-runtime 2.14 under numpy 2
            errors.append(f"{name}: {exc}")
            continue
        return interpreter, RuntimeInfo(name, version, threads)
    raise RuntimeUnavailable("no TFLite runtime could run the model (" + "; ".join(errors) + ")",
                             hint="pip install ai-edge-litert")
