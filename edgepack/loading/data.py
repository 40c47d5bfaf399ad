"""Load data sets (.npz, a folder of class folders, or module:function) and check their shapes."""

from __future__ import annotations

import importlib
import math
import os
import re
import struct
import sys
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format
from pydantic import BaseModel, ConfigDict

from edgepack.errors import ConfigError, DataError
from edgepack.loading.archive import READ_ERRORS, ArchiveError, check_readable, open_checked

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
CALLABLE_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
MAX_IMAGE_PIXELS = 50_000_000
"""Largest image decoded from an image folder (50 megapixels, 150 MB as RGB): a small PNG or GIF can
declare a huge canvas ("decompression bomb"); larger images are refused before decoding."""
DEFLATE_MAX_RATIO = 1032
"""The most a deflate stream can expand (258 bytes from 2 bits). numpy writes .npz members stored or
deflated, so a member declaring more than this, or another compression method, is refused: a
legitimate savez_compressed file of zeros reaches about 1,000:1, never more."""
NPZ_HINT = "save the arrays with numpy.savez(path, x=..., y=...)"
_NPY_ERRORS = (ValueError, TypeError, SyntaxError, RecursionError, OverflowError, struct.error)


class DataSpec(BaseModel):
    """Where a data set comes from, as the user gave it."""

    model_config = ConfigDict(extra="forbid")

    source: str
    x_key: str = "x"
    y_key: str = "y"
    trust_code: bool = False
    output: str | None = None  # the model output the targets are for: an .npz's y_<output> is read first


@dataclass
class Dataset:
    """Inputs ``x`` and optional targets ``y`` (same length), and where they came from."""

    x: np.ndarray
    y: np.ndarray | None
    source: str
    skipped_files: int = 0  # files in an image folder left out because their suffix is not an image's
    y_key: str | None = None  # the .npz array the targets came from

    def __len__(self) -> int:
        return len(self.x)

    def sample(self, count: int, seed: int = 0) -> "Dataset":
        """A deterministic random subset of at most ``count`` rows."""
        if count >= len(self):
            return self
        index = np.sort(np.random.default_rng(seed).choice(len(self), size=count, replace=False))
        return Dataset(self.x[index], None if self.y is None else self.y[index], self.source, self.skipped_files,
                       self.y_key)


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
        dataset = _load_npz(path, spec.x_key, spec.y_key, spec.output)
        return _checked(dataset, f"inputs '{spec.x_key}'", f"targets '{dataset.y_key or spec.y_key}'")
    else:
        raise DataError(f"{source}: unknown data format '{path.suffix or 'no extension'}'",
                        hint="give an .npz file (arrays x and y), a folder of class folders, or module:function")
    return _checked(dataset)


def _memory_bytes() -> int:
    """Memory this machine can give an array now (Linux's MemAvailable, else physical memory): a
    member declaring more could not be loaded anyway, so it is refused before anything is read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 16 << 30


def _npy_header(handle, member: str) -> tuple[tuple, np.dtype]:
    """Shape and dtype from the header of a .npy member, read without reading any data."""
    try:
        version = npy_format.read_magic(handle)
        readers = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}
        if version not in readers:
            raise ArchiveError(f"{member} is a .npy file of version {version}, which edgepack does not read")
        shape, _, dtype = readers[version](handle)
    except _NPY_ERRORS as exc:
        raise ArchiveError(f"{member} is not a valid .npy array ({' '.join(str(exc).split())[:200]})") from None
    if any(dim < 0 for dim in shape):
        raise ArchiveError(f"{member} declares a negative dimension in shape {shape}")
    return shape, dtype


def _read_npy(archive: zipfile.ZipFile, member: str, path: Path, limit: int) -> np.ndarray:
    """One array of an .npz: its member and header checked first, so its size is bounded by the
    member's declared size, which is bounded by ``limit`` and by deflate's ratio."""
    info = archive.getinfo(member)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ArchiveError(f"{member} uses zip compression method {info.compress_type}; numpy writes stored "
                           f"or deflated members only")
    check_readable(archive, member, limit, DEFLATE_MAX_RATIO)
    with archive.open(member) as handle:
        shape, dtype = _npy_header(handle, member)
    if dtype.hasobject:
        raise DataError(f"{path} holds pickled Python objects, which edgepack never loads (unpickling can run code)",
                        hint="save plain numeric arrays with numpy.savez")
    size = math.prod(shape) * dtype.itemsize
    if dtype.itemsize == 0 or size > info.file_size:
        raise ArchiveError(f"{member} declares shape {shape} of {dtype} ({size:,} bytes) but the member "
                           f"holds {info.file_size:,} bytes")
    try:
        with archive.open(member) as handle:
            return npy_format.read_array(handle, allow_pickle=False)
    except MemoryError:
        raise DataError(f"{path}: array {member} ({size:,} bytes) does not fit in memory") from None


def _load_npz(path: Path, x_key: str, y_key: str, output: str | None = None) -> Dataset:
    """Arrays ``x_key`` and the targets (``y_<output>`` when ``output`` is named and present, else
    ``y_key``; optional) of an .npz, read with zipfile and numpy's .npy reader after the checks in
    edgepack.loading.archive: malformed, truncated, pickled or zip-bomb files are a DataError (exit 3)
    before anything large is allocated."""
    if not path.is_file():
        raise DataError(f"{path} is not a regular file", hint=NPZ_HINT)
    limit = _memory_bytes()
    try:
        archive = open_checked(path, read_limits={}, max_member_bytes=limit, max_ratio=DEFLATE_MAX_RATIO)
    except ArchiveError as exc:
        raise DataError(f"{path} is not a readable .npz file: {exc}", hint=NPZ_HINT) from None
    except READ_ERRORS as exc:
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise DataError(f"{path} is not a readable .npz file ({detail})", hint=NPZ_HINT) from None
    with archive:
        keys = {name.removesuffix(".npy"): name for name in archive.namelist()}
        members = {**{name: name for name in keys.values()}, **keys}  # "x" or "x.npy", as numpy accepts
        if x_key not in members:
            raise DataError(f"{path} has no array '{x_key}' (it has: {', '.join(keys) or 'none'})",
                            hint="name the input array with --x-key")
        if output is not None and f"y_{output}" in members:
            y_key = f"y_{output}"
        try:
            x = _read_npy(archive, members[x_key], path, limit)
            y = _read_npy(archive, members[y_key], path, limit) if y_key in members else None
        except ArchiveError as exc:
            raise DataError(f"{path} is not a readable .npz file: {exc}", hint=NPZ_HINT) from None
        except READ_ERRORS as exc:
            detail = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise DataError(f"{path} is truncated or corrupt ({detail})", hint="write the file again") from None
    return Dataset(x, y, str(path), y_key=y_key if y is not None else None)


def _load_image_folder(path: Path, input_shape: tuple | None) -> Dataset:
    """Images from ``path/<class>/``, classes in sorted order, resized to the model's input.

    Files whose suffix is not an image's (``IMAGE_SUFFIXES``, e.g. ``notes.txt``, ``.DS_Store``) are
    skipped and counted in ``Dataset.skipped_files``; a file with an image suffix that cannot be
    decoded, or that declares more than ``MAX_IMAGE_PIXELS``, is a DataError (exit 3).
    """
    from PIL import Image

    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{path} has no class subfolders",
                        hint="put the images of each class in a subfolder named after the class")
    size, channels = _image_geometry(input_shape, path)
    images, labels, skipped = [], [], 0
    for label, name in enumerate(classes):
        for file in sorted((path / name).iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                skipped += 1
                continue
            array = _read_image(file, Image, size, channels)
            images.append(array[..., None] if channels == 1 else array)
            labels.append(label)
    if not images:
        raise DataError(f"{path} has class folders but no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        raise DataError(f"images in {path} have different sizes {sorted(shapes)[:3]}",
                        hint="resize them, or use a model with a fixed input size so edgepack can")
    return Dataset(np.stack(images), np.asarray(labels, dtype=np.int64), str(path), skipped)


def _read_image(file: Path, Image, size: tuple | None, channels: int) -> np.ndarray:
    """One image as float32 (height, width[, 3]); its pixel count is checked before it is decoded."""
    try:
        with warnings.catch_warnings():  # PIL warns past 89 MP; the check below refuses sooner
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(file)
        with opened as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise DataError(f"image {file} is {image.width}x{image.height} pixels, more than the "
                                f"{MAX_IMAGE_PIXELS:,} edgepack decodes", hint="resize it or remove it")
            image = image.convert("L" if channels == 1 else "RGB")
            if size is not None and image.size != size:
                image = image.resize(size, Image.BILINEAR)
            return np.asarray(image, dtype=np.float32)
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, Image.DecompressionBombError) as exc:
        # PIL: UnidentifiedImageError (an OSError) for unknown bytes, the others for damaged ones
        raise DataError(f"cannot read image {file} ({exc})", hint="remove or replace the file") from None


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


def _checked(dataset: Dataset, x_name: str = "inputs", y_name: str = "targets") -> Dataset:
    """Refuse data edgepack cannot use: non-numeric, empty, mismatched lengths, NaN or infinities.
    ``x_name``/``y_name`` name the arrays in messages (e.g. ``inputs 'x'`` for an .npz)."""
    x, y = dataset.x, dataset.y
    if x.dtype.kind not in "biuf" or x.ndim == 0:
        raise DataError(f"{dataset.source}: {x_name} have dtype {x.dtype} and shape {x.shape}",
                        hint="inputs must be a numeric array with the samples on the first axis")
    if len(x) == 0:
        raise DataError(f"{dataset.source} is empty (0 samples)")
    if y is not None:
        if y.dtype.kind not in "biuf" or y.ndim == 0:
            raise DataError(f"{dataset.source}: {y_name} have dtype {y.dtype} and shape {y.shape}",
                            hint="targets must be numeric (class indices, one-hot rows or values), one per sample")
        if len(y) != len(x):
            raise DataError(f"{dataset.source}: {len(x)} inputs but {len(y)} targets",
                            hint="x and y need the same number of rows")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise DataError(f"{dataset.source}: {y_name} contain NaN or infinite values",
                            hint="drop or fix those samples")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise DataError(f"{dataset.source}: {x_name} contain NaN or infinite values", hint="drop or fix those samples")
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
    return Dataset(x, dataset.y, dataset.source, dataset.skipped_files, dataset.y_key)
