"""Check a zip archive (``.keras``, ``.npz``) from its central directory before reading any member.

A zip file says, in its central directory, how many members it has, what they are called, and how
large each is once decompressed; all of that is attacker-controlled. This module reads those
declarations first and refuses what edgepack should never try to read (a "zip bomb", a member
named ``../../x``, a directory of a million entries), then reads the members it needs with a
bounded read, so a header that lies cannot make it read more than the limit either::

    with open_checked(path, read_limits={"config.json": MAX_JSON_MEMBER_BYTES}) as archive:
        config = load_json_object(read_member(archive, "config.json", MAX_JSON_MEMBER_BYTES), "config.json")

Every refusal is an ``ArchiveError`` that says what is wrong; the caller names the file and turns it
into its own exit code (ModelError for models, DataError for data sets).
"""

from __future__ import annotations

import json
import lzma
import os
import re
import struct
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

__all__ = ["ArchiveError", "open_checked", "check_readable", "read_member", "load_json_object",
           "unsafe_name", "READ_ERRORS",
           "MAX_MEMBERS", "MAX_CENTRAL_DIRECTORY_BYTES", "MAX_JSON_MEMBER_BYTES", "MAX_MEMBER_BYTES",
           "MAX_COMPRESSION_RATIO", "MAX_JSON_DEPTH"]

MAX_MEMBERS = 10_000
"""Most members in an archive. A .keras file has 3 (metadata.json, config.json, model.weights.h5)
plus its assets; an .npz has one per array."""
MAX_CENTRAL_DIRECTORY_BYTES = 4 << 20
"""Largest central directory (4 MiB, about 40,000 entries with typical names): zipfile reads it whole
and makes an object per entry, so it is checked before zipfile sees it."""
MAX_JSON_MEMBER_BYTES = 8 << 20
"""Largest config.json / metadata.json (8 MiB). A digits CNN's config is about 10 KB and one of the
largest keras.applications models (NASNetLarge, ~1,000 layers) about 2 MB; parsing 8 MiB of JSON
costs at most about 200 MB of Python objects."""
MAX_MEMBER_BYTES = 2 << 30
"""Largest declared member of a .keras archive (2 GiB; the weights): a .tflite flatbuffer cannot
hold more, so a larger model could not be converted anyway. Nothing of it is read here."""
MAX_COMPRESSION_RATIO = 200
"""Highest decompressed:compressed ratio of a member that edgepack reads. JSON compresses about
5-20:1; a zip bomb needs ratios near deflate's maximum (1032:1) or bzip2's (millions:1)."""
MAX_JSON_DEPTH = 200
"""Deepest nesting of a JSON config. Keras configs nest about 4 levels per nested model; edgepack's
safety scan walks configs recursively, so the depth must stay well under Python's recursion limit."""

READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, zlib.error,
               lzma.LZMAError, NotImplementedError, struct.error)
"""What zipfile and its decompressors raise on malformed bytes (UnicodeDecodeError is a ValueError;
bz2 raises OSError). A caller that reads members catches these as well as ArchiveError."""

_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_EOCD_SIGNATURE, _LOCATOR_SIGNATURE, _EOCD64_SIGNATURE = b"PK\x05\x06", b"PK\x06\x07", b"PK\x06\x06"
_DRIVE = re.compile(r"^[A-Za-z]:")
_ENCRYPTED = 0x1


class ArchiveError(Exception):
    """The archive is malformed or unsafe; the message says what and where inside it."""


def _end_records(handle: BinaryIO) -> tuple[int, int]:
    """``(entries, directory bytes)`` as the end records declare them, found as zipfile finds them."""
    handle.seek(0, 2)
    size = handle.tell()
    at = None
    if size >= _EOCD.size:
        handle.seek(size - _EOCD.size)
        last = handle.read(_EOCD.size)
        if last[:4] == _EOCD_SIGNATURE and last[-2:] == b"\0\0":
            at, record = size - _EOCD.size, last
    if at is None:
        start = max(size - (1 << 16) - _EOCD.size, 0)
        handle.seek(start)
        tail = handle.read(size - start)
        found = tail.rfind(_EOCD_SIGNATURE)
        if found < 0 or len(tail) - found < _EOCD.size:
            raise ArchiveError("not a zip archive (no end of central directory record)")
        at, record = start + found, tail[found:found + _EOCD.size]
    fields = _EOCD.unpack(record)
    entries, directory_bytes = fields[4], fields[5]
    if at >= _EOCD64_LOCATOR.size + _EOCD64.size:
        handle.seek(at - _EOCD64_LOCATOR.size)
        locator = handle.read(_EOCD64_LOCATOR.size)
        if locator[:4] == _LOCATOR_SIGNATURE:
            handle.seek(at - _EOCD64_LOCATOR.size - _EOCD64.size)
            record64 = handle.read(_EOCD64.size)
            if record64[:4] == _EOCD64_SIGNATURE:
                fields64 = _EOCD64.unpack(record64)
                entries, directory_bytes = fields64[7], fields64[8]
    return entries, directory_bytes


def unsafe_name(name: str) -> str | None:
    """Why a member name could escape the folder it is extracted to, or None when it is fine."""
    if "\0" in name:
        return "contains a NUL byte"
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("/") or _DRIVE.match(name):
        return "is an absolute path"
    if ".." in name.split("/"):
        return "has a '..' part"
    if not name:
        return "is empty"
    return None


def _check_directory(archive: zipfile.ZipFile, max_member_bytes: int) -> None:
    """Member count, names, duplicates and declared sizes of every member."""
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise ArchiveError(f"it has {len(members):,} members (edgepack reads archives of {MAX_MEMBERS:,} at most)")
    seen = set()
    for info in members:
        why = unsafe_name(info.orig_filename)
        if why:
            raise ArchiveError(f"member {info.orig_filename!r} {why}")
        if info.filename in seen:
            raise ArchiveError(f"member {info.filename!r} appears twice (readers would disagree on which to use)")
        seen.add(info.filename)
        if info.file_size > max_member_bytes:
            raise ArchiveError(f"member {info.filename!r} declares {info.file_size:,} bytes uncompressed "
                               f"(more than the {max_member_bytes:,} edgepack accepts)")


def check_readable(archive: zipfile.ZipFile, name: str, limit: int, max_ratio: float) -> None:
    """A member edgepack will read: present, small enough, not a bomb, not encrypted."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise ArchiveError(f"it has no {name}") from None
    if info.flag_bits & _ENCRYPTED:
        raise ArchiveError(f"{name} is encrypted")
    archive_bytes = os.fstat(archive.fp.fileno()).st_size
    if info.compress_size > archive_bytes or (info.compress_type == zipfile.ZIP_STORED
                                              and info.compress_size != info.file_size):
        raise ArchiveError(f"{name} declares {info.compress_size:,} bytes stored for {info.file_size:,} "
                           f"uncompressed in an archive of {archive_bytes:,} bytes (truncated or corrupt)")
    if info.file_size > limit:
        raise ArchiveError(f"{name} declares {info.file_size:,} bytes uncompressed "
                           f"(more than the {limit:,} edgepack reads)")
    if info.file_size > max_ratio * max(info.compress_size, 1):
        raise ArchiveError(f"{name} expands {info.file_size / max(info.compress_size, 1):,.0f} times when "
                           f"decompressed (a zip bomb; edgepack reads members up to {max_ratio:,.0f}:1)")


def open_checked(path: str | Path, *, read_limits: dict[str, int], max_member_bytes: int = MAX_MEMBER_BYTES,
                 max_ratio: float = MAX_COMPRESSION_RATIO) -> zipfile.ZipFile:
    """Open ``path`` as a zip after checking its central directory; the caller closes it.

    ``read_limits`` maps each member the caller will read to its size limit; those must exist and
    pass the size and compression-ratio checks. Every member's declared size must be at most
    ``max_member_bytes``. Raises ArchiveError, or one of READ_ERRORS for bytes zipfile cannot parse.
    """
    with open(path, "rb") as handle:
        entries, directory_bytes = _end_records(handle)
    if entries > MAX_MEMBERS:
        raise ArchiveError(f"it declares {entries:,} members (edgepack reads archives of {MAX_MEMBERS:,} at most)")
    if directory_bytes > MAX_CENTRAL_DIRECTORY_BYTES:
        raise ArchiveError(f"its central directory declares {directory_bytes:,} bytes "
                           f"(edgepack reads {MAX_CENTRAL_DIRECTORY_BYTES:,} at most)")
    archive = zipfile.ZipFile(path)
    try:
        for name, limit in read_limits.items():  # first, so a bomb is named by its own limit
            check_readable(archive, name, limit, max_ratio)
        _check_directory(archive, max_member_bytes)
    except BaseException:
        archive.close()
        raise
    return archive


def read_member(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """The bytes of member ``name``, reading at most ``limit + 1`` bytes whatever its header says."""
    with archive.open(name) as member:
        data = member.read(limit + 1)
    if len(data) > limit:
        raise ArchiveError(f"{name} holds more than the {limit:,} bytes edgepack reads (its header understates it)")
    return data


def _depth_exceeds(value, limit: int) -> bool:
    """Whether ``value`` (parsed JSON) nests deeper than ``limit``, without recursion."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def load_json_object(raw: bytes | str, name: str, max_depth: int = MAX_JSON_DEPTH) -> dict:
    """Parse ``raw`` as a JSON object (a dict), refusing other JSON values and deep nesting."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ArchiveError(f"{name} is not valid JSON ({' '.join(str(exc).split())[:200]})") from None
    if not isinstance(value, dict):
        raise ArchiveError(f"{name} holds a JSON {type(value).__name__}, not an object")
    if _depth_exceeds(value, max_depth):
        raise ArchiveError(f"{name} nests more than {max_depth} levels deep")
    return value
