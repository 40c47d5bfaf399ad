"""Load data sets (.npz, a folder of class folders, or module:function) and check their shapes."""

from __future__ import annotations

import importlib
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from edgepack.errors import ConfigError, DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
CALLABLE_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class DataSpec(BaseModel):
    """Where a data set comes from, as the user gave it."""

    model_config = ConfigDict(extra="forbid")

    source: str
    x_key: str = "x"
    y_key: str = "y"
    trust_code: bool = False


@dataclass
class Dataset:
    """Inputs ``x`` and optional targets ``y`` (same length), and where they came from."""

    x: np.ndarray
    y: np.ndarray | None
    source: str

    def __len__(self) -> int:
        return len(self.x)

    def sample(self, count: int, seed: int = 0) -> "Dataset":
        """A deterministic random subset of at most ``count`` rows."""
        if count >= len(self):
            return self
        index = np.sort(np.random.default_rng(seed).choice(len(self), size=count, replace=False))
        return Dataset(self.x[index], None if self.y is None else self.y[index], self.source)


def load_data(spec: DataSpec, *, input_shape: tuple | None = None) -> Dataset:
    """Load ``spec``; ``input_shape`` (batch first, None for free dims) sizes images from folders."""
    source = spec.source
    path = Path(source)
    if CALLABLE_SPEC.match(source) and not path.exists():
        dataset = _load_callable(spec, input_shape)
    elif not path.exists():
        raise DataError(f"data not found: {source}",
                        hint="give an .npz file, a folder of class folders, or package.module:function")
    elif path.is_dir():
        dataset = _load_image_folder(path, input_shape)
    elif path.suffix.lower() == ".npz":
        dataset = _load_npz(path, spec.x_key, spec.y_key)
    else:
        raise DataError(f"{source}: unknown data format '{path.suffix or 'no extension'}'",
                        hint="give an .npz file (arrays x and y), a folder of class folders, or module:function")
    return _checked(dataset)


def _load_npz(path: Path, x_key: str, y_key: str) -> Dataset:
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is not a readable .npz file ({exc})",
                        hint="save the arrays with numpy.savez(path, x=..., y=...)") from exc
    with archive:
        keys = list(archive.files)
        if x_key not in keys:
            raise DataError(f"{path} has no array '{x_key}' (it has: {', '.join(keys) or 'none'})",
                            hint="name the input array with --x-key")
        try:
            x = archive[x_key]
            y = archive[y_key] if y_key in keys else None
        except ValueError as exc:
            raise DataError(f"{path} holds pickled Python objects, which edgepack never loads "
                            f"(unpickling can run code)",
                            hint="save plain numeric arrays with numpy.savez") from exc
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise DataError(f"{path} is truncated or corrupt ({exc})", hint="write the file again") from exc
    return Dataset(x, y, str(path))


def _load_image_folder(path: Path, input_shape: tuple | None) -> Dataset:
    from PIL import Image, UnidentifiedImageError

    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{path} has no class subfolders",
                        hint="put the images of each class in a subfolder named after the class")
    size, channels = _image_geometry(input_shape, path)
    images, labels = [], []
    for label, name in enumerate(classes):
        for file in sorted((path / name).iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(file) as image:
                    image = image.convert("L" if channels == 1 else "RGB")
                    if size is not None and image.size != size:
                        image = image.resize(size, Image.BILINEAR)
                    array = np.asarray(image, dtype=np.float32)
            except (UnidentifiedImageError, OSError) as exc:
                raise DataError(f"cannot read image {file} ({exc})", hint="remove or replace the file") from exc
            images.append(array[..., None] if channels == 1 else array)
            labels.append(label)
    if not images:
        raise DataError(f"{path} has class folders but no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        raise DataError(f"images in {path} have different sizes {sorted(shapes)[:3]}",
                        hint="resize them, or use a model with a fixed input size so edgepack can")
    return Dataset(np.stack(images), np.asarray(labels, dtype=np.int64), str(path))


def _image_geometry(input_shape: tuple | None, path: Path) -> tuple[tuple | None, int]:
    if input_shape is None:
        return None, 3
    if len(input_shape) != 4:
        raise DataError(f"{path} is a folder of images but the model input {tuple(input_shape)} is "
                        f"not an image batch (batch, height, width, channels)")
    _, height, width, channels = input_shape
    size = (int(width), int(height)) if height and width else None
    return size, int(channels or 3)


def _load_callable(spec: DataSpec, input_shape: tuple | None) -> Dataset:
    if not spec.trust_code:
        raise ConfigError(f"data '{spec.source}' names Python code to import",
                          hint="pass --trust-code to allow edgepack to import and run it")
    module_name, func_name = spec.source.split(":")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        result = func()
    except (ImportError, AttributeError) as exc:
        raise DataError(f"cannot import {spec.source}: {exc}",
                        hint="check the module is importable from the current folder") from exc
    except Exception as exc:
        raise DataError(f"{spec.source} raised {type(exc).__name__}: {exc}") from exc
    if isinstance(result, tuple) and len(result) == 2:
        x, y = result
        return Dataset(np.asarray(x), None if y is None else np.asarray(y), spec.source)
    if hasattr(result, "as_numpy_iterator"):
        return _from_tf_dataset(result, spec.source, input_shape)
    raise DataError(f"{spec.source} returned {type(result).__name__}",
                    hint="return a tuple (x, y) of arrays or a tf.data.Dataset of (x, y) pairs")


def _from_tf_dataset(dataset, source: str, input_shape: tuple | None) -> Dataset:
    xs, ys = [], []
    for element in dataset.as_numpy_iterator():
        if not (isinstance(element, tuple) and len(element) == 2):
            raise DataError(f"{source} yields {type(element).__name__}, not (x, y) pairs")
        xs.append(np.asarray(element[0]))
        ys.append(np.asarray(element[1]))
    if not xs:
        raise DataError(f"{source} yielded no elements")
    batched = input_shape is not None and xs[0].ndim == len(input_shape)
    join = np.concatenate if batched else np.stack
    return Dataset(join(xs), join(ys), source)


def _checked(dataset: Dataset) -> Dataset:
    x, y = dataset.x, dataset.y
    if x.dtype.kind not in "biuf" or x.ndim == 0:
        raise DataError(f"{dataset.source}: inputs have dtype {x.dtype} and shape {x.shape}",
                        hint="inputs must be a numeric array with the samples on the first axis")
    if len(x) == 0:
        raise DataError(f"{dataset.source} is empty (0 samples)")
    if y is not None:
        if y.dtype.kind not in "biuf":
            raise DataError(f"{dataset.source}: targets have dtype {y.dtype}",
                            hint="targets must be numeric (class indices, one-hot rows or values)")
        if len(y) != len(x):
            raise DataError(f"{dataset.source}: {len(x)} inputs but {len(y)} targets",
                            hint="x and y need the same number of rows")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise DataError(f"{dataset.source}: inputs contain NaN or infinite values")
    return dataset


def fit_to_input(dataset: Dataset, input_shape: tuple, input_dtype: str, *, model_name: str) -> Dataset:
    """Check ``dataset`` against a model input (batch first; None or -1 = any) and cast its dtype."""
    expected = tuple(None if (d is None or d == -1) else int(d) for d in input_shape[1:])
    actual = tuple(dataset.x.shape[1:])
    fits = len(expected) == len(actual) and all(e is None or e == a for e, a in zip(expected, actual))
    if not fits:
        shown = "(" + ", ".join("N" if d is None else str(d) for d in (None, *expected)) + ")"
        hint = "reshape the data to the model's input shape"
        if len(actual) + 1 == len(expected) and expected[-1] == 1:
            hint = "add a channel axis (x[..., None])"
        raise DataError(f"{dataset.source}: inputs have shape {tuple(dataset.x.shape)} but {model_name} "
                        f"expects {shown}", hint=hint)
    dtype = np.dtype(input_dtype)
    x = dataset.x if dataset.x.dtype == dtype else dataset.x.astype(dtype)
    return Dataset(x, dataset.y, dataset.source)
