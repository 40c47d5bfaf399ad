"""Identify and load Keras models (Keras 3 or tf_keras; .keras, .h5, SavedModel) safely."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from edgepack.errors import ModelError
from edgepack.loading.safety import find_unsafe_objects
from edgepack.util.files import sha256_file
from edgepack.util.tf import captured_native_output, import_tf


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


def _read_keras_zip(path: Path) -> tuple[dict, dict]:
    try:
        with zipfile.ZipFile(path) as archive:
            metadata = json.loads(archive.read("metadata.json"))
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ModelError(f"{path} is not a readable .keras archive ({exc})",
                         hint="save the model again with model.save('model.keras')") from exc
    return metadata, config


def _read_h5(path: Path) -> tuple[str | None, dict | None, dict | None]:
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            attrs = dict(handle.attrs)
    except OSError as exc:
        raise ModelError(f"{path} is not a readable HDF5 model file",
                         hint="save the model again with model.save('model.keras')") from exc

    def text(value):
        return value.decode() if isinstance(value, bytes) else value

    if "model_config" not in attrs:
        raise ModelError(f"{path} holds weights only, not a whole model",
                         hint="save the whole model with model.save(...), not save_weights")
    version = text(attrs.get("keras_version"))
    config = json.loads(text(attrs["model_config"]))
    training = json.loads(text(attrs["training_config"])) if "training_config" in attrs else None
    return version, config, training


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

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Run the model on ``x`` in batches and return its (first) output as numpy."""
        if self.is_keras:
            out = self.model.predict(x, batch_size=batch_size, verbose=0)
            return np.asarray(out[0] if isinstance(out, (list, tuple)) else out)
        tf = import_tf()
        fn = self._signature()
        name = next(iter(fn.structured_input_signature[1]))
        parts = []
        for start in range(0, len(x), batch_size):
            result = fn(**{name: tf.constant(x[start:start + batch_size])})
            parts.append(next(iter(result.values())).numpy())
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
