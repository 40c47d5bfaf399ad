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
from pathlib import Path

import numpy as np

from edgepack.errors import ConfigError, DataError
from edgepack.loading.dataset import Dataset, InputSpec, check_targets, fits, shape_error
from edgepack.loading.archive import READ_ERRORS, ArchiveError, open_checked
from edgepack.loading.images import IMAGE_SUFFIXES, MAX_IMAGE_PIXELS, ImageRows, list_images
from edgepack.loading.npy import DEFLATE_MAX_RATIO, memory_bytes, read_member, read_npy_file
from edgepack.loading.rows import ArrayRows
from edgepack.loading.spec import DataSpec
from edgepack.loading.stream import StreamDataset, load_callable

__all__ = ["DataSpec", "Dataset", "InputSpec", "load_data", "fit_to_input", "fit_to_inputs",
           "IMAGE_SUFFIXES", "MAX_IMAGE_PIXELS", "DEFLATE_MAX_RATIO"]

CALLABLE_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
NPZ_HINT = "save the arrays with numpy.savez(path, x=..., y=...)"
FORMATS_HINT = "give an .npz file (arrays x and y), an .npy file, a folder of class folders, or module:function"


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
    check_targets(dataset.y, len(dataset), dataset.source, y_name)
    for column in dataset._columns:
        if isinstance(column, ArrayRows) and column.checked and column.dtype.kind == "f" \
                and not np.isfinite(column.array).all():
            raise DataError(f"{dataset.source}: {column.name} contain NaN or infinite values",
                            hint="drop or fix those samples")
    return dataset


def fit_to_input(dataset: Dataset, input_shape: tuple, input_dtype: str, *, model_name: str) -> Dataset:
    """Check ``dataset`` against a model input (batch first; None or -1 = any) and cast its dtype."""
    return fit_to_inputs(dataset, [InputSpec("x", tuple(input_shape), input_dtype)], model_name=model_name)


def fit_to_inputs(dataset: Dataset, inputs: list[InputSpec], *, model_name: str) -> Dataset:
    """Check each input's rows against the model input of the same name (shape, batch first) and
    cast them to its dtype as they are read. One input: the data's only array, whatever its name."""
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
        if not fits(spec.shape, row_shape):
            raise shape_error(dataset.source, (len(dataset), *row_shape), spec.shape, model_name,
                              "inputs" if name is None else f"input '{name}'")
    return dataset.fitted([np.dtype(spec.dtype) for spec in specs])
