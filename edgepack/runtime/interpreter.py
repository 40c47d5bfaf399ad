"""Create a TFLite interpreter from model bytes with whichever runtime is installed.

Bytes, not a path: the flatbuffer verifier only runs on ``model_content``. Never imports
TensorFlow unless ``tf.lite`` is the only runtime left or is asked for by name.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from edgepack.errors import ConfigError, ModelError, RuntimeUnavailable
from edgepack.util.quiet import captured_native_output

RUNTIMES = {
    "ai-edge-litert": ("ai_edge_litert.interpreter", "ai-edge-litert"),
    "tflite-runtime": ("tflite_runtime.interpreter", "tflite-runtime"),
    "tf.lite": ("tensorflow.lite", "tensorflow"),
}


class RuntimeInfo(BaseModel):
    """Which runtime ran a model (or read it, for ``inspect``): every latency or accuracy figure names it."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    threads: int | None = None


def _import_runtime(name: str):
    module_name, dist = RUNTIMES[name]
    if name == "tf.lite":
        from edgepack.util.tf import import_tf

        return import_tf().lite, metadata.version(dist)
    module = importlib.import_module(module_name)
    try:
        return module, metadata.version(dist)
    except metadata.PackageNotFoundError:
        return module, getattr(module, "__version__", "unknown")


def available_runtimes() -> list[str]:
    """The runtimes that import here, in order of preference."""
    found = []
    for name, (module_name, _) in RUNTIMES.items():
        if importlib.util.find_spec(module_name.split(".")[0]) is not None:
            found.append(name)
    return found


CORRUPT_HINT = "convert or copy the model again; the file is damaged"
MAX_TFLITE_BYTES = 2 << 30
"""Largest .tflite read (2 GiB, the most a FlatBuffer can address); checked before reading, and the
read is bounded, so a huge or endless file (a device such as /dev/zero) is never read whole."""


def read_model_bytes(path: str | Path) -> bytes:
    """The bytes of a .tflite file, with a clear error when it is missing, not a regular file,
    larger than ``MAX_TFLITE_BYTES`` or plainly not TFLite (ModelError, exit 4)."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"model not found: {path}", hint="check the path")
    if path.is_dir():
        raise ModelError(f"{path} is a folder, not a .tflite file", hint="give the path of a .tflite file")
    if not path.is_file():
        raise ModelError(f"{path} is not a regular file", hint="give the path of a .tflite file")
    too_large = ModelError(f"{path} is larger than {MAX_TFLITE_BYTES >> 30} GiB, more than a TFLite flatbuffer "
                           f"can hold", hint="give a .tflite file written by the TFLite converter (edgepack quantize)")
    try:
        if path.stat().st_size > MAX_TFLITE_BYTES:
            raise too_large
        with path.open("rb") as handle:
            data = handle.read(MAX_TFLITE_BYTES + 1)
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror}", hint="check the file's permissions") from None
    if len(data) > MAX_TFLITE_BYTES:
        raise too_large
    if not data:
        raise ModelError(f"{path} is empty (0 bytes)", hint=CORRUPT_HINT)
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError(f"{path} is not a TFLite model (no 'TFL3' file identifier at bytes 4-8)",
                         hint="give a .tflite file written by the TFLite converter (edgepack quantize)")
    return data


def rejected(exc: Exception, where: str, runtime: str) -> ModelError:
    """The one-line error for a model the runtime refused to load or prepare (an unknown operator, or damage)."""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "Didn't find op" in detail or "Encountered unresolved custom op" in detail:
        return ModelError(f"{where} uses an operator {runtime} does not have: {detail}",
                          hint="upgrade the runtime, or convert with builtin ops only")
    return ModelError(f"{where} is corrupt or truncated ({runtime}: {detail})", hint=CORRUPT_HINT)


def _without_delegates(module) -> dict:
    resolver = getattr(module, "OpResolverType", None)
    return {} if resolver is None else {
        "experimental_op_resolver_type": resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES}


def _check_subgraphs(model: bytes, where: str) -> None:
    """Refuse a model without subgraphs: LiteRT 2.3's verifier accepts one and its Interpreter then
    crashes the process (SIGSEGV); a one-byte change to a valid model makes one."""
    try:
        schema = importlib.import_module("ai_edge_litert.schema_py_generated")
        count = schema.Model.GetRootAs(model, 0).SubgraphsLength()
    except Exception:  # no schema module, or bytes the flatbuffer reader cannot walk: the verifier decides
        return
    if count == 0:
        raise ModelError(f"{where} is corrupt: it has no subgraphs (no operators to run)", hint=CORRUPT_HINT)


def make_interpreter(model: bytes, *, threads: int | None = None, runtime: str = "auto",
                     where: str = "model", allocate: bool = True, allow_tensorflow: bool = True,
                     delegates: bool = True):
    """Return ``(interpreter, RuntimeInfo)`` for ``model``, verified, tensors allocated if asked.

    ``runtime="auto"`` tries ai-edge-litert, then tflite-runtime, then (only when
    ``allow_tensorflow``) tf.lite, which imports TensorFlow. ``delegates=False`` runs every operator
    on the runtime's own kernels (no default XNNPACK delegate), as a runtime without one plans them.
    """
    if runtime != "auto" and runtime not in RUNTIMES:
        raise ConfigError(f"unknown runtime '{runtime}'", hint=f"choose one of: auto, {', '.join(RUNTIMES)}")
    candidates = [runtime] if runtime != "auto" else [r for r in RUNTIMES if allow_tensorflow or r != "tf.lite"]
    _check_subgraphs(model, where)
    errors = []
    for name in candidates:
        try:
            module, version = _import_runtime(name)
        except (ImportError, metadata.PackageNotFoundError) as exc:
            errors.append(f"{name}: {exc}")
            continue
        try:
            with captured_native_output():
                interpreter = module.Interpreter(model_content=model, num_threads=threads,
                                                 **({} if delegates else _without_delegates(module)))
                if allocate:
                    interpreter.allocate_tensors()
                interpreter.get_input_details()  # decode the I/O tensor names now: a damaged one is a
                interpreter.get_output_details()  # UnicodeDecodeError (a ValueError) here, not in the caller
        except (ValueError, RuntimeError) as exc:
            raise rejected(exc, where, f"{name} {version}") from None
        except SystemError as exc:  # tflite-runtime 2.14 under numpy 2
            errors.append(f"{name}: {exc}")
            continue
        return interpreter, RuntimeInfo(name=name, version=version, threads=threads)
    raise RuntimeUnavailable("no TFLite runtime could load the model (" + "; ".join(errors) + ")",
                             hint="pip install ai-edge-litert")
