"""``inspect`` for .tflite files: operators, tensor dtypes, I/O details, size, Edge TPU readiness.

Never imports TensorFlow. The file is verified by the LiteRT interpreter, given the bytes (the
flatbuffer verifier only runs on ``model_content``), before the schema reader walks it.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np

from edgepack.errors import ModelError
from edgepack.inspection.edgetpu import edgetpu_readiness, not_checked
from edgepack.inspection.fixes import fix_list
from edgepack.inspection.result import OpEntry, TensorIO, TfliteInspection
from edgepack.inspection.gpu import gpu_readiness
from edgepack.inspection.xnnpack_sparse import sparse_readiness
from edgepack.inspection.tflite_graph import (FLOAT_DTYPES, INTEGER_DTYPES, Graph, as_ints, as_text, op_type,
                                          parse_graph, schema_module)
from edgepack.runtime.interpreter import CORRUPT_HINT, make_interpreter, read_model_bytes

def _histogram(values) -> dict:
    counts: dict = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _io_details(details: list) -> list[TensorIO]:
    rows = []
    for d in details:  # the interpreter's own tensor details are dicts
        scale, zero_point = d.get("quantization", (0.0, 0))
        quantized = bool(scale)
        rows.append(TensorIO(name=d["name"], shape=as_ints(d["shape"]),
                             shape_signature=as_ints(d.get("shape_signature", d["shape"])),
                             dtype=np.dtype(d["dtype"]).name, scale=float(scale) if quantized else None,
                             zero_point=int(zero_point) if quantized else None))
    return rows


def quantization_scheme(graph: Graph) -> str:
    """``full-integer`` (integer everywhere, I/O included: ``full_integer`` is then true), ``int8
    (float I/O)`` (integer compute between a QUANTIZE and a DEQUANTIZE), ``int16x8``, ``mixed`` (int8
    with float islands), ``float16``, ``dynamic-range`` or ``float32``, judged from the activations of
    the compute operators."""
    compute = [op for op in graph.operators if op.name not in ("QUANTIZE", "DEQUANTIZE")]
    acts = {t.dtype for op in compute for t in graph.op_tensors(op) if not t.is_constant}
    produced = {graph.tensors[i].dtype for op in compute for i in op.outputs if i >= 0}
    consts = {t.dtype for t in graph.tensors if t.is_constant}
    float_acts = acts & FLOAT_DTYPES
    if acts and not float_acts:
        if "int16" in produced:  # an int8 LSTM's int16 cell state is an input it keeps, not what it computes
            return "int16x8"
        io_float = any(graph.tensors[i].dtype in FLOAT_DTYPES for i in (*graph.inputs, *graph.outputs))
        return "int8 (float I/O)" if io_float else "full-integer"
    if acts & {"int8", "uint8", "int16"}:
        return "mixed"
    if "float16" in consts:
        return "float16"
    if consts & {"int8", "uint8", "int4"}:
        return "dynamic-range"
    return "float32"


def _min_runtime_version(model) -> str | None:
    for entry in model.metadata or []:
        if as_text(entry.name) == "min_runtime_version" and 0 < entry.buffer < len(model.buffers or []):
            raw = model.buffers[entry.buffer].data
            return bytes(raw).split(b"\0")[0].decode("ascii", "replace") if raw is not None else None
    return None


def _schema_fields(model, graph: Graph) -> dict:
    used = graph.used_tensors()
    floats = [t for t in used if t.dtype in FLOAT_DTYPES]
    gpu = gpu_readiness(graph)
    return {
        "schema_version": int(model.version),
        "description": as_text(model.description),
        "min_runtime_version": _min_runtime_version(model),
        "subgraphs": len(model.subgraphs),
        "operator_count": len(graph.operators),
        "operators": _histogram(op.name for op in graph.operators),
        "tensor_count": len(graph.tensors),
        "tensor_dtypes": _histogram(t.dtype for t in graph.tensors),
        "full_integer": all(t.dtype in INTEGER_DTYPES for t in used),
        "float_tensor_count": len(floats),
        "quantization": quantization_scheme(graph),
        "edgetpu": edgetpu_readiness(graph),
        "gpu": gpu,
        "fixes": fix_list(graph, gpu),
        "xnnpack_sparse": sparse_readiness(model, graph),
        "ops": [OpEntry(index=op.index, op=op.name, type=op_type(op, graph),
                        outputs=[graph.tensors[i].name for i in op.outputs if i >= 0]) for op in graph.operators],
    }


def _interpreter_fields(interpreter) -> dict:
    """What can be said without the schema (tflite-runtime only): from the tensor details."""
    dtypes = [np.dtype(d["dtype"]).name for d in interpreter.get_tensor_details()]
    integer = all(d in INTEGER_DTYPES for d in dtypes)
    why = "operators were not read: tflite-runtime has no schema reader; install ai-edge-litert"
    return {"schema_version": None, "description": None, "min_runtime_version": None,
            "subgraphs": None, "operator_count": None, "operators": None,
            "tensor_count": len(dtypes), "tensor_dtypes": _histogram(dtypes),
            "full_integer": integer, "float_tensor_count": sum(d in FLOAT_DTYPES for d in dtypes),
            "quantization": "full-integer" if integer else None,
            "edgetpu": not_checked(why), "notes": [why]}


def inspect_tflite(path: str | Path) -> TfliteInspection:
    """Describe the .tflite file at ``path`` (no TensorFlow import): operators, tensor types, I/O, size,
    quantization scheme, Edge TPU / GPU / XNNPACK-sparse readiness and the fix-it list. Raises ModelError for
    a missing, empty, truncated or non-TFLite file; RuntimeUnavailable when no runtime is installed.
    """
    path = Path(path)
    data = read_model_bytes(path)
    interpreter, runtime = make_interpreter(data, where=str(path), allocate=False, allow_tensorflow=False)
    schema = schema_module()
    summary = {
        "kind": "tflite", "path": str(path), "size_bytes": len(data),
        "gzip_size_bytes": len(gzip.compress(data, compresslevel=9, mtime=0)),
        "sha256": hashlib.sha256(data).hexdigest(),
        "runtime": runtime,
        "inputs": _io_details(interpreter.get_input_details()),
        "outputs": _io_details(interpreter.get_output_details()),
    }
    if schema is None:
        summary.update(_interpreter_fields(interpreter))
    else:
        model, graph = parse_graph(schema, data, path)
        try:
            summary.update(_schema_fields(model, graph))
        except (IndexError, KeyError, TypeError, ValueError) as exc:  # tensor indices the verifier let through
            raise ModelError(f"{path} could not be read as a TFLite model: {type(exc).__name__}: {exc}",
                             hint=CORRUPT_HINT) from None
    return TfliteInspection.model_validate(summary)
