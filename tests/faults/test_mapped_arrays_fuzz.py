"""Memory-mapped arrays (large stored .npz members, .npy files) come from untrusted bytes: the parser
that finds a member's data in the file and maps it either gives exactly the array numpy wrote, or a
DataError (exit 3) when the bytes are damaged; never another exception, and never a read outside
the file. Every array is mapped here (the size threshold is lowered to one byte)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from byte_mutations import mutations
from edgepack.errors import DataError
from edgepack.loading import npy
from edgepack.loading.data import DataSpec, load_data

FUZZ = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
DTYPES = st.sampled_from(["<f4", ">f4", "<f8", "<i1", "<u2", ">i4", "<i8", "|b1"])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mapped_fuzz")


@pytest.fixture(autouse=True)
def map_everything(monkeypatch):
    monkeypatch.setattr(npy, "MEMORY_MAP_BYTES", 1)


def arrays():
    return DTYPES.flatmap(lambda dtype: hnp.arrays(
        np.dtype(dtype), hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6),
        elements={"allow_nan": False, "allow_infinity": False} if dtype[1] == "f" else None))


def _read_everything(path: Path):
    data = load_data(DataSpec(source=str(path)))
    return data._columns[0].array, data.y, [batch for batch, _ in data.batches(4)]


@FUZZ
@given(x=arrays(), fortran=st.booleans())
def test_a_mapped_npz_member_is_the_array_numpy_wrote(scratch, x, fortran):
    x = np.asfortranarray(x) if fortran else x
    np.savez(scratch / "a.npz", x=x, y=np.arange(len(x)))
    read, y, batches = _read_everything(scratch / "a.npz")
    assert isinstance(read, np.memmap) and read.dtype == x.dtype and np.array_equal(read, x)
    assert np.array_equal(np.concatenate(batches), x) and y.tolist() == list(range(len(x)))


@FUZZ
@given(x=arrays())
def test_a_mapped_npy_file_is_the_array_numpy_wrote(scratch, x):
    np.save(scratch / "a.npy", x)
    read, y, _ = _read_everything(scratch / "a.npy")
    assert y is None and read.dtype == x.dtype and np.array_equal(read, x)


def _npz_bytes() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, y=np.arange(6), x=np.linspace(0, 1, 24, dtype=np.float32).reshape(6, 4))
    return buffer.getvalue()


def _npy_bytes() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.linspace(0, 1, 24).reshape(6, 2, 2))
    return buffer.getvalue()


BASES = {"a.npz": _npz_bytes(), "a.npy": _npy_bytes()}


@FUZZ
@given(name=st.sampled_from(sorted(BASES)), data=st.data())
def test_damaged_bytes_are_mapped_within_the_file_or_a_data_error(scratch, name, data):
    path = scratch / name
    path.write_bytes(data.draw(mutations(BASES[name])))
    try:
        x, _, batches = _read_everything(path)
    except DataError as exc:
        event("DataError")
        assert str(exc).startswith(str(path)), str(exc)
        return
    event("read")
    assert x.dtype.kind in "biuf" and sum(len(b) for b in batches) == len(x)
    if isinstance(x, np.memmap):
        assert x.offset + x.nbytes <= path.stat().st_size
