"""Random, truncated and mutated .npz, .h5, .tflite and image files: every loader either reads them
or raises its contract error (DataError, exit 3; ModelError, exit 4), never another exception.

Loaders backed by native code (HDF5, LiteRT) run in a child Python (``worker``), so a crash or a
hang inside the library fails one example with a clear message instead of killing pytest.
"""

from __future__ import annotations

import base64
import io
import json
import select
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import assert_one_line_error
from edgepack.errors import DataError, ModelError
from edgepack.loading.data import DataSpec, load_data

from byte_mutations import mutations

FUZZ = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
H5_HANG_SECONDS = 3  # an attribute read of a healthy file takes milliseconds

# A one-byte corruption (offset 2272, 0x0f -> 0xab) of an h5py file like ``valid_h5``'s, on which
# HDF5 1.14.6 (h5py 3.14) loops for minutes inside the attribute read: found by fuzzing that reader.
H5_THAT_HANGS_HDF5 = zlib.decompress(base64.b64decode(
    "eNrtmM1O20AQx3edkFhRKUFCAvqhWj71UCHIsRdAJNSHClDpAamqUjdZgoWzLrH5ErLg2L5BH6FSLz32yLGPwNvAfhqvBUlp"
    "e6ja+UnRZmZ3/ztxZsfSfPKaq+O1BzXEsW1URnWU51LhOKat59+pEavxoxq/WNpfEXMzyl9X+k5J2htq4+tXrRZffVkgC0QJ"
    "2Aj4H/Fayxt83DLTAf2wzHX9qEvC9iEJejtJnMvLpV88d1LlazGv7yFP5fd9NMWycpcM/Lh9QAZxEFHmn8VY7KxnMdjGPank"
    "khkLvSX13RZ67/3OLqHdkTq1nI5lxDUudOTz6ER0O+ghERcaqnea0ysZenWhlwz8gAa0pyVH6U3k9MrCj416oJ/v57K0v1d+"
    "rh7sPIR6APXguh7ot9ZFxVzXLbyfvN8897b89WalvVUdHt9R1dRjdYOS8M/Fd1derKy/xLkAjfrEaMw1FubmZW3J6g0jITSO"
    "BtthdHhdK7L6wThxO6Efx23q94n73HE3yd4+oUngh+4zx5XFg/lPXL0g5v7QP2YVlJlvivub7Dxyy9Yu9+/TIOE7G2n6Nk2R"
    "KifoaxZPGMV83u0znTT7/fYE3CUAAAAAAAAAAADg32dzbb2JRddR8qFs9gGKfTngZkb1K88fyxH6lXDPOPNV854V+4fAzWA0"
    "Jp8Z1vZTOVrSoft+ul9ZtEtoRmyddJ6oOQdN22ha9y3H2D/E5y1LCtqq01vCbKFab3L0V+XVt0eQI8BdOFsc9rkCc4y4qg=="))

WORKER = r"""
import json, os, resource, sys, traceback
from pathlib import Path
replies = os.fdopen(os.dup(1), "w")  # fd 1 itself is borrowed by captured_native_output
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
hard = resource.getrlimit(resource.RLIMIT_AS)[1]
resource.setrlimit(resource.RLIMIT_AS, (4 << 30 if hard == resource.RLIM_INFINITY else min(4 << 30, hard), hard))
from edgepack.errors import EdgepackError

def h5(path):
    from edgepack.loading.model import _h5_attrs  # what identify_model's child process runs
    _h5_attrs(Path(path))

def tflite(path):
    from edgepack.runtime.interpreter import make_interpreter, read_model_bytes
    make_interpreter(read_model_bytes(path), where=path, allow_tensorflow=False)

for line in sys.stdin:
    request = json.loads(line)
    try:
        {"h5": h5, "tflite": tflite}[request["loader"]](request["path"])
        reply = {"outcome": "ok"}
    except EdgepackError as exc:
        reply = {"outcome": type(exc).__name__, "detail": str(exc)}
    except BaseException as exc:
        reply = {"outcome": "other", "detail": "".join(traceback.format_exception(exc))[-3000:]}
    replies.write(json.dumps(reply) + "\n")
    replies.flush()
"""


class Worker:
    """A child Python that runs a loader on a file and answers with the outcome, or reports that it
    crashed (killed by a signal) or hung (no answer in time), after which it is started again."""

    def __init__(self):
        self.process: subprocess.Popen | None = None

    def ask(self, loader: str, path: Path, timeout: float) -> dict:
        """``{"outcome": "ok" | "ModelError" | ... | "other" | "crash" | "hang", "detail": ...}``."""
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            timeout += 20  # start-up: imports
        self.process.stdin.write(json.dumps({"loader": loader, "path": str(path)}) + "\n")
        self.process.stdin.flush()
        if not select.select([self.process.stdout], [], [], timeout)[0]:
            self.close()
            return {"outcome": "hang", "detail": f"no answer in {timeout:g} s"}
        line = self.process.stdout.readline()
        if not line:
            status = self.process.wait()
            self.process = None
            return {"outcome": "crash", "detail": f"the child died with status {status}"}
        return json.loads(line)

    def close(self) -> None:
        """Stop the child (it is started again on the next question)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture(scope="module")
def worker():
    """One crash-isolating child for the whole module."""
    child = Worker()
    yield child
    child.close()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """One folder for the examples hypothesis writes (a function-scoped tmp_path cannot be used)."""
    return tmp_path_factory.mktemp("loader_fuzz")


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


# --- .npz -----------------------------------------------------------------------------------------

def _npz_bytes(compressed: bool) -> bytes:
    buffer = io.BytesIO()
    save = np.savez_compressed if compressed else np.savez
    save(buffer, x=np.linspace(0, 1, 24, dtype=np.float32).reshape(6, 4), y=np.arange(6))
    return buffer.getvalue()


NPZ = {"stored": _npz_bytes(False), "deflated": _npz_bytes(True)}


def _load_npz_or_data_error(path: Path) -> None:
    try:
        data = load_data(DataSpec(source=str(path)))
    except DataError as exc:
        event("npz: DataError")
        assert str(exc).startswith(str(path)), str(exc)
    else:
        event("npz: loaded")
        assert data.x.dtype.kind in "biuf" and len(data.x) == len(data.y)


def test_the_valid_npz_files_load(scratch):
    for kind, data in NPZ.items():
        loaded = load_data(DataSpec(source=str(_write(scratch, f"{kind}.npz", data))))
        assert loaded.x.shape == (6, 4) and loaded.y.tolist() == list(range(6))


@FUZZ
@given(kind=st.sampled_from(sorted(NPZ)), data=st.data())
def test_mutated_npz_is_loaded_or_a_data_error(scratch, kind, data):
    _load_npz_or_data_error(_write(scratch, "fuzz.npz", data.draw(mutations(NPZ[kind]))))


@FUZZ
@given(kind=st.sampled_from(sorted(NPZ)), data=st.data())
def test_truncated_npz_is_a_data_error(scratch, kind, data):
    cut = data.draw(st.integers(0, len(NPZ[kind]) - 1))
    with pytest.raises(DataError):
        load_data(DataSpec(source=str(_write(scratch, "fuzz.npz", NPZ[kind][:cut]))))


@FUZZ
@given(prefix=st.sampled_from([b"", b"PK\x03\x04", b"\x93NUMPY\x01\x00"]), body=st.binary(max_size=300))
def test_random_bytes_as_npz_are_a_data_error(scratch, prefix, body):
    with pytest.raises(DataError):
        load_data(DataSpec(source=str(_write(scratch, "fuzz.npz", prefix + body))))


@pytest.mark.parametrize("y, fragment", [
    (np.array([0.0, np.nan, 1.0]), "targets 'y' contain NaN or infinite values"),
    (np.array([0.0, np.inf, 1.0]), "targets 'y' contain NaN or infinite values"),
    (np.array(1.0), "targets 'y' have dtype float64 and shape ()"),
])
def test_bad_targets_are_refused_naming_the_array(tmp_path, y, fragment):
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 2), np.float32), y=y)
    with pytest.raises(DataError, match="d.npz") as info:
        load_data(DataSpec(source=str(tmp_path / "d.npz")))
    assert fragment in str(info.value)


def _npz_with_member(path: Path, member: bytes, compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr("x.npy", member)
    return path


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _forge_uncompressed_size(path: Path, size: int) -> None:
    """Make both headers of the only member declare ``size`` uncompressed bytes."""
    data = bytearray(path.read_bytes())
    struct.pack_into("<L", data, data.find(b"PK\x03\x04") + 22, size)
    struct.pack_into("<L", data, data.find(b"PK\x01\x02") + 24, size)
    path.write_bytes(bytes(data))


def test_npz_member_declaring_more_than_deflate_can_expand_is_refused_before_reading(tmp_path):
    path = _npz_with_member(tmp_path / "bomb.npz", _npy(np.zeros(1000)), zipfile.ZIP_DEFLATED)
    _forge_uncompressed_size(path, 0xFFFF_FF00)  # 4 GiB from a few dozen compressed bytes
    with pytest.raises(DataError, match=r"bomb.npz .*x.npy expands [\d,]+ times .*zip bomb"):
        load_data(DataSpec(source=str(path)))


def test_npz_member_compressed_with_bzip2_is_refused(tmp_path):
    path = _npz_with_member(tmp_path / "bz.npz", _npy(np.zeros(100_000)), zipfile.ZIP_BZIP2)
    with pytest.raises(DataError, match="x.npy uses zip compression method 12"):
        load_data(DataSpec(source=str(path)))


@pytest.mark.parametrize("member, fragment", [
    (b"\x93NUMPY\x01\x00v\x00" + b"{'descr': '<f8', 'fortran_order': False, 'shape': (4000000000000,), }"
     .ljust(117, b" ") + b"\n" + bytes(32), "declares shape (4000000000000,)"),
    (b"\x93NUMPY\x01\x00v\x00" + b"{'descr': '<f8', 'fortran_order': False, 'shape': (-3,), }"
     .ljust(117, b" ") + b"\n", "negative dimension"),
    (b"\x93NUMPY\x01\x00v\x00" + b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
     .ljust(117, b" ") + b"\n", "pickled Python objects"),
    (b"plain bytes, not an array", "not a valid .npy array"),
])
def test_npy_headers_are_checked_before_any_array_is_allocated(tmp_path, member, fragment):
    path = _npz_with_member(tmp_path / "h.npz", member)
    with pytest.raises(DataError, match="h.npz") as info:
        load_data(DataSpec(source=str(path)))
    assert fragment in str(info.value)


def test_an_npy_file_named_npz_is_a_data_error(tmp_path):
    (tmp_path / "a.npz").write_bytes(_npy(np.zeros(3)))
    with pytest.raises(DataError, match="a.npz is not a readable .npz file"):
        load_data(DataSpec(source=str(tmp_path / "a.npz")))


# --- image folders ---------------------------------------------------------------------------------

def _png_bytes() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = _png_bytes()


@FUZZ
@given(data=st.data())
def test_mutated_images_are_loaded_or_a_data_error(scratch, data):
    folder = scratch / "images"
    (folder / "a").mkdir(parents=True, exist_ok=True)
    _write(folder / "a", "0.png", data.draw(mutations(PNG)))
    try:
        load_data(DataSpec(source=str(folder)), input_shape=(None, 8, 8, 1))
    except DataError as exc:
        assert "0.png" in str(exc), str(exc)


def test_non_image_files_are_skipped_and_counted(tmp_path):
    (tmp_path / "a").mkdir()
    _write(tmp_path / "a", "0.png", PNG)
    _write(tmp_path / "a", "notes.txt", b"not an image")
    _write(tmp_path / "a", ".DS_Store", b"\0\0\0\1Bud1")
    data = load_data(DataSpec(source=str(tmp_path)), input_shape=(None, 8, 8, 1))
    assert len(data) == 1 and data.skipped_files == 2


def test_an_image_declaring_a_huge_canvas_is_refused_before_decoding(tmp_path):
    from PIL import Image

    from edgepack.loading.data import MAX_IMAGE_PIXELS

    (tmp_path / "a").mkdir()
    Image.new("1", (10_000, 10_000)).save(tmp_path / "a" / "huge.png")  # 1-bit: about 15 KB on disk
    with pytest.raises(DataError, match=f"huge.png is 10000x10000 pixels, more than the {MAX_IMAGE_PIXELS:,}"):
        load_data(DataSpec(source=str(tmp_path)), input_shape=(None, 8, 8, 1))


# --- .h5 -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def valid_h5(tmp_path_factory) -> bytes:
    """An .h5 laid out as tf_keras writes a whole model: the three text attributes and a weight."""
    h5py = pytest.importorskip("h5py", reason="h5py reads .h5 models; without it there is nothing to test")
    path = tmp_path_factory.mktemp("h5") / "model.h5"
    with h5py.File(path, "w") as handle:
        handle.attrs["keras_version"] = "2.21.0"
        handle.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"layers": [
            {"class_name": "Dense", "config": {"name": "dense", "units": 2}}]}}).encode()
        handle.attrs["training_config"] = json.dumps({"loss": "mse"}).encode()
        handle.create_dataset("model_weights/dense/kernel", data=np.ones((4, 2), np.float32))
    return path.read_bytes()


def test_the_valid_h5_is_identified(scratch, valid_h5):
    from edgepack.loading.model import identify_model

    info = identify_model(_write(scratch, "ok.h5", valid_h5))
    assert info.flavor.value == "tf_keras" and info.config["class_name"] == "Sequential"


@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_mutated_h5_is_read_or_a_model_error(scratch, worker, valid_h5, data):
    """Crashes and hangs inside HDF5 are acceptable here only because identify_model reads the
    attributes in a child process with a time limit (see the tests below); a Python exception
    other than ModelError is a bug."""
    path = _write(scratch, "fuzz.h5", data.draw(st.one_of(mutations(valid_h5), st.binary(max_size=600))))
    reply = worker.ask("h5", path, timeout=H5_HANG_SECONDS)
    event(f"h5: {reply['outcome']}")
    assert reply["outcome"] in {"ok", "ModelError", "crash", "hang"}, reply.get("detail")


@pytest.mark.parametrize("cut", [0, 8, 100, 1000, 2048, 4096])
def test_truncated_h5_is_a_model_error_on_the_command_line(run, scratch, valid_h5, cut):
    path = _write(scratch, f"cut{cut}.h5", valid_h5[:cut])
    assert_one_line_error(run("inspect", path), 4, f"cut{cut}.h5")


def test_an_h5_that_makes_hdf5_loop_is_cut_short(tmp_path):
    pytest.importorskip("h5py", reason="h5py reads .h5 models")
    from edgepack.loading.model import _read_h5

    path = _write(tmp_path, "loops.h5", H5_THAT_HANGS_HDF5)
    started = time.perf_counter()
    with pytest.raises(ModelError, match="loops.h5"):
        _read_h5(path, timeout=2)
    assert time.perf_counter() - started < 10


# --- .tflite ---------------------------------------------------------------------------------------

def tiny_tflite() -> bytes:
    """``relu(x + c)`` for x of shape (1, 4), written with LiteRT's flatbuffer schema (no TensorFlow)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    def code(builtin):
        opcode = schema.OperatorCodeT()
        opcode.builtinCode, opcode.deprecatedBuiltinCode, opcode.version = builtin, builtin, 1
        return opcode

    def tensor(name, buffer):
        result = schema.TensorT()
        result.name, result.shape, result.type, result.buffer = name, [1, 4], schema.TensorType.FLOAT32, buffer
        return result

    add, relu = schema.OperatorT(), schema.OperatorT()
    add.opcodeIndex, add.inputs, add.outputs = 0, [0, 1], [2]
    add.builtinOptionsType, add.builtinOptions = schema.BuiltinOptions.AddOptions, schema.AddOptionsT()
    relu.opcodeIndex, relu.inputs, relu.outputs = 1, [2], [3]
    graph = schema.SubGraphT()
    graph.tensors = [tensor("x", 1), tensor("c", 2), tensor("sum", 0), tensor("y", 3)]
    graph.inputs, graph.outputs, graph.operators = [0], [3], [add, relu]
    model = schema.ModelT()
    model.version, model.subgraphs = 3, [graph]
    model.operatorCodes = [code(schema.BuiltinOperator.ADD), code(schema.BuiltinOperator.RELU)]
    model.buffers = [schema.BufferT() for _ in range(4)]
    model.buffers[2].data = np.arange(4, dtype=np.float32).tobytes()
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.fixture(scope="module")
def valid_tflite() -> bytes:
    """The bytes of a tiny model LiteRT accepts."""
    pytest.importorskip("ai_edge_litert", reason="LiteRT runs .tflite models")
    pytest.importorskip("flatbuffers", reason="the tiny model is written with the flatbuffers package")
    return tiny_tflite()


def test_the_hand_written_tflite_runs(valid_tflite):
    from edgepack.runtime.interpreter import make_interpreter

    interpreter, _ = make_interpreter(valid_tflite, allow_tensorflow=False)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.array([[-5, 1, -1, 2]], np.float32))
    interpreter.invoke()
    assert interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).tolist() == [[0, 2, 1, 5]]


def _tiny_tflite_edited(edit) -> bytes:
    """The tiny model unpacked, changed by ``edit(model)``, and packed again."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(tiny_tflite()), 0)
    edit(model)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_a_tflite_input_name_that_is_not_utf8_is_a_model_error(valid_tflite):
    """Found by this file's fuzzing: LiteRT accepts the model, then get_input_details() raised
    UnicodeDecodeError in every command that reads the inputs."""
    from edgepack.runtime.interpreter import make_interpreter

    def rename(model):
        model.subgraphs[0].tensors[0].name = b"\xff\xfe"

    with pytest.raises(ModelError, match="corrupt or truncated .*utf-8"):
        make_interpreter(_tiny_tflite_edited(rename), allow_tensorflow=False)


def test_a_tflite_without_subgraphs_is_a_model_error(scratch, worker, valid_tflite):
    def drop_subgraphs(model):
        model.subgraphs = None  # absent, as a one-byte change to the table's vtable makes it

    reply = worker.ask("tflite", _write(scratch, "nograph.tflite", _tiny_tflite_edited(drop_subgraphs)), timeout=20)
    assert reply["outcome"] == "ModelError", reply


def _tflite_or_model_error(worker: Worker, folder: Path, data: bytes) -> None:
    reply = worker.ask("tflite", _write(folder, "fuzz.tflite", data), timeout=20)
    event(f"tflite: {reply['outcome']}")
    assert reply["outcome"] in {"ok", "ModelError"}, f"LiteRT: {reply['outcome']}: {reply.get('detail')}"


@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_mutated_tflite_is_loaded_or_a_model_error(scratch, worker, valid_tflite, data):
    _tflite_or_model_error(worker, scratch, data.draw(mutations(valid_tflite, max_edits=6)))


@FUZZ
@given(data=st.data())
def test_truncated_tflite_is_a_model_error(scratch, worker, valid_tflite, data):
    cut = data.draw(st.integers(0, len(valid_tflite) - 1))
    reply = worker.ask("tflite", _write(scratch, "fuzz.tflite", valid_tflite[:cut]), timeout=20)
    assert reply["outcome"] == "ModelError", reply


@FUZZ
@given(body=st.binary(min_size=4, max_size=400))
def test_random_bytes_with_the_tflite_identifier_are_a_model_error(scratch, worker, body):
    reply = worker.ask("tflite", _write(scratch, "fuzz.tflite", body[:4] + b"TFL3" + body[4:]), timeout=20)
    assert reply["outcome"] == "ModelError", reply


def test_a_tflite_path_that_is_not_a_regular_file_is_refused():
    from edgepack.runtime.interpreter import read_model_bytes

    with pytest.raises(ModelError, match="/dev/zero is not a regular file"):
        read_model_bytes("/dev/zero")
