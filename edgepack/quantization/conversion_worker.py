"""The TFLite converter in a child process, so that a crash or hang inside TensorFlow's converter is
a one-line error (exit 4 naming the signal, or exit 5 after the time limit), never a dead edgepack.

One worker process per edgepack process, started before the first conversion and reused (TensorFlow
is imported once); a worker that crashed or outlived the time limit is replaced at once, so that the
next conversion (a study's next trial) does not wait for its import. Requests and replies are JSON
lines on the worker's stdin and on a copy of its original stdout (fd 1 itself is pointed at stderr,
since Keras prints to stdout while exporting). The model is loaded by the worker from its file, the
calibration rows are passed as an .npy file (an .npz by input name for a model with several inputs),
the .tflite comes back as a file. The worker leaves when its stdin closes (edgepack exited, or was
killed).
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from edgepack import errors
from edgepack.errors import ModelError, RuntimeUnavailable
from edgepack.modes import IOType, QuantMode
from edgepack.util import quiet
from edgepack.util.child_process import die_with_parent

DEFAULT_TIMEOUT_S = 900.0
TIMEOUT_ENV = "EDGEPACK_CONVERT_TIMEOUT"


class ConversionRequest(BaseModel):
    """One conversion: the model file, how to convert it, where the calibration rows and result go."""

    model: Path
    trust_model: bool = False
    mode: QuantMode
    io: IOType = IOType.FLOAT32
    static_batch: bool = False
    sparse: bool = False
    calibration: Path | None = None
    output: Path
    folder: Path  # the worker's temporary folder for this conversion (the converter writes files too)


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


class _Worker:
    """The parent's handle on the worker process."""

    def __init__(self):
        package_root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edgepack.quantization.conversion_worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=None if quiet.DEBUG else subprocess.DEVNULL, start_new_session=True,
            preexec_fn=die_with_parent(), env={**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "3", "EDGEPACK_WORKER_DEBUG":
                 "1" if quiet.DEBUG else ""})

    def alive(self) -> bool:
        return self.process.poll() is None

    def ask(self, request: ConversionRequest, timeout: float) -> dict | None:
        """The worker's reply, or None when it died (its return code tells how)."""
        try:
            self.process.stdin.write((request.model_dump_json() + "\n").encode())
            self.process.stdin.flush()
        except BrokenPipeError:  # it died before the request reached it (while importing TensorFlow)
            self.process.wait()
            return None
        fd, deadline, buffer = self.process.stdout.fileno(), time.monotonic() + timeout, b""
        while not buffer.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.process.wait()
                    return None
                buffer += chunk
        return json.loads(buffer)

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()


_worker: _Worker | None = None


def _stop_worker() -> None:
    """Stop the worker at once: between requests it holds nothing of its own (a worker started early
    may still be importing TensorFlow, and edgepack's exit does not wait for that)."""
    global _worker
    if _worker is not None and _worker.alive():
        _worker.kill()
    _worker = None


atexit.register(_stop_worker)


def start_worker() -> None:
    """Start the worker now (it imports TensorFlow as it starts), so that a conversion later finds
    it ready; nothing when one is running."""
    global _worker
    if _worker is None or not _worker.alive():
        _worker = _Worker()


def _timeout() -> float:
    try:
        return float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_S)
    except ValueError:
        return DEFAULT_TIMEOUT_S


def _save_calibration(folder: Path, calibration: np.ndarray | dict | None) -> Path | None:
    """The calibration rows as a file for the worker: .npy for one input, .npz by input name for several."""
    if calibration is None:
        return None
    if isinstance(calibration, dict):
        path = folder / "calibration.npz"
        np.savez(path, **calibration)
        return path
    path = folder / "calibration.npy"
    np.save(path, calibration)
    return path


def _load_calibration(path: Path | None) -> np.ndarray | dict | None:
    if path is None:
        return None
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as arrays:
            return {name: arrays[name] for name in arrays.files}
    return np.load(path, allow_pickle=False)


def convert_in_worker(loaded, config, calibration: np.ndarray | dict | None, *, trust_model: bool = False) -> bytes:
    """The .tflite bytes of ``loaded`` (read again from its file by the worker) converted as ``config``
    says (mode, io, static_batch); ``calibration`` is an array of rows, or a dict of arrays by input
    name for a model with several inputs. A converter crash is ModelError naming the signal; a
    conversion that outlives the limit ($EDGEPACK_CONVERT_TIMEOUT, default 900 s) is RuntimeUnavailable."""
    global _worker
    with tempfile.TemporaryDirectory(prefix="edgepack-convert-") as folder:
        request = ConversionRequest(model=loaded.info.path, trust_model=trust_model, mode=config.mode,
                                    io=config.io, static_batch=bool(config.static_batch),
                                    sparse=bool(getattr(config, "sparse", False)),
                                    calibration=_save_calibration(Path(folder), calibration),
                                    output=Path(folder) / "model.tflite", folder=Path(folder))
        start_worker()
        try:
            reply = _worker.ask(request, _timeout())
        except TimeoutError:
            _worker.kill()
            start_worker()  # the replacement imports TensorFlow while edgepack goes on
            raise RuntimeUnavailable(f"the TFLite converter did not finish converting {loaded.info.path} within "
                                     f"{_timeout():g} s; it was stopped",
                                     hint=f"set {TIMEOUT_ENV}=SECONDS for a larger model") from None
        except BaseException:  # Ctrl-C or a termination signal: the worker goes with edgepack
            _worker.kill()
            raise
        if reply is None:
            crashed = _crashed(loaded, request, _worker.process.returncode)
            start_worker()
            raise crashed
        if not reply["ok"]:
            error_class = getattr(errors, reply["kind"], ModelError)
            raise error_class(reply["message"], hint=reply.get("hint"))
        return request.output.read_bytes()


def _crashed(loaded, request: ConversionRequest, returncode: int) -> ModelError:
    how = _signal_name(returncode) if returncode < 0 else f"exit status {returncode}"
    recurrent = recurrent_layers(loaded)
    where = f" (recurrent layers: {', '.join(recurrent)})" if recurrent else ""
    hint = ("TensorFlow's converter cannot quantize these recurrent layers to " + request.mode.value +
            "; try --mode dynamic or float16" if recurrent and request.mode.needs_calibration
            else "try another --mode, or convert without --static-batch; --debug shows the converter's log")
    return ModelError(f"the TFLite converter crashed ({how}) converting {loaded.info.path} to {request.mode.value}"
                      f"{' with a static batch' if request.static_batch else ''}{where}; edgepack stopped it",
                      hint=hint)


def recurrent_layers(loaded) -> list[str]:
    """Names of the model's LSTM/GRU/SimpleRNN layers (also inside Bidirectional and nested models)."""
    found = []

    def visit(layers):
        for layer in layers:
            kind = type(layer).__name__
            inner = getattr(layer, "forward_layer", None) or getattr(layer, "layer", None)
            if kind in ("LSTM", "GRU", "SimpleRNN", "RNN") or (kind == "Bidirectional" and inner is not None):
                found.append(layer.name)
            elif hasattr(layer, "layers"):
                visit(layer.layers)

    if getattr(loaded, "is_keras", False):
        visit(loaded.model.layers)
    return found


def _serve() -> int:
    """The worker: answer conversion requests until stdin closes."""
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything printed to stdout (Keras' export chatter) goes to stderr
    quiet.DEBUG = os.environ.get("EDGEPACK_WORKER_DEBUG") == "1"
    from edgepack.loading.model import load_model
    from edgepack.quantization.convert import convert

    _import_tensorflow()

    for line in sys.stdin:
        try:
            request = ConversionRequest.model_validate_json(line)
            os.environ["TMPDIR"] = tempfile.tempdir = str(request.folder)
            loaded = load_model(request.model, trust_model=request.trust_model)
            calibration = _load_calibration(request.calibration)
            request.output.write_bytes(convert(loaded, request, calibration))
            reply = {"ok": True}
        except errors.EdgepackError as exc:
            reply = {"ok": False, "kind": type(exc).__name__, "message": exc.message, "hint": exc.hint}
        except Exception as exc:  # a bug: the parent reports it as the converter's failure
            reply = {"ok": False, "kind": "ModelError", "message": f"the TFLite converter failed: "
                     f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"}
        protocol.write(json.dumps(reply) + "\n")
        protocol.flush()
    return 0


def _import_tensorflow() -> None:
    """TensorFlow and Keras, imported before the first request arrives (the parent starts the worker
    early). Should the import fail, the first request says why, as it would without this."""
    try:
        from edgepack.util.tf import import_tf

        import_tf()
        import keras  # noqa: F401
    except Exception:  # noqa: BLE001 - reported by the request that needs them
        pass


if __name__ == "__main__":
    sys.exit(_serve())
