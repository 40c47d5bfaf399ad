"""Load data sets (.npz, .npy, a folder of class folders, or module:function) and check their shapes.

A data set is read on demand: ``Dataset.batches(size)`` streams it a batch at a time and
``Dataset.sample(n)`` reads only the rows drawn, so evaluating or calibrating on a folder of
images or a memory-mapped array holds one batch in memory, not the data set. ``Dataset.x`` still
gives every row at once, for callers that need them all (training).

A model with several inputs reads one array per input, matched by the input's name (an .npz with
arrays ``left`` and ``right`` for inputs ``left`` and ``right``), never by position; ``Dataset.x``
is then a dict of arrays by input name.
"""

from __future__ import annotations

import importlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from pydantic import BaseModel, ConfigDict

from edgepack.errors import ConfigError, DataError
from edgepack.loading.archive import READ_ERRORS, ArchiveError, open_checked
from edgepack.loading.images import IMAGE_SUFFIXES, MAX_IMAGE_PIXELS, ImageRows, list_images
from edgepack.loading.npy import DEFLATE_MAX_RATIO, memory_bytes, read_member, read_npy_file
from edgepack.loading.preprocess import Preprocess
from edgepack.loading.rows import ArrayRows, Rows

__all__ = ["DataSpec", "Dataset", "InputSpec", "load_data", "fit_to_input", "fit_to_inputs",
           "IMAGE_SUFFIXES", "MAX_IMAGE_PIXELS", "DEFLATE_MAX_RATIO"]

CALLABLE_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
NPZ_HINT = "save the arrays with numpy.savez(path, x=..., y=...)"
FORMATS_HINT = "give an .npz file (arrays x and y), an .npy file, a folder of class folders, or module:function"


class DataSpec(BaseModel):
    """Where a data set comes from, as the user gave it."""

    model_config = ConfigDict(extra="forbid")

    source: str
    x_key: str = "x"
    y_key: str = "y"
    trust_code: bool = False
    output: str | None = None  # the model output the targets are for: an .npz's y_<output> is read first
    preprocess: Preprocess | None = None  # applied to the inputs as they are read (image folders: 0-255 RGB)


@dataclass(frozen=True)
class InputSpec:
    """One model input: its name (the .tflite signature's, or the Keras Input's), shape (batch first,
    None where any size goes) and dtype."""

    name: str
    shape: tuple
    dtype: str = "float32"


class Dataset:
    """Inputs (one array, or a dict of arrays by input name) and optional targets ``y``, read on
    demand; ``source`` names where they came from in messages."""

    def __init__(self, x, y: np.ndarray | None = None, source: str = "data", skipped_files: int = 0,
                 y_key: str | None = None, *, preprocess: Preprocess | None = None):
        self.names = list(x) if isinstance(x, dict) else None
        columns = [x[name] for name in self.names] if self.names else [x]
        labels = [f"input '{name}'" for name in self.names] if self.names else ["inputs"]
        self._columns: list[Rows] = [c if isinstance(c, Rows) else ArrayRows(np.asarray(c), source, name=label)
                                     for c, label in zip(columns, labels)]
        self._y = y
        self.source, self.skipped_files, self.y_key, self.preprocess = source, skipped_files, y_key, preprocess
        self._dtypes: list[np.dtype | None] = [None] * len(columns)
        self._all = None

    @property
    def y(self) -> np.ndarray | None:
        return self._y

    @property
    def has_targets(self) -> bool:
        return self._y is not None

    def __len__(self) -> int:
        return len(self._columns[0])

    @property
    def row_shapes(self) -> list[tuple]:
        """The shape of one row of each input (without the batch axis)."""
        return [column.row_shape for column in self._columns]

    @property
    def x(self):
        """Every row: an array, or a dict of arrays by input name (read once, then kept)."""
        if self._all is None:
            self._all = self._read(None)
        return self._all

    def _read(self, index: np.ndarray | slice | None):
        arrays = [self._finish(i, column.everything() if index is None else column.take(index))
                  for i, column in enumerate(self._columns)]
        return dict(zip(self.names, arrays)) if self.names else arrays[0]

    def _finish(self, i: int, rows: np.ndarray) -> np.ndarray:
        if self.preprocess is not None:
            rows = self.preprocess.apply(rows, self.source)
        dtype = self._dtypes[i]
        return rows if dtype is None or rows.dtype == dtype else rows.astype(dtype)

    def sample(self, count: int, seed: int = 0) -> "Dataset":
        """A deterministic random subset of at most ``count`` rows, read now (only those rows)."""
        if count >= len(self):
            return self
        index = np.sort(np.random.default_rng(seed).choice(len(self), size=count, replace=False))
        return Dataset(self._read(index), None if self._y is None else self._y[index], self.source,
                       self.skipped_files, self.y_key)

    def batches(self, size: int) -> Iterator[tuple]:
        """``(x, y)`` for consecutive batches of at most ``size`` rows, each read when reached."""
        for start in range(0, len(self), max(int(size), 1)):
            part = slice(start, min(start + size, len(self)))
            yield self._read(part), None if self._y is None else self._y[part]

    def fitted(self, dtypes: list[np.dtype]) -> "Dataset":
        """The same rows, cast to ``dtypes`` (one per input) as they are read."""
        copy = Dataset.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy._dtypes, copy._all = list(dtypes), None
        return copy


def load_data(spec: DataSpec, *, input_shape: tuple | None = None, inputs: list[InputSpec] | None = None) -> Dataset:
    """Load ``spec``; ``input_shape`` (batch first, None for free dims) sizes images from folders.
    With ``inputs`` naming several model inputs, one array per input is read by name."""
    if inputs is not None and len(inputs) == 1:
        input_shape, inputs = tuple(inputs[0].shape), None
    names = [spec_.name for spec_ in inputs] if inputs else None
    if names and spec.preprocess is not None:
        raise ConfigError(f"--preprocess applies to single-input data; the model has inputs {', '.join(names)}",
                          hint="preprocess the arrays before saving them")
    source = spec.source
    path = Path(source)
    if CALLABLE_SPEC.match(source) and not path.exists():
        from edgepack.loading.stream import load_callable

        shapes = [tuple(i.shape) for i in inputs] if inputs else [input_shape]
        dataset = load_callable(spec, shapes, names, _load_code(spec))
    elif not path.exists():
        raise DataError(f"data not found: {source}",
                        hint="give an .npz or .npy file, a folder of class folders, or package.module:function")
    elif path.is_dir():
        dataset = _load_image_folder(path, input_shape, names)
    elif path.suffix.lower() == ".npz":
        dataset = _load_npz(path, spec, names)
    elif path.suffix.lower() == ".npy":
        dataset = _load_npy(path, names)
    else:
        raise DataError(f"{source}: unknown data format '{path.suffix or 'no extension'}'", hint=FORMATS_HINT)
    dataset.preprocess = spec.preprocess
    return _checked(dataset)


def _load_npz(path: Path, spec: DataSpec, names: list[str] | None) -> Dataset:
    """Arrays ``x_key`` (or one per input name) and the targets (``y_<output>`` when the output is
    named and present, else ``y_key``; optional) of an .npz, read with zipfile and numpy's .npy
    reader after the checks in edgepack.loading.archive: malformed, truncated, pickled or zip-bomb
    files are a DataError (exit 3) before anything large is allocated. Large stored members are
    memory-mapped (edgepack.loading.npy)."""
    if not path.is_file():
        raise DataError(f"{path} is not a regular file", hint=NPZ_HINT)
    limit = memory_bytes()
    try:
        archive = open_checked(path, read_limits={}, max_member_bytes=max(limit, path.stat().st_size),
                               max_ratio=DEFLATE_MAX_RATIO)
    except ArchiveError as exc:
        raise DataError(f"{path} is not a readable .npz file: {exc}", hint=NPZ_HINT) from None
    except READ_ERRORS as exc:
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise DataError(f"{path} is not a readable .npz file ({detail})", hint=NPZ_HINT) from None
    with archive:
        keys = {name.removesuffix(".npy"): name for name in archive.namelist()}
        members = {**{name: name for name in keys.values()}, **keys}  # "x" or "x.npy", as numpy accepts
        wanted = names or [spec.x_key]
        _require_arrays(path, wanted, members, keys, names is not None)
        y_key = f"y_{spec.output}" if spec.output is not None and f"y_{spec.output}" in members else spec.y_key
        try:
            columns = {}
            for key in wanted:
                array, mapped = read_member(archive, members[key], path, limit)
                columns[key] = ArrayRows(array, str(path), name=f"input '{key}'" if names else f"inputs '{key}'",
                                         checked=not mapped)
            y = read_member(archive, members[y_key], path, limit)[0] if y_key in members else None
        except ArchiveError as exc:
            raise DataError(f"{path} is not a readable .npz file: {exc}", hint=NPZ_HINT) from None
        except READ_ERRORS as exc:
            detail = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise DataError(f"{path} is truncated or corrupt ({detail})", hint="write the file again") from None
    x = columns if names else columns[spec.x_key]
    return Dataset(x, None if y is None else np.asarray(y), str(path), y_key=y_key if y is not None else None)


def _require_arrays(path: Path, wanted: list[str], members: dict, keys: dict, by_input: bool) -> None:
    missing = [key for key in wanted if key not in members]
    if not missing:
        return
    present = ", ".join(keys) or "none"
    if by_input:
        raise DataError(f"{path} has no array for input {', '.join(repr(m) for m in missing)} (arrays present: "
                        f"{present}; inputs wanted: {', '.join(wanted)})",
                        hint=f"save one array per input name: numpy.savez(path, "
                             f"{', '.join(f'{w}=...' for w in wanted)}, y=...)")
    raise DataError(f"{path} has no array '{wanted[0]}' (it has: {present})", hint="name the input array with --x-key")


def _load_npy(path: Path, names: list[str] | None) -> Dataset:
    if names:
        raise DataError(f"{path} is one array but the model has inputs {', '.join(names)}",
                        hint=f"save one array per input name in an .npz: numpy.savez(path, "
                             f"{', '.join(f'{n}=...' for n in names)}, y=...)")
    array, mapped = read_npy_file(path)
    return Dataset(ArrayRows(array, str(path), checked=not mapped), None, str(path))


def _load_image_folder(path: Path, input_shape: tuple | None, names: list[str] | None) -> Dataset:
    """Images from ``path/<class>/``, classes in sorted order, resized to the model's input when the
    model has a fixed size; decoded when read (edgepack.loading.images).

    Files whose suffix is not an image's (``IMAGE_SUFFIXES``, e.g. ``notes.txt``, ``.DS_Store``) are
    skipped and counted in ``Dataset.skipped_files``; a file with an image suffix that cannot be
    read, or that declares more than ``MAX_IMAGE_PIXELS``, is a DataError (exit 3).
    """
    if names:
        raise DataError(f"{path} is a folder of images, which feeds one input; the model has inputs "
                        f"{', '.join(names)}", hint="give an .npz with one array per input name")
    size, channels = _image_geometry(input_shape, path)
    files, labels, skipped = list_images(path)
    return Dataset(ImageRows(files, str(path), size, channels), labels, str(path), skipped)


def _image_geometry(input_shape: tuple | None, path: Path) -> tuple[tuple | None, int]:
    if input_shape is None:
        return None, 3
    if len(input_shape) != 4:
        raise DataError(f"{path} is a folder of images but the model input {tuple(input_shape)} is "
                        f"not an image batch (batch, height, width, channels)")
    _, height, width, channels = (None if d in (None, -1) else d for d in input_shape)
    size = (int(width), int(height)) if height and width else None
    return size, int(channels or 3)


def _load_code(spec: DataSpec):
    """Import and call ``module:function`` (only with trust_code); its result, unchecked."""
    if not spec.trust_code:
        raise ConfigError(f"data '{spec.source}' names Python code to import",
                          hint="pass --trust-code to allow edgepack to import and run it")
    module_name, func_name = spec.source.split(":")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        return func()
    except (ImportError, AttributeError) as exc:
        raise DataError(f"cannot import {spec.source}: {exc}",
                        hint="check the module is importable from the current folder") from exc
    except Exception as exc:
        raise DataError(f"{spec.source} raised {type(exc).__name__}: {exc}") from exc


def _checked(dataset: Dataset) -> Dataset:
    """Refuse data edgepack cannot use: non-numeric, empty, mismatched lengths, NaN or infinities.
    Rows read on demand (memory-mapped arrays, images) are checked for NaN as they are read."""
    from edgepack.loading.stream import StreamDataset

    if isinstance(dataset, StreamDataset):
        return dataset
    for name, column in zip(dataset.names or [None], dataset._columns):
        label = column.name if isinstance(column, ArrayRows) else "inputs"
        if column.dtype.kind not in "biuf" or (isinstance(column, ArrayRows) and column.array.ndim == 0):
            shape = column.array.shape if isinstance(column, ArrayRows) else (len(column), *column.row_shape)
            raise DataError(f"{dataset.source}: {label} have dtype {column.dtype} and shape {shape}",
                            hint="inputs must be a numeric array with the samples on the first axis")
        if len(column) != len(dataset):
            raise DataError(f"{dataset.source}: input '{name}' has {len(column)} rows but the others have "
                            f"{len(dataset)}", hint="give every input the same number of rows")
    if len(dataset) == 0:
        raise DataError(f"{dataset.source} is empty (0 samples)")
    y_name = f"targets '{dataset.y_key}'" if dataset.y_key else "targets"
    _check_targets(dataset.y, len(dataset), dataset.source, y_name)
    for column in dataset._columns:
        if isinstance(column, ArrayRows) and column.checked and column.dtype.kind == "f" \
                and not np.isfinite(column.array).all():
            raise DataError(f"{dataset.source}: {column.name} contain NaN or infinite values",
                            hint="drop or fix those samples")
    return dataset


def _check_targets(y: np.ndarray | None, rows: int, source: str, y_name: str) -> None:
    if y is None:
        return
    if y.dtype.kind not in "biuf" or y.ndim == 0:
        raise DataError(f"{source}: {y_name} have dtype {y.dtype} and shape {y.shape}",
                        hint="targets must be numeric (class indices, one-hot rows or values), one per sample")
    if len(y) != rows:
        raise DataError(f"{source}: {rows} inputs but {len(y)} targets", hint="x and y need the same number of rows")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise DataError(f"{source}: {y_name} contain NaN or infinite values", hint="drop or fix those samples")


def _fits(expected_shape: tuple, actual: tuple) -> bool:
    expected = tuple(None if (d is None or d == -1) else int(d) for d in expected_shape[1:])
    return len(expected) == len(actual) and all(e is None or e == a for e, a in zip(expected, actual))


def shape_error(source: str, actual: tuple, input_shape: tuple, model_name: str, what: str = "inputs") -> DataError:
    """The message for rows of shape ``actual`` (batch first) that do not fit ``input_shape``."""
    expected = tuple(None if (d is None or d == -1) else int(d) for d in input_shape[1:])
    shown = "(" + ", ".join("N" if d is None else str(d) for d in (None, *expected)) + ")"
    hint = "reshape the data to the model's input shape"
    if len(actual) == len(expected) and expected and expected[-1] == 1:
        hint = "add a channel axis (x[..., None])"
    return DataError(f"{source}: {what} have shape {tuple(actual)} but {model_name} expects {shown}", hint=hint)


def fit_to_input(dataset: Dataset, input_shape: tuple, input_dtype: str, *, model_name: str) -> Dataset:
    """Check ``dataset`` against a model input (batch first; None or -1 = any) and cast its dtype."""
    return fit_to_inputs(dataset, [InputSpec("x", tuple(input_shape), input_dtype)], model_name=model_name)


def fit_to_inputs(dataset: Dataset, inputs: list[InputSpec], *, model_name: str) -> Dataset:
    """Check each input's rows against the model input of the same name (shape, batch first) and
    cast them to its dtype as they are read. One input: the data's only array, whatever its name."""
    from edgepack.loading.stream import StreamDataset

    if len(inputs) > 1 and dataset.names is None:
        raise DataError(f"{dataset.source} gives one input array but {model_name} has inputs "
                        f"{', '.join(spec.name for spec in inputs)}", hint="give an .npz with one array per input name")
    columns = dataset.names or [None]
    by_name = {spec.name: spec for spec in inputs}
    if dataset.names is not None and (len(inputs) == 1 or set(columns) != set(by_name)):
        raise DataError(f"{dataset.source} has inputs {', '.join(columns)} but {model_name} has inputs "
                        f"{', '.join(by_name)}", hint="name the arrays after the model's inputs")
    specs = [by_name[name] if name is not None else inputs[0] for name in columns]
    if isinstance(dataset, StreamDataset):
        return dataset.fitted_to(specs, model_name)
    for name, spec, row_shape in zip(columns, specs, dataset.row_shapes):
        if not _fits(spec.shape, row_shape):
            raise shape_error(dataset.source, (len(dataset), *row_shape), spec.shape, model_name,
                              "inputs" if name is None else f"input '{name}'")
    return dataset.fitted([np.dtype(spec.dtype) for spec in specs])
