"""Data from code (``module:function``, with --trust-code): a tuple of arrays, or a ``tf.data``
pipeline that is streamed, never collected whole unless a caller asks for every row (``.x``).

A ``tf.data.Dataset`` yields ``(x, y)`` pairs, batched or not; ``x`` is an array, or a dict of arrays
by input name for a model with several inputs. Each pass over the data (evaluation, a calibration
sample drawn by reservoir sampling) iterates the pipeline again, holding one batch at a time.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from edgepack.errors import DataError
from edgepack.loading.dataset import Dataset, InputSpec, check_targets, fits, shape_error


def load_callable(spec, shapes: list[tuple | None], names: list[str] | None, result) -> Dataset:
    """The data set a user function returned: ``(x, y)`` arrays, or a tf.data pipeline to stream."""
    if isinstance(result, tuple) and len(result) == 2:
        x, y = result
        x = {str(k): np.asarray(v) for k, v in x.items()} if isinstance(x, dict) else np.asarray(x)
        return Dataset(x, None if y is None else np.asarray(y), spec.source)
    if hasattr(result, "as_numpy_iterator"):
        return StreamDataset(result, spec.source, shapes, names)
    raise DataError(f"{spec.source} returned {type(result).__name__}",
                    hint="return a tuple (x, y) of arrays or a tf.data.Dataset of (x, y) pairs")


def _concat(parts: list):
    if isinstance(parts[0], dict):
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    return np.concatenate(parts)


def _copy(x):
    return {key: value.copy() for key, value in x.items()} if isinstance(x, dict) else x.copy()


def _rows(x, index):
    return {key: value[index] for key, value in x.items()} if isinstance(x, dict) else x[index]


class StreamDataset(Dataset):
    """A tf.data pipeline of ``(x, y)`` pairs, read one element at a time on every pass."""

    def __init__(self, pipeline, source: str, shapes: list[tuple | None], names: list[str] | None):
        self._pipeline, self.source, self._shapes, self.names = pipeline, source, shapes, names
        self.skipped_files, self.y_key, self.preprocess = 0, None, None
        self._specs: list[InputSpec] | None = None
        self._model_name = ""
        self._count: int | None = None
        self._all: tuple | None = None

    def fitted_to(self, specs: list[InputSpec], model_name: str) -> "StreamDataset":
        """The same pipeline, each batch checked against ``specs`` and cast as it is read."""
        copy = StreamDataset(self._pipeline, self.source, self._shapes, self.names)
        copy.preprocess, copy._specs, copy._model_name = self.preprocess, list(specs), model_name
        return copy

    @property
    def has_targets(self) -> bool:
        return True

    def _elements(self) -> Iterator[tuple]:
        """Each element as a batch ``(x, y)``: a batch axis added to unbatched elements."""
        count = 0
        for element in self._pipeline.as_numpy_iterator():
            if not (isinstance(element, tuple) and len(element) == 2):
                raise DataError(f"{self.source} yields {type(element).__name__}, not (x, y) pairs")
            x, y = element
            x = {str(k): np.asarray(v) for k, v in x.items()} if isinstance(x, dict) else np.asarray(x)
            first = x[self.names[0]] if isinstance(x, dict) and self.names and self.names[0] in x else \
                next(iter(x.values())) if isinstance(x, dict) else x
            shape = self._shapes[0] if self._shapes else None
            if shape is None or first.ndim != len(shape):
                x, y = _rows(x, np.newaxis), np.asarray(y)[np.newaxis]
            count += 1
            yield self._finish_batch(x, np.asarray(y))
        if count == 0:
            raise DataError(f"{self.source} yielded no elements")

    def _finish_batch(self, x, y: np.ndarray) -> tuple:
        if isinstance(x, dict) and not self.names:
            raise DataError(f"{self.source} yields a dict of inputs ({', '.join(x)}) but the model has one input",
                            hint="yield (x, y) pairs with x an array")
        arrays = x if isinstance(x, dict) else {None: x}
        if self.names and set(arrays) != set(self.names):
            raise DataError(f"{self.source} yields inputs {', '.join(map(str, arrays))} but the model has inputs "
                            f"{', '.join(self.names)}", hint="key the inputs by the model's input names")
        specs = {spec.name if self.names else None: spec for spec in self._specs or []}
        done = {}
        for name, rows in arrays.items():
            label = "inputs" if name is None else f"input '{name}'"
            if rows.dtype.kind not in "biuf" or (rows.dtype.kind == "f" and not np.isfinite(rows).all()):
                raise DataError(f"{self.source}: {label} have dtype {rows.dtype} or contain NaN or infinite values",
                                hint="yield finite numeric arrays")
            spec = specs.get(name)
            if spec is not None and not fits(spec.shape, rows.shape[1:]):
                raise shape_error(self.source, rows.shape, spec.shape, self._model_name, label)
            if self.preprocess is not None:
                rows = self.preprocess.apply(rows, self.source)
            done[name] = rows if spec is None else rows.astype(spec.dtype, copy=False)
        check_targets(y, len(next(iter(done.values()))), self.source, "targets")
        return (done if self.names else done[None]), y

    def batches(self, size: int) -> Iterator[tuple]:
        """``(x, y)`` batches of ``size`` rows (the last may be smaller), whatever the pipeline yields."""
        pending_x, pending_y, held = [], [], 0
        for x, y in self._elements():
            pending_x.append(x)
            pending_y.append(y)
            held += len(y)
            while held >= size:
                joined_x, joined_y = _concat(pending_x), np.concatenate(pending_y)
                yield _rows(joined_x, slice(0, size)), joined_y[:size]
                pending_x, pending_y = [_rows(joined_x, slice(size, None))], [joined_y[size:]]
                held -= size
        if held:
            yield _concat(pending_x), np.concatenate(pending_y)

    def __len__(self) -> int:
        if self._count is None:
            self._count = sum(len(y) for _, y in self._elements())
        return self._count

    def _collect(self) -> tuple:
        if self._all is None:
            parts = list(self._elements())
            self._all = (_concat([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
            self._count = len(self._all[1])
        return self._all

    @property
    def x(self):
        return self._collect()[0]

    @property
    def y(self) -> np.ndarray:
        return self._collect()[1]

    @property
    def row_shapes(self) -> list[tuple]:
        x = self.x
        return [value.shape[1:] for value in x.values()] if isinstance(x, dict) else [x.shape[1:]]

    def sample(self, count: int, seed: int = 0) -> Dataset:
        """At most ``count`` rows drawn uniformly in one pass (reservoir sampling), in stream order."""
        rng = np.random.default_rng(seed)
        kept: list[tuple[int, object, object]] = []
        seen = 0
        for x, y in self._elements():
            for row in range(len(y)):
                slot = seen if seen < count else int(rng.integers(0, seen + 1))
                if slot < count:
                    item = (seen, _copy(_rows(x, slice(row, row + 1))), y[row:row + 1].copy())
                    if slot == len(kept):
                        kept.append(item)
                    else:
                        kept[slot] = item
                seen += 1
        kept.sort(key=lambda item: item[0])
        return Dataset(_concat([item[1] for item in kept]), np.concatenate([item[2] for item in kept]), self.source)
