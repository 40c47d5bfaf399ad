"""A data set read on demand (``Dataset``), the model inputs it is fitted to (``InputSpec``), and the
checks every loader applies; ``edgepack.loading.data`` loads them, ``edgepack.loading.stream`` streams them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from edgepack.errors import DataError
from edgepack.loading.preprocess import Preprocess
from edgepack.loading.rows import ArrayRows, Rows


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


def check_targets(y: np.ndarray | None, rows: int, source: str, y_name: str) -> None:
    """Raise DataError unless ``y`` holds one finite numeric target per row."""
    if y is None:
        return
    if y.dtype.kind not in "biuf" or y.ndim == 0:
        raise DataError(f"{source}: {y_name} have dtype {y.dtype} and shape {y.shape}",
                        hint="targets must be numeric (class indices, one-hot rows or values), one per sample")
    if len(y) != rows:
        raise DataError(f"{source}: {rows} inputs but {len(y)} targets", hint="x and y need the same number of rows")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise DataError(f"{source}: {y_name} contain NaN or infinite values", hint="drop or fix those samples")


def fits(expected_shape: tuple, actual: tuple) -> bool:
    """True when rows of shape ``actual`` (no batch axis) fit ``expected_shape`` (batch first; None or -1 = any)."""
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
