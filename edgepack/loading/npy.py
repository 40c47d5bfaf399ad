"""Read .npy arrays from untrusted files: members of an .npz, or a plain .npy file.

Every header is read and checked before any data: shape and dtype are parsed by numpy's own header
reader (a literal, never unpickled), object dtypes are refused, and the declared size must fit in
the bytes the file really holds. Large arrays that are stored uncompressed are memory-mapped
instead of read: the operating system pages in the rows that are used, so a data set larger than
memory can be streamed. A memory-mapped array is checked for NaN and infinities row by row, as its
rows are read (see ``edgepack.loading.rows.ArrayRows``), not when it is opened.
"""

from __future__ import annotations

import math
import os
import struct
import tokenize
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from edgepack.errors import DataError
from edgepack.loading.archive import ArchiveError, check_readable

DEFLATE_MAX_RATIO = 1032
"""The most a deflate stream can expand (258 bytes from 2 bits). numpy writes .npz members stored or
deflated, so a member declaring more than this, or another compression method, is refused: a
legitimate savez_compressed file of zeros reaches about 1,000:1, never more."""
MEMORY_MAP_BYTES = 64 << 20
"""Arrays of at least this many bytes (64 MiB) stored uncompressed are memory-mapped, not read: a
data set's peak memory is then the rows in use, not the file. Smaller ones are read and checked whole."""
PICKLE_HINT = "save plain numeric arrays with numpy.savez"
_NPY_ERRORS = (ValueError, TypeError, SyntaxError, RecursionError, OverflowError, struct.error,
               tokenize.TokenError)  # numpy parses the header dict with the tokenizer: an unclosed one
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_LOCAL_SIGNATURE = b"PK\x03\x04"


class NpyHeader:
    """Shape, dtype and memory order of a .npy array, and where its data starts in the stream."""

    def __init__(self, shape: tuple, dtype: np.dtype, fortran: bool, data_start: int):
        self.shape, self.dtype, self.fortran, self.data_start = shape, dtype, fortran, data_start

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def memory_bytes() -> int:
    """Memory this machine can give an array now (Linux's MemAvailable, else physical memory): an
    array declaring more could not be read anyway, so it is refused before anything is read."""
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


def read_header(handle, member: str) -> NpyHeader:
    """The header of the .npy array at ``handle``'s position, read without reading any data."""
    try:
        version = npy_format.read_magic(handle)
        readers = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}
        if version not in readers:
            raise ArchiveError(f"{member} is a .npy file of version {version}, which edgepack does not read")
        shape, fortran, dtype = readers[version](handle)
    except _NPY_ERRORS as exc:
        raise ArchiveError(f"{member} is not a valid .npy array ({' '.join(str(exc).split())[:200]})") from None
    if any(dim < 0 for dim in shape):
        raise ArchiveError(f"{member} declares a negative dimension in shape {shape}")
    return NpyHeader(tuple(shape), dtype, bool(fortran), handle.tell())


def _check_declared(header: NpyHeader, member: str, path: Path, available: int) -> None:
    """Refuse pickled arrays and arrays declaring more bytes than ``available`` hold."""
    if header.dtype.hasobject:
        raise DataError(f"{path} holds pickled Python objects, which edgepack never loads (unpickling can run code)",
                        hint=PICKLE_HINT)
    if header.dtype.itemsize == 0 or header.nbytes > available:
        raise ArchiveError(f"{member} declares shape {header.shape} of {header.dtype} ({header.nbytes:,} bytes) "
                           f"but the member holds {available:,} bytes")


def _memory_map(path: Path, header: NpyHeader, offset: int) -> np.ndarray:
    if header.nbytes == 0:  # nothing to map (the caller refuses an empty data set)
        return np.empty(header.shape, header.dtype)
    return np.memmap(path, dtype=header.dtype, mode="r", offset=offset, shape=header.shape,
                     order="F" if header.fortran else "C")


def _local_data_offset(handle, info: zipfile.ZipInfo) -> int:
    """Where a member's bytes start: after its local header, whose name and extra field lengths may
    differ from the central directory's."""
    handle.seek(info.header_offset)
    raw = handle.read(_LOCAL_HEADER.size)
    if len(raw) != _LOCAL_HEADER.size or raw[:4] != _LOCAL_SIGNATURE:
        raise ArchiveError(f"{info.filename} has no local header at offset {info.header_offset:,}")
    fields = _LOCAL_HEADER.unpack(raw)
    return info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1]


def map_stored_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> np.ndarray:
    """A stored (uncompressed) .npz member memory-mapped in place: its header is read from the file
    and its data must lie inside the member's declared bytes and inside the file."""
    file_bytes = os.fstat(archive.fp.fileno()).st_size
    with open(path, "rb") as handle:
        start = _local_data_offset(handle, info)
        if start + info.compress_size > file_bytes:
            raise ArchiveError(f"{info.filename} runs past the end of the file (truncated)")
        handle.seek(start)
        header = read_header(handle, info.filename)
    _check_declared(header, info.filename, path, start + info.compress_size - header.data_start)
    return _memory_map(path, header, header.data_start)


def read_member(archive: zipfile.ZipFile, member: str, path: Path, limit: int) -> tuple[np.ndarray, bool]:
    """One array of an .npz and whether it is memory-mapped. Its member and header are checked first,
    so its size is bounded by the member's declared size, which is bounded by ``limit`` (memory) for
    a member that must be read, by the file for a stored one that is mapped, and by deflate's ratio."""
    info = archive.getinfo(member)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ArchiveError(f"{member} uses zip compression method {info.compress_type}; numpy writes stored "
                           f"or deflated members only")
    stored = info.compress_type == zipfile.ZIP_STORED
    archive_bytes = os.fstat(archive.fp.fileno()).st_size
    check_readable(archive, member, max(limit, archive_bytes) if stored else limit, DEFLATE_MAX_RATIO)
    if stored and info.file_size >= MEMORY_MAP_BYTES:
        return map_stored_member(archive, info, path), True
    with archive.open(member) as handle:
        header = read_header(handle, member)
    _check_declared(header, member, path, info.file_size)
    if header.nbytes > limit:
        raise DataError(f"{path}: array {member} ({header.nbytes:,} bytes) does not fit in memory",
                        hint="save it with numpy.savez (not savez_compressed) so edgepack can memory-map it")
    try:
        with archive.open(member) as handle:
            return npy_format.read_array(handle, allow_pickle=False), False
    except MemoryError:
        raise DataError(f"{path}: array {member} ({header.nbytes:,} bytes) does not fit in memory") from None


def read_npy_file(path: Path) -> tuple[np.ndarray, bool]:
    """A plain .npy file (inputs only) and whether it is memory-mapped; the same checks as a member."""
    try:
        with open(path, "rb") as handle:
            header = read_header(handle, path.name)
            _check_declared(header, path.name, path, os.fstat(handle.fileno()).st_size - header.data_start)
            if header.nbytes >= MEMORY_MAP_BYTES:
                return _memory_map(path, header, header.data_start), True
            if header.nbytes > memory_bytes():
                raise DataError(f"{path} ({header.nbytes:,} bytes) does not fit in memory")
            return npy_format.read_array(handle, allow_pickle=False), False
    except ArchiveError as exc:
        raise DataError(f"{path} is not a readable .npy file: {exc}", hint="save the array with numpy.save") from None
    except (OSError, ValueError, EOFError) as exc:
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise DataError(f"{path} is truncated or corrupt ({detail})", hint="write the file again") from None
