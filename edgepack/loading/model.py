"""Identify and load Keras models (Keras 3 or tf_keras; .keras, .h5, SavedModel) safely."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgepack.errors import ConfigError, ModelError
from edgepack.loading.archive import (MAX_JSON_MEMBER_BYTES, READ_ERRORS, ArchiveError, load_json_object,
                                      open_checked, read_member)
from edgepack.loading.safety import find_unsafe_objects
from edgepack.util.files import sha256_file
from edgepack.util.tf import captured_native_output, import_tf

if TYPE_CHECKING:
    from edgepack.loading.outputs import OutputChoice


class ModelFormat(str, Enum):
    KERAS = "keras"
    H5 = "h5"
    SAVEDMODEL = "savedmodel"


class KerasFlavor(str, Enum):
    KERAS3 = "keras3"
    TF_KERAS = "tf_keras"
    SAVEDMODEL = "savedmodel"  # a plain TF SavedModel, no Keras metadata


TRUST_HINT = "pass --trust-model only if you trust where the model came from"


@dataclass
class ModelInfo:
    """What a model file is, read from its own metadata without TensorFlow."""

    path: Path
    format: ModelFormat
    flavor: KerasFlavor
    keras_version: str | None
    config: dict | None = None
    compile_config: dict | None = None
    unsafe: list = field(default_factory=list)

    @property
    def sha256(self) -> str:
        return sha256_file(self.path)


KERAS_HINT = "save the model again with model.save('model.keras')"
_KERAS_JSON = {"metadata.json": MAX_JSON_MEMBER_BYTES, "config.json": MAX_JSON_MEMBER_BYTES}
_H5_TEXT_ATTRS = ("keras_version", "model_config", "training_config")
H5_READ_TIMEOUT_S = 30
"""HDF5 is a C library that can crash (SIGSEGV) or loop forever on a damaged file (fuzzing found both
on one-byte changes; see tests/faults/test_loader_fuzz.py); edgepack reads an .h5 model's attributes in a child process with
this time limit, so neither takes edgepack down. A healthy file takes about 0.3 s (start-up)."""
H5_CHILD_MEMORY_BYTES = 4 << 30
"""Address-space limit of that child: a damaged size field cannot make it exhaust memory."""


def _read_keras_zip(path: Path) -> tuple[dict, dict]:
    """metadata.json and config.json of a .keras archive, after checking its central directory
    (see edgepack.loading.archive); anything malformed or unsafe is a ModelError (exit 4)."""
    try:
        with open_checked(path, read_limits=_KERAS_JSON) as archive:
            raw = {name: read_member(archive, name, limit) for name, limit in _KERAS_JSON.items()}
        metadata = load_json_object(raw["metadata.json"], "metadata.json")
        config = load_json_object(raw["config.json"], "config.json")
    except ArchiveError as exc:
        raise ModelError(f"{path} is not a readable .keras archive: {exc}", hint=KERAS_HINT) from None
    except READ_ERRORS as exc:
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ModelError(f"{path} is not a readable .keras archive ({detail})", hint=KERAS_HINT) from None
    return metadata, config


def _h5_text(handle, name: str, path: Path) -> str | None:
    """A text attribute of an HDF5 file's root; its type, shape and stored size are checked before
    it is read (HDF5 can crash converting a damaged non-string type to a string)."""
    import h5py

    if name not in handle.attrs:
        return None
    attr = handle.attrs.get_id(name)
    if attr.get_type().get_class() != h5py.h5t.STRING or attr.shape not in ((), (1,)):
        raise ModelError(f"{path}: attribute '{name}' is not text", hint=KERAS_HINT)
    if attr.get_storage_size() > MAX_JSON_MEMBER_BYTES:
        raise ModelError(f"{path}: attribute '{name}' is larger than {MAX_JSON_MEMBER_BYTES:,} bytes",
                         hint="this is not a model file edgepack can read")
    value = handle.attrs[name]
    if isinstance(value, np.ndarray) and value.shape in ((), (1,)):
        value = value.reshape(()).item()
    if isinstance(value, (bytes, np.bytes_)):
        value = bytes(value).decode("utf-8")
    if not isinstance(value, str):
        raise ModelError(f"{path}: attribute '{name}' is not text", hint=KERAS_HINT)
    return value


def _h5_attrs(path: Path) -> dict:
    """The text attributes edgepack needs from an .h5 file's root, read in this process."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            return {name: _h5_text(handle, name, path) for name in _H5_TEXT_ATTRS}
    except (OSError, KeyError, ValueError, TypeError, RuntimeError, AttributeError) as exc:
        # h5py: OSError for a file HDF5 cannot open, the others for damaged metadata inside one
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ModelError(f"{path} is not a readable HDF5 model file ({detail})", hint=KERAS_HINT) from None


def _h5_child(path: str) -> None:
    """Entry point of the child process ``_read_h5`` starts: the attributes as JSON on stdout."""
    import resource

    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    soft = H5_CHILD_MEMORY_BYTES if hard == resource.RLIM_INFINITY else min(H5_CHILD_MEMORY_BYTES, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    try:
        reply = {"attrs": _h5_attrs(Path(path))}
    except ModelError as exc:
        reply = {"error": exc.message, "hint": exc.hint}
    except MemoryError:
        reply = {"error": f"{path}: reading it as HDF5 needed more than {H5_CHILD_MEMORY_BYTES >> 30} GiB",
                 "hint": "the file is damaged"}
    sys.stdout.write("\n" + json.dumps(reply) + "\n")


def _h5_attrs_isolated(path: Path, timeout: float) -> dict:
    """``_h5_attrs`` run in a child process, so a crash or endless loop inside HDF5 is a ModelError."""
    code = "import sys; sys.path.insert(0, sys.argv[1]); from edgepack.loading.model import _h5_child; " \
           "_h5_child(sys.argv[2])"
    package_root = str(Path(__file__).resolve().parents[2])
    try:
        done = subprocess.run([sys.executable, "-c", code, package_root, str(path)], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout,
                              env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    except OSError:  # no Python to start (an embedded interpreter): read it here, unprotected
        return _h5_attrs(path)
    except subprocess.TimeoutExpired:
        raise ModelError(f"{path}: reading it as HDF5 did not finish in {timeout:g} s (a damaged file can make "
                         f"the HDF5 library loop)", hint=KERAS_HINT) from None
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name if -done.returncode in signal.valid_signals() else "a signal"
        raise ModelError(f"{path}: the HDF5 library crashed reading it ({name}); the file is damaged",
                         hint=KERAS_HINT)
    try:  # the last line: anything a library printed comes before it
        reply = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        reply = None
    if done.returncode != 0 or not isinstance(reply, dict):
        last = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"])[-1]
        raise ModelError(f"{path}: the HDF5 reader failed (exit {done.returncode}: {last[:200]})", hint=KERAS_HINT)
    if "error" in reply:
        raise ModelError(reply["error"], hint=reply.get("hint"))
    return reply["attrs"]


def _read_h5(path: Path, timeout: float = H5_READ_TIMEOUT_S) -> tuple[str | None, dict | None, dict | None]:
    """keras_version, model_config and training_config of an .h5 model; anything malformed is a
    ModelError (exit 4). Only those three attributes are read, each type- and size-checked first,
    in a child process (see ``H5_READ_TIMEOUT_S``)."""
    attrs = _h5_attrs_isolated(path, timeout)
    if attrs["model_config"] is None:
        raise ModelError(f"{path} holds weights only, not a whole model",
                         hint="save the whole model with model.save(...), not save_weights")
    try:
        config = load_json_object(attrs["model_config"], "model_config")
        training = load_json_object(attrs["training_config"], "training_config") \
            if attrs["training_config"] is not None else None
    except ArchiveError as exc:
        raise ModelError(f"{path}: {exc}", hint=KERAS_HINT) from None
    return attrs["keras_version"], config, training


def identify_model(path: str | Path) -> ModelInfo:
    """Tell the format and Keras flavor of ``path`` and scan its config for unsafe objects."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"model not found: {path}", hint="check the path")
    if path.is_dir():
        if not (path / "saved_model.pb").exists():
            raise ModelError(f"{path} is a folder without saved_model.pb",
                             hint="give a .keras or .h5 file or a SavedModel folder")
        flavor = KerasFlavor.TF_KERAS if (path / "keras_metadata.pb").exists() else KerasFlavor.SAVEDMODEL
        return ModelInfo(path, ModelFormat.SAVEDMODEL, flavor, None)
    if not path.is_file():
        raise ModelError(f"{path} is not a regular file", hint="give a .keras or .h5 file or a SavedModel folder")
    suffix = path.suffix.lower()
    if suffix == ".keras":
        metadata, config = _read_keras_zip(path)
        version = str(metadata.get("keras_version", ""))
        compile_config = config.get("compile_config")
        fmt = ModelFormat.KERAS
    elif suffix in {".h5", ".hdf5"}:
        version, config, compile_config = _read_h5(path)
        fmt = ModelFormat.H5
    elif suffix == ".tflite":
        raise ModelError(f"{path} is already a .tflite model",
                         hint="this command needs the Keras model (.keras, .h5 or SavedModel folder)")
    else:
        raise ModelError(f"{path}: unknown model format '{suffix or 'no extension'}'",
                         hint="give a .keras or .h5 file or a SavedModel folder")
    flavor = KerasFlavor.KERAS3 if (version or "").startswith("3") else KerasFlavor.TF_KERAS
    return ModelInfo(path, fmt, flavor, version, config, compile_config, find_unsafe_objects(config))


@dataclass
class LoadedModel:
    """A loaded model and what it is; ``model`` is a Keras (3 or 2) model or a SavedModel."""

    info: ModelInfo
    model: Any

    @property
    def is_keras(self) -> bool:
        return self.info.flavor is not KerasFlavor.SAVEDMODEL

    @property
    def input_shape(self) -> tuple:
        if self.is_keras:
            return tuple(self.model.inputs[0].shape)
        spec = self._signature().structured_input_signature[1]
        return tuple(next(iter(spec.values())).shape.as_list())

    @property
    def input_dtype(self) -> str:
        if self.is_keras:
            dtype = self.model.inputs[0].dtype
            return dtype if isinstance(dtype, str) else dtype.name
        return next(iter(self._signature().structured_input_signature[1].values())).dtype.name

    @property
    def input_count(self) -> int:
        if self.is_keras:
            return len(self.model.inputs)
        return len(self._signature().structured_input_signature[1])

    def _signature(self):
        signatures = self.model.signatures
        if "serving_default" not in signatures:
            raise ModelError(f"{self.info.path} has no serving_default signature",
                             hint="export the SavedModel with a serving signature")
        return signatures["serving_default"]

    @property
    def output_names(self) -> list[str]:
        """The model's output names: Keras output names in order, or a SavedModel signature's keys."""
        if self.is_keras:
            names = getattr(self.model, "output_names", None)
            return list(names) if names else [f"output_{i}" for i in range(len(self.model.outputs))]
        return sorted(self._signature().structured_outputs)

    def choose_output(self, name: str | None) -> OutputChoice:
        """The output named ``name`` (None: the only one), with its position; ConfigError listing the names."""
        from edgepack.loading.outputs import OutputChoice

        names = self.output_names
        if name is None and len(names) == 1:
            return OutputChoice(name=names[0], index=0)
        if name in names:
            return OutputChoice(name=name, index=names.index(name))
        what = f"has no output {name!r}" if name is not None else f"has {len(names)} outputs"
        raise ConfigError(f"{self.info.path} {what} ({', '.join(names)}); choose the one the metric is computed on",
                          hint="give --output NAME (recipe: data.output)")

    def _flatten(self, structure) -> list:
        """Outputs in ``model.outputs`` order: Keras flattens a dict of outputs by sorted key."""
        if self.info.flavor is KerasFlavor.KERAS3:
            import keras

            return keras.tree.flatten(structure)
        return import_tf().nest.flatten(structure)

    def predict(self, x: np.ndarray, batch_size: int = 256, output: str | None = None) -> np.ndarray:
        """Run the model on ``x`` in batches and return the output named ``output`` (None: the only one)."""
        choice = self.choose_output(output)
        if self.is_keras:
            out = self.model.predict(x, batch_size=batch_size, verbose=0)
            if isinstance(out, dict):  # keyed as the model was built; output_names are the layers' names
                return np.asarray(out[choice.name] if choice.name in out else self._flatten(out)[choice.index])
            return np.asarray(out[choice.index] if isinstance(out, (list, tuple)) else out)
        tf = import_tf()
        fn = self._signature()
        name = next(iter(fn.structured_input_signature[1]))
        parts = []
        for start in range(0, len(x), batch_size):
            result = fn(**{name: tf.constant(x[start:start + batch_size])})
            parts.append(result[choice.name].numpy())
        return np.concatenate(parts)


def _refuse_unsafe(info: ModelInfo) -> None:
    if info.format is ModelFormat.SAVEDMODEL:
        raise ModelError(f"{info.path} is a SavedModel, which is a TensorFlow program that can read "
                         f"and write files when loaded", hint=TRUST_HINT)
    if info.unsafe:
        first = info.unsafe[0]
        more = f" (and {len(info.unsafe) - 1} more)" if len(info.unsafe) > 1 else ""
        raise ModelError(f"{info.path}: {first.describe()}{more}; edgepack did not load it",
                         hint=TRUST_HINT)


def load_model(path: str | Path, *, trust_model: bool = False) -> LoadedModel:
    """Load a Keras model file or SavedModel folder; refuse unsafe content unless trusted."""
    info = identify_model(path)
    if not trust_model:
        _refuse_unsafe(info)
    import_tf()
    try:
        with captured_native_output():
            model = _load(info, safe_mode=not trust_model)
    except ModelError:
        raise
    except Exception as exc:  # Keras raises many types for a bad file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load {info.path}: {reason[:300]}",
                         hint="check that the file is a complete Keras model saved by Keras 3 or tf_keras") from exc
    return LoadedModel(info, model)


def _load(info: ModelInfo, *, safe_mode: bool):
    if info.flavor is KerasFlavor.KERAS3:
        import keras

        return keras.models.load_model(info.path, compile=False, safe_mode=safe_mode)
    if info.flavor is KerasFlavor.TF_KERAS:
        import tf_keras

        if info.format is ModelFormat.SAVEDMODEL:
            return tf_keras.models.load_model(str(info.path), compile=False)
        return tf_keras.models.load_model(info.path, compile=False, safe_mode=safe_mode)
    return import_tf().saved_model.load(str(info.path))
