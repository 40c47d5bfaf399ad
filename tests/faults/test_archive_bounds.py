""".keras archives are checked from their central directory before any member is read: zip bombs,
names that escape the archive and huge directories are refused (exit 4) with bounded memory, and
random, truncated or mutated archives are either read or a ModelError, nothing else."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import assert_one_line_error
from edgepack.errors import ModelError
from edgepack.loading.archive import MAX_COMPRESSION_RATIO, MAX_JSON_DEPTH, MAX_JSON_MEMBER_BYTES, MAX_MEMBERS
from edgepack.loading.model import identify_model

from byte_mutations import mutations

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
METADATA = {"keras_version": "3.15.1", "date_saved": "2026-01-01@00:00:00"}
CONFIG = {"module": "keras", "class_name": "Sequential", "config": {"name": "tiny", "layers": [
    {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, 4], "name": "x"}},
    {"module": "keras.layers", "class_name": "Dense", "config": {"name": "dense", "units": 2}}]},
    "compile_config": None}
PEAK_RSS_LIMIT_MB = 200


def write_keras(path: Path, members: dict, compression: int = zipfile.ZIP_STORED) -> Path:
    """A .keras-like zip holding ``members`` (name -> bytes, or a dict written as JSON)."""
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, value in members.items():
            archive.writestr(name, json.dumps(value) if isinstance(value, dict) else value)
    return path


def valid_members() -> dict:
    """What identify_model reads from a Keras 3 .keras file, and a stand-in for the weights."""
    return {"metadata.json": METADATA, "config.json": CONFIG, "model.weights.h5": b"\x89HDF\r\n\x1a\n" + bytes(64)}


def write_bomb(path: Path, uncompressed: int, compression: int, level: int | None = None) -> Path:
    """A .keras whose config.json is ``uncompressed`` bytes of spaces, streamed so this test never
    holds more than a megabyte of it."""
    chunk = b" " * (1 << 20)
    with zipfile.ZipFile(path, "w", compression, compresslevel=level) as archive:
        archive.writestr("metadata.json", json.dumps(METADATA))
        with archive.open("config.json", "w", force_zip64=True) as member:
            for _ in range(uncompressed // len(chunk)):
                member.write(chunk)
    return path


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict:
    """A 1 GiB deflate bomb (about 1 MB on disk) and a 256 MiB bzip2 bomb (a few hundred bytes)."""
    folder = tmp_path_factory.mktemp("bombs")
    return {"deflate": write_bomb(folder / "deflate.keras", 1 << 30, zipfile.ZIP_DEFLATED, 9),
            "bzip2": write_bomb(folder / "bzip2.keras", 256 << 20, zipfile.ZIP_BZIP2)}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """One folder for the examples hypothesis writes (a function-scoped tmp_path cannot be used)."""
    return tmp_path_factory.mktemp("archive_fuzz")


def identify_in_child(path: Path) -> dict:
    """identify_model(path) in a fresh Python: its outcome, seconds taken and peak RSS in MB."""
    code = ("import json, resource, sys, time\n"
            "from edgepack.errors import ModelError\n"
            "from edgepack.loading.model import identify_model\n"
            "started = time.perf_counter()\n"
            "try:\n    identify_model(sys.argv[1]); outcome = 'loaded'\n"
            "except ModelError as exc:\n    outcome = str(exc)\n"
            "print(json.dumps({'outcome': outcome, 'seconds': time.perf_counter() - started,\n"
            "                  'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("kind", ["deflate", "bzip2"])
def test_zip_bomb_is_refused_from_the_directory_with_little_memory(bombs, tmp_path, kind):
    baseline = identify_in_child(write_keras(tmp_path / "ok.keras", valid_members()))
    result = identify_in_child(bombs[kind])
    print(f"{kind} bomb: {bombs[kind].stat().st_size:,} bytes on disk; refused in {result['seconds']:.4f} s, "
          f"peak RSS {result['peak_mb']:.0f} MB (a valid model: {baseline['peak_mb']:.0f} MB)")
    assert baseline["outcome"] == "loaded"
    assert "config.json declares" in result["outcome"] and "uncompressed" in result["outcome"], result
    assert result["peak_mb"] < PEAK_RSS_LIMIT_MB
    assert result["peak_mb"] < baseline["peak_mb"] + 20  # nothing of the bomb was expanded
    assert result["seconds"] < 1.0


def test_zip_bomb_is_exit_4_on_the_command_line(run, bombs):
    assert_one_line_error(run("inspect", bombs["bzip2"]), 4, "bzip2.keras", "config.json declares")


def test_a_highly_compressed_member_under_the_size_limit_is_refused(tmp_path):
    padding = b" " * (MAX_JSON_MEMBER_BYTES // 2)  # 4 MiB of spaces deflate to about 4 KB
    path = write_keras(tmp_path / "ratio.keras", {**valid_members(), "config.json": padding},
                       zipfile.ZIP_DEFLATED)
    with pytest.raises(ModelError, match=rf"config.json expands [\d,]+ times .*{MAX_COMPRESSION_RATIO}:1"):
        identify_model(path)


def test_a_header_that_understates_the_size_cannot_make_edgepack_read_more(tmp_path):
    """config.json inflates to 1 MiB but its headers say 100 bytes: zipfile stops at 100 and the
    CRC check fails, so the lie is a ModelError, not a larger read."""
    path = write_keras(tmp_path / "liar.keras", {**valid_members(), "config.json": b"[" + b" " * (1 << 20) + b"]"},
                       zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    for signature, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # uncompressed size fields
        struct.pack_into("<L", data, _header_of(data, signature, "config.json") + size_at, 100)
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="liar.keras is not a readable .keras archive .*CRC"):
        identify_model(path)


def _header_of(data: bytearray, signature: bytes, name: str) -> int:
    """Offset of the local or central header (``signature``) whose file name is ``name``."""
    name_at = {b"PK\x03\x04": 30, b"PK\x01\x02": 46}[signature]
    at = data.find(signature)
    while data[at + name_at:at + name_at + len(name)] != name.encode():
        at = data.find(signature, at + 1)
    return at


@pytest.mark.parametrize("name, fragment", [
    ("../../x", "has a '..' part"),
    ("assets/../../etc/passwd", "has a '..' part"),
    ("/etc/passwd", "is an absolute path"),
    ("C:/Windows/x", "is an absolute path"),
    ("assets\\..\\x", "contains a backslash"),
])
def test_member_names_that_escape_the_archive_are_refused(tmp_path, name, fragment):
    path = write_keras(tmp_path / "escape.keras", {**valid_members(), name: b"x"})
    with pytest.raises(ModelError, match=f"escape.keras is not a readable .keras archive: member .* {fragment}"):
        identify_model(path)


def test_a_nul_byte_in_a_member_name_is_refused(tmp_path):
    path = write_keras(tmp_path / "nul.keras", {**valid_members(), "assets/ok.txt": b"x"})
    data = path.read_bytes().replace(b"assets/ok.txt", b"assets/ok\0txt")
    path.write_bytes(data)
    with pytest.raises(ModelError, match="contains a NUL byte"):
        identify_model(path)


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_a_duplicated_member_is_refused(tmp_path):
    path = tmp_path / "twice.keras"
    with zipfile.ZipFile(path, "w") as archive:
        for name, value in valid_members().items():
            archive.writestr(name, json.dumps(value) if isinstance(value, dict) else value)
        archive.writestr("config.json", json.dumps({"class_name": "Lambda"}))
    with pytest.raises(ModelError, match="'config.json' appears twice"):
        identify_model(path)


def test_too_many_members_are_refused_before_zipfile_reads_them(tmp_path):
    members = {**valid_members(), **{f"assets/{index}": b"" for index in range(MAX_MEMBERS)}}
    path = write_keras(tmp_path / "crowd.keras", members)
    with pytest.raises(ModelError, match=f"declares {len(members):,} members"):
        identify_model(path)


def test_a_central_directory_declared_huge_is_refused(tmp_path):
    path = write_keras(tmp_path / "bigdir.keras", valid_members())
    data = bytearray(path.read_bytes())
    struct.pack_into("<L", data, len(data) - 22 + 12, 1 << 30)  # the end record's directory size
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="central directory declares 1,073,741,824 bytes"):
        identify_model(path)


@pytest.mark.parametrize("member, content, fragment", [
    ("metadata.json", b"[1, 2]", "metadata.json holds a JSON list, not an object"),
    ("config.json", b"\"a string\"", "config.json holds a JSON str"),
    ("config.json", b"[" * 100_000 + b"]" * 100_000, "config.json is not valid JSON"),
    ("config.json", b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "holds a JSON list"),
    ("config.json", ("{\"a\":" * (MAX_JSON_DEPTH + 1) + "1" + "}" * (MAX_JSON_DEPTH + 1)).encode(),
     f"nests more than {MAX_JSON_DEPTH} levels"),
    ("config.json", b"\xff\xfe{", "config.json is not valid JSON"),
])
def test_json_members_that_are_not_configs_are_refused(tmp_path, member, content, fragment):
    path = write_keras(tmp_path / "json.keras", {**valid_members(), member: content})
    with pytest.raises(ModelError, match="json.keras") as info:
        identify_model(path)
    assert fragment in str(info.value)


def test_an_encrypted_config_is_refused(tmp_path):
    path = write_keras(tmp_path / "locked.keras", valid_members())
    data = bytearray(path.read_bytes())
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = _header_of(data, signature, "config.json")
        data[at + flag_at] |= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="config.json is encrypted"):
        identify_model(path)


@pytest.fixture(scope="module")
def valid_keras(tmp_path_factory) -> bytes:
    """The bytes of a small valid .keras-like archive, deflated so mutations reach the decompressor."""
    path = write_keras(tmp_path_factory.mktemp("valid") / "m.keras", valid_members(), zipfile.ZIP_DEFLATED)
    assert identify_model(path).flavor.value == "keras3"
    return path.read_bytes()


def _identify_or_model_error(folder: Path, data: bytes) -> None:
    path = folder / "fuzz.keras"
    path.write_bytes(data)
    try:
        identify_model(path)
        event("identified")
    except ModelError as exc:
        event("ModelError")
        assert str(exc).startswith(str(path)), str(exc)


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_mutated_archives_are_read_or_a_model_error(scratch, valid_keras, data):
    _identify_or_model_error(scratch, data.draw(mutations(valid_keras)))


@FUZZ
@given(data=st.data())
def test_truncated_archives_are_a_model_error(scratch, valid_keras, data):
    cut = data.draw(st.integers(0, len(valid_keras) - 1))
    with pytest.raises(ModelError):
        identify_model(_write(scratch, valid_keras[:cut]))


@FUZZ
@given(prefix=st.sampled_from([b"", b"PK\x03\x04", b"PK\x05\x06"]), body=st.binary(max_size=400))
def test_random_bytes_are_a_model_error(scratch, prefix, body):
    with pytest.raises(ModelError):
        identify_model(_write(scratch, prefix + body))


def _write(folder: Path, data: bytes) -> Path:
    path = folder / "fuzz.keras"
    path.write_bytes(data)
    return path
