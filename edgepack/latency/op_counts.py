"""The work each operator of a .tflite graph does: multiply-accumulates (MACs) and bytes moved.

Computed from the flatbuffer schema (tensor shapes and dtypes), without running the model:

- CONV_2D: output elements x kernel height x kernel width x input channels (filter ``[O, kh, kw, I]``);
- DEPTHWISE_CONV_2D: output elements x kh x kw (filter ``[1, kh, kw, O]``);
- FULLY_CONNECTED: output elements x input features (weights ``[units, in]``);
- TRANSPOSE_CONV: input elements x kh x kw x output channels; CONV_3D and BATCH_MATMUL likewise;
- every other operator: no MACs, one element-wise operation per output element.

Bytes moved are the bytes of every tensor an operator reads (weights included) or writes;
``parameter_bytes`` gives the bytes of the constants alone (what an accelerator caches or streams).
A DEQUANTIZE of a constant (float16 weights) costs nothing: runtimes fold it when the model loads;
nor do RESHAPE, SQUEEZE, EXPAND_DIMS and SHAPE, which only relabel a buffer or read a shape. With a
dynamic batch the shapes come from the runtime, sized to batch 1 and run once on zeros.
"""

from __future__ import annotations

import math

import numpy as np
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from edgepack.errors import ModelError, RuntimeUnavailable

ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int8": 1, "uint8": 1, "int16": 2,
            "uint16": 2, "int32": 4, "uint32": 4, "int64": 8, "uint64": 8, "bool": 1, "int4": 0.5}
MAC_OPS = {"CONV_2D": "conv", "DEPTHWISE_CONV_2D": "depthwise", "FULLY_CONNECTED": "matmul",
           "TRANSPOSE_CONV": "conv", "CONV_3D": "conv", "BATCH_MATMUL": "matmul"}
COMPUTE_DTYPES = ("float32", "float16", "dynamic", "int8", "int16x8")
# Operators that only relabel a buffer (the runtimes share it) or compute a shape: no arithmetic, no data moved.
FREE_OPS = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "SHAPE"}


@dataclass(frozen=True)
class OpWork:
    """One operator's work. ``dtype`` is its arithmetic: float32, float16, dynamic, int8 or int16x8."""

    index: int
    op: str
    kind: str          # conv | depthwise | matmul | elementwise | folded
    dtype: str
    macs: int
    elements: int
    bytes: int

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ModelWork:
    """The per-operator work of a model's main subgraph, and the model's quantization scheme."""

    ops: list
    scheme: str
    graph: object  # edgepack.inspection.tflite_graph.Graph

    @property
    def macs(self) -> int:
        return sum(op.macs for op in self.ops)

    @property
    def bytes(self) -> int:
        return sum(op.bytes for op in self.ops)


def _elements(shape) -> int:
    return int(math.prod(max(int(d), 1) for d in shape)) if len(shape) else 1


def _bytes(tensor) -> int:
    return int(math.ceil(_elements(tensor.shape) * ITEMSIZE.get(tensor.dtype, 4)))


def _compute_dtype(inputs: list, scheme: str, name: str = "") -> str:
    activations = [t for t in inputs if not t.is_constant]
    act = activations[0].dtype if activations else (inputs[0].dtype if inputs else "float32")
    if act in ("int8", "uint8"):
        int4 = name == "CONV_2D" and any(t.is_constant and t.dtype == "int4" for t in inputs)
        return "int4_conv" if int4 else "int8"
    if act == "int16":
        return "int16x8"
    if act in ("float32", "float64", "bfloat16") and any(t.is_constant and t.dtype in ("int8", "uint8", "int4")
                                                         for t in inputs):
        return "dynamic"
    if act == "float16" or scheme == "float16":
        return "float16"
    return "float32"


def _macs(name: str, inputs: list, outputs: list) -> int:
    out = _elements(outputs[0].shape) if outputs else 0
    shape = lambda i: [max(int(d), 1) for d in inputs[i].shape] if len(inputs) > i else []  # noqa: E731
    if name == "CONV_2D" and len(shape(1)) == 4:
        _, kh, kw, cin = shape(1)
        return out * kh * kw * cin
    if name == "DEPTHWISE_CONV_2D" and len(shape(1)) == 4:
        return out * shape(1)[1] * shape(1)[2]
    if name == "FULLY_CONNECTED" and len(shape(1)) == 2:
        return out * shape(1)[1]
    if name == "TRANSPOSE_CONV" and len(inputs) >= 3 and len(shape(1)) == 4:
        cout, kh, kw, _ = shape(1)
        return _elements(inputs[2].shape) * kh * kw * cout
    if name == "CONV_3D" and len(shape(1)) == 5:
        kd, kh, kw, cin, _ = shape(1)
        return out * kd * kh * kw * cin
    if name == "BATCH_MATMUL" and shape(0):
        return out * shape(0)[-1]
    return 0


def op_work(graph, scheme: str) -> list[OpWork]:
    """The work of every operator of ``graph`` (an ``edgepack.inspection.tflite_graph.Graph``)."""
    rows = []
    for op in graph.operators:
        inputs = [graph.tensors[i] for i in op.inputs if i >= 0]
        outputs = [graph.tensors[i] for i in op.outputs if i >= 0]
        dtype = _compute_dtype(inputs, scheme, op.name)
        if op.name in FREE_OPS or (op.name == "DEQUANTIZE" and inputs and all(t.is_constant for t in inputs)):
            rows.append(OpWork(op.index, op.name, "folded", dtype, 0, 0, 0))
            continue
        macs = _macs(op.name, inputs, outputs)
        kind = MAC_OPS.get(op.name, "elementwise") if macs else "elementwise"
        elements = sum(_elements(t.shape) for t in outputs)
        moved = sum(_bytes(t) for t in (*inputs, *outputs))
        rows.append(OpWork(op.index, op.name, kind, dtype, macs, elements, moved))
    return rows


def parameter_bytes(graph) -> list[int]:
    """Per operator of ``graph``, the bytes of the constant tensors (weights, biases) it reads; a
    constant that several operators read counts once, at the first of them."""
    seen, sizes = set(), []
    for op in graph.operators:
        fresh = {i for i in op.inputs if i >= 0 and i not in seen and graph.tensors[i].is_constant}
        seen |= fresh
        sizes.append(sum(_bytes(graph.tensors[i]) for i in fresh))
    return sizes


def _with_resolved_shapes(graph, interpreter):
    """``graph`` with the shapes the runtime computes for batch 1. With a dynamic batch the converter
    stores 1 for every dimension it cannot know (a Dense over [-1, 56, 56, 96] is stored as one row of
    96): the interpreter, sized to batch 1 and run once on zeros, gives the real shapes."""
    if not any(-1 in [int(d) for d in (t.shape_signature or [])] for t in graph.tensors):
        return graph
    from edgepack.util.quiet import captured_native_output

    try:
        for detail in interpreter.get_input_details():
            interpreter.resize_tensor_input(detail["index"], [1, *[max(int(d), 1) for d in detail["shape"][1:]]])
        with captured_native_output():  # the runtime announces its delegate on stderr
            interpreter.allocate_tensors()
            for detail in interpreter.get_input_details():  # shapes computed by SHAPE/RESHAPE settle when run
                interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], dtype=detail["dtype"]))
            interpreter.invoke()
        resolved = {d["index"]: [int(x) for x in d["shape"]] for d in interpreter.get_tensor_details()}
    except (ValueError, RuntimeError):  # a model the runtime cannot run here: keep the stored shapes
        return graph
    tensors = [replace(t, shape=resolved.get(i, t.shape)) if len(resolved.get(i, [])) == len(t.shape) else t
               for i, t in enumerate(graph.tensors)]
    return replace(graph, tensors=tensors)


def model_work(path: str | Path, data: bytes | None = None) -> ModelWork:
    """Read and verify the .tflite at ``path`` and return its per-operator work.

    ModelError for a missing or corrupt file; RuntimeUnavailable when ai-edge-litert (which
    carries the schema reader) is not installed.
    """
    from edgepack.inspection import tflite_model as tm
    from edgepack.runtime.interpreter import make_interpreter, read_model_bytes

    path = Path(path)
    data = read_model_bytes(path) if data is None else data
    schema = tm.schema_module()
    if schema is None:
        raise RuntimeUnavailable("reading a model's operators needs ai-edge-litert's schema reader",
                                 hint="pip install ai-edge-litert")
    interpreter, _ = make_interpreter(data, where=str(path), allocate=False, allow_tensorflow=False)  # verifier runs
    _, graph = tm.parse_graph(schema, data, path)
    graph = _with_resolved_shapes(graph, interpreter)
    if not graph.operators:
        raise ModelError(f"{path} has no operators", hint="convert the model again")
    scheme = tm.quantization_scheme(graph)
    return ModelWork(op_work(graph, scheme), scheme, graph)
