"""The rows of one model input, read on demand: from an array in memory or memory-mapped, or decoded
from image files (``edgepack.loading.images``). A data set holds one ``Rows`` per input and reads
only the rows a caller asks for (a batch, a calibration sample)."""

from __future__ import annotations

import numpy as np

from edgepack.errors import DataError


class Rows:
    """Rows of one input: ``len``, the shape and dtype of one row, and ``take`` of some rows."""

    source: str = "data"

    def __len__(self) -> int:
        raise NotImplementedError

    @property
    def row_shape(self) -> tuple:
        raise NotImplementedError

    @property
    def dtype(self) -> np.dtype:
        raise NotImplementedError

    def take(self, index: np.ndarray | slice) -> np.ndarray:
        """The rows at ``index`` (sorted positions, or a slice), as an array in memory."""
        raise NotImplementedError

    def everything(self) -> np.ndarray:
        """Every row; for an array, the array itself (no copy)."""
        return self.take(slice(0, len(self)))


class ArrayRows(Rows):
    """Rows of an array. A memory-mapped one (``checked=False``) was not scanned when opened: each
    read is checked for NaN and infinities, naming the rows."""

    def __init__(self, array: np.ndarray, source: str = "data", *, name: str = "inputs", checked: bool = True):
        self.array, self.source, self.name, self.checked = array, source, name, checked

    def __len__(self) -> int:
        return len(self.array)

    @property
    def row_shape(self) -> tuple:
        return tuple(self.array.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    def take(self, index: np.ndarray | slice) -> np.ndarray:
        rows = np.asarray(self.array[index])
        if not self.checked and rows.dtype.kind == "f" and not np.isfinite(rows).all():
            first = _first_bad_row(rows, index)
            raise DataError(f"{self.source}: {self.name} contain NaN or infinite values (row {first})",
                            hint="drop or fix those samples")
        return rows

    def everything(self) -> np.ndarray:
        if self.checked:
            return self.array
        return self.take(slice(0, len(self)))


def _first_bad_row(rows: np.ndarray, index: np.ndarray | slice) -> int:
    bad = int(np.flatnonzero(~np.isfinite(rows.reshape(len(rows), -1)).all(axis=1))[0])
    if isinstance(index, slice):
        return (index.start or 0) + bad
    return int(np.asarray(index)[bad])
