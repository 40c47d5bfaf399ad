"""The graph of a .tflite read with the flatbuffer schema: tensors, operators, their dtypes and shapes.

Never imports TensorFlow. ``parse_graph`` expects bytes the LiteRT interpreter has verified.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from edgepack.errors import ModelError
from edgepack.runtime.interpreter import CORRUPT_HINT


INTEGER_DTYPES = {"int8", "uint8", "int16", "int32", "int64", "bool",
                  "int4", "uint16", "uint32", "uint64"}
FLOAT_DTYPES = {"float16", "float32", "float64", "bfloat16"}


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of the main subgraph, as the schema describes it."""

    index: int
    name: str
    dtype: str
    shape: list
    shape_signature: list
    is_constant: bool


@dataclass(frozen=True)
class OpInfo:
    """One operator of the main subgraph; ``index`` is its position in execution order."""

    index: int
    name: str
    inputs: tuple
    outputs: tuple


@dataclass(frozen=True)
class Graph:
    """The main subgraph: tensors, operators in execution order, graph input/output indices."""

    tensors: list
    operators: list
    inputs: list
    outputs: list

    def op_tensors(self, op: OpInfo) -> list:
        """The tensors ``op`` reads or writes (optional inputs, index -1, left out)."""
        return [self.tensors[i] for i in (*op.inputs, *op.outputs) if i >= 0]

    def used_tensors(self) -> list:
        """Every tensor an operator reads or writes, plus the graph inputs and outputs, once each."""
        seen = {i for op in self.operators for i in (*op.inputs, *op.outputs) if i >= 0}
        seen.update(self.inputs, self.outputs)
        return [self.tensors[i] for i in sorted(seen)]


def schema_module():
    """The LiteRT flatbuffer schema module, or None where only tflite-runtime is installed."""
    try:
        return importlib.import_module("ai_edge_litert.schema_py_generated")
    except ImportError:
        return None


def as_text(value) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def as_ints(values) -> list:
    return [] if values is None else [int(v) for v in values]


def _names(enum_cls) -> dict:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_")}


def _is_constant(model, tensor) -> bool:
    if tensor.buffer <= 0 or tensor.buffer >= len(model.buffers or []):
        return False
    buffer = model.buffers[tensor.buffer]
    return (buffer.data is not None and len(buffer.data) > 0) or buffer.offset > 1


def _op_name(schema, code, op_names: dict) -> str:
    builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
    if builtin == schema.BuiltinOperator.CUSTOM:
        return f"CUSTOM:{as_text(code.customCode)}"
    return op_names.get(builtin, f"UNKNOWN_{builtin}")


def _graph(schema, model) -> Graph:
    sub = model.subgraphs[0]
    dtypes, op_names = _names(schema.TensorType), _names(schema.BuiltinOperator)
    tensors = []
    for index, t in enumerate(sub.tensors or []):
        shape = as_ints(t.shape)
        tensors.append(TensorInfo(index, as_text(t.name), dtypes.get(t.type, f"type{t.type}").lower(),
                                  shape, as_ints(t.shapeSignature) or shape, _is_constant(model, t)))
    codes = model.operatorCodes or []
    operators = [OpInfo(i, _op_name(schema, codes[op.opcodeIndex], op_names),
                        tuple(as_ints(op.inputs)), tuple(as_ints(op.outputs)))
                 for i, op in enumerate(sub.operators or [])]
    return Graph(tensors, operators, as_ints(sub.inputs), as_ints(sub.outputs))


def parse_graph(schema, data: bytes, path: Path):
    """Unpack the verified flatbuffer: ``(model object, main Graph)``."""
    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
        if not model.subgraphs:
            raise ValueError("no subgraphs")
        return model, _graph(schema, model)
    except Exception as exc:  # the verifier passed, so this is a schema the reader cannot follow
        raise ModelError(f"{path} could not be read as a TFLite model: {exc}", hint=CORRUPT_HINT) from None


def op_type(op: OpInfo, graph: Graph) -> str:
    """How an operator computes: int8, int16 (int16x8), float32, float16 (float16 weights expanded),
    hybrid (int8 weights, float math), or int32/int64/bool for shape arithmetic, from the dtypes of its
    output and constant inputs."""
    outputs = [graph.tensors[i].dtype for i in op.outputs if i >= 0]
    constants = [graph.tensors[i].dtype for i in op.inputs if i >= 0 and graph.tensors[i].is_constant]
    if any(d in ("int8", "uint8") for d in outputs):
        return "int8"
    if "int16" in outputs:
        return "int16"
    if outputs and all(d in ("int32", "int64", "bool") for d in outputs):
        return outputs[0]  # shape arithmetic (SHAPE, STRIDED_SLICE, PACK): neither float nor quantized
    if "int8" in constants:
        return "hybrid"
    if "float16" in constants or "float16" in outputs:
        return "float16"
    return "float32"
