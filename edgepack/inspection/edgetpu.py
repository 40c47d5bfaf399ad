"""Coral Edge TPU readiness of a .tflite graph, predicted without the Edge TPU compiler.

The rules are Coral's model requirements (https://coral.ai/docs/edgetpu/models-intro/): every
tensor int8/uint8 (int32 only for constants such as biases), static shapes, batch 1, at most three
dimensions larger than 1, and only the operations on the supported list. The compiler cuts the graph
once, at the first operation it cannot map: that operation and every one after it run on the CPU.

The list below follows the "Supported operations" table of Edge TPU compiler v16, in the schema's
BuiltinOperator names. ``OP_CHECKS`` is where per-operation constraints (``LIMITATIONS``) go.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from edgepack.inspection.result import EdgeTpuReadiness, OpBlock

if TYPE_CHECKING:
    from edgepack.inspection.tflite_graph import Graph, OpInfo, TensorInfo

SOURCE = "https://coral.ai/docs/edgetpu/models-intro/#supported-operations (compiler v16)"

SUPPORTED_OPS = frozenset({
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "EXPAND_DIMS",
    "FULLY_CONNECTED", "L2_NORMALIZATION", "LOGISTIC", "LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM",
    "MAXIMUM", "MAX_POOL_2D", "MEAN", "MINIMUM", "MUL", "PACK", "PAD", "PRELU", "QUANTIZE",
    "REDUCE_MAX", "REDUCE_MIN", "RELU", "RELU6", "RELU_N1_TO_1", "RESHAPE", "RESIZE_BILINEAR",
    "RESIZE_NEAREST_NEIGHBOR", "RSQRT", "SLICE", "SOFTMAX", "SPACE_TO_DEPTH", "SPLIT", "SQUEEZE",
    "STRIDED_SLICE", "SUB", "SUM", "SQUARED_DIFFERENCE", "TANH", "TRANSPOSE", "TRANSPOSE_CONV",
})

# Documented limits of listed operations; not checked yet (a check goes into OP_CHECKS).
LIMITATIONS = {
    "AVERAGE_POOL_2D": "no fused activation function",
    "MAX_POOL_2D": "no fused activation function",
    "CONCATENATION": "no fused activation; a constant input must be all zeros, with only 2 inputs",
    "CONV_2D": "same dilation in x and y",
    "DEPTHWISE_CONV_2D": "same dilation in x and y",
    "FULLY_CONNECTED": "default weights format only; one-dimensional output",
    "LSTM": "unidirectional only",
    "MEAN": "not over the batch dimension; a z-reduction needs z to be a multiple of 4",
    "PACK": "not along the batch dimension",
    "PAD": "not along the batch dimension",
    "PRELU": "alpha one-dimensional (Keras: shared_axes=[1, 2] for 4-D inputs)",
    "REDUCE_MAX": "not over the batch dimension",
    "REDUCE_MIN": "not over the batch dimension",
    "RESHAPE": "some reshapes of large tensors are not mapped",
    "RESIZE_BILINEAR": "3-D input and output; may stay on the CPU for precision at some sizes",
}

# Per-operation constraint checks: name -> f(op, graph) returning why it cannot map, or None.
OP_CHECKS: dict[str, Callable[["OpInfo", "Graph"], str | None]] = {}

# A dynamic batch makes the converter compute shapes at run time (Flatten: SHAPE, STRIDED_SLICE, PACK on
# int32 tensors, then RESHAPE); with the batch fixed at 1 they fold into constants.
SHAPE_OPS = frozenset({"SHAPE", "RANK", "BROADCAST_ARGS", "FILL"})
STATIC_BATCH_FIX = ("the model computes shapes at run time (a dynamic batch size): convert with --static-batch "
                    "so the converter folds them into constants")
ALTERNATIVES = {
    "LEAKY_RELU": "use ReLU or PReLU instead of LeakyReLU",
    "HARD_SWISH": "use ReLU6 instead of hard-swish",
    "GELU": "use ReLU instead of GELU",
    "DEQUANTIZE": "quantize the whole model, inputs and outputs included (--mode int8 --io int8)",
    "CUSTOM:edgetpu-custom-op": "this file was already compiled by edgetpu_compiler; inspect the"
                                " model from before compilation",
}

_EDGE_DTYPES = {"int8", "uint8"}
_FLOAT_DTYPES = {"float16", "float32", "float64", "bfloat16"}


def _dtype_allowed(tensor: "TensorInfo") -> bool:
    return tensor.dtype in _EDGE_DTYPES or (tensor.dtype == "int32" and tensor.is_constant)


def _too_many_dims(tensor: "TensorInfo") -> bool:
    """Coral: beyond 3 dimensions only the 3 innermost may exceed 1 (weights are exempt)."""
    dims = tensor.shape_signature or tensor.shape
    return not tensor.is_constant and len(dims) > 3 and any(d != 1 for d in dims[:-3])


def op_blocker(op: "OpInfo", graph: "Graph") -> str | None:
    """Why the Edge TPU compiler would not map ``op``, or None when it is expected to map."""
    if op.name not in SUPPORTED_OPS:
        return "not on the Edge TPU supported operations list"
    for tensor in graph.op_tensors(op):
        if not _dtype_allowed(tensor):
            return f"works on {tensor.dtype} tensor '{tensor.name}'"
        if _too_many_dims(tensor):
            return f"tensor '{tensor.name}' has more than 3 dimensions larger than 1"
    check = OP_CHECKS.get(op.name)
    return check(op, graph) if check else None


def _float_only_at_io(graph: "Graph", bad: list["TensorInfo"]) -> bool:
    """True when the float tensors only feed QUANTIZE or come out of DEQUANTIZE (float model I/O)."""
    edge = set()
    for op in graph.operators:
        if op.name == "QUANTIZE":
            edge.update(op.inputs)
        elif op.name == "DEQUANTIZE":
            edge.update(op.outputs)
    return all(t.index in edge for t in bad)


def _plural(count: int, name: str, dtype: str) -> str:
    return f"tensor '{name}' is {dtype}" if count == 1 else f"{count} tensors are {dtype} (first: '{name}')"


def _dtype_reasons(graph: "Graph") -> list[str]:
    bad = [t for t in graph.used_tensors() if not _dtype_allowed(t)]
    by_dtype: dict[str, list] = {}
    for tensor in bad:
        by_dtype.setdefault(tensor.dtype, []).append(tensor)
    floats = [t for t in bad if t.dtype in _FLOAT_DTYPES]
    io_only = floats and "int16" not in by_dtype and _float_only_at_io(graph, floats)
    float_fix = ("convert with --io int8 (or uint8) so the inputs and outputs are integer too"
                 if io_only else "quantize with --mode int8 --io int8")
    reasons = []
    for dtype, tensors in sorted(by_dtype.items(), key=lambda kv: kv[0] not in _FLOAT_DTYPES):
        head = _plural(len(tensors), tensors[0].name, dtype)
        if dtype in _FLOAT_DTYPES:
            reasons.append(f"{head}: the Edge TPU needs a fully int8/uint8 quantized model — {float_fix}")
        elif dtype == "int16":
            reasons.append(f"{head}: the Edge TPU has no 16-bit activations — quantize with --mode int8")
        elif dtype == "int4":
            reasons.append(f"{head}: the Edge TPU compiler takes int8 weights only (int4 would run on the CPU) "
                           f"— quantize with --weights int8")
        else:
            fix = ("quantize with --mode int8" if all(t.is_constant for t in tensors)
                   else "remove the operation that produces it")
            reasons.append(f"{head}: the Edge TPU handles int8/uint8 tensors (int32 only for constants)"
                           f" — {fix}")
    return reasons


def _shape_reasons(graph: "Graph") -> list[str]:
    reasons = []
    dynamic = [t for t in graph.tensors if -1 in t.shape_signature]
    if dynamic:
        first = dynamic[0]
        count = f"{len(dynamic)} tensors have" if len(dynamic) > 1 else "tensor has"
        reasons.append(f"{count} a dynamic shape (first: '{first.name}', {first.shape_signature}):"
                       " the Edge TPU needs static shapes and batch 1 — export the model with a fixed"
                       " input shape and batch size 1 (keras.Input(shape, batch_size=1))")
    for index in graph.inputs:
        tensor = graph.tensors[index]
        if len(tensor.shape) >= 2 and tensor.shape[0] > 1:
            reasons.append(f"input '{tensor.name}' has batch {tensor.shape[0]}: the Edge TPU needs"
                           " batch 1 — export the model with batch size 1")
    return reasons


def fix_for(op: "OpInfo", why: str) -> str:
    """What to change so that ``op``, which the Edge TPU cannot run because ``why``, maps to it."""
    if op.name in ALTERNATIVES:
        return ALTERNATIVES[op.name]
    if op.name in SHAPE_OPS or "int32" in why:
        return STATIC_BATCH_FIX
    if why.startswith("not on"):
        return "replace it with an operation the Edge TPU supports"
    if why.startswith("works on"):
        return "quantize the whole model to int8, inputs and outputs included (--mode int8 --io int8)"
    if "dimensions" in why:
        return "convert with --static-batch (batch size 1, every shape static)"
    return f"respect the Edge TPU limits for {op.name}: {LIMITATIONS.get(op.name, 'see ' + SOURCE)}"


def _cut_reason(index: int, op: "OpInfo", why: str, total: int) -> str:
    after = total - index - 1
    fix = fix_for(op, why)
    return (f"operator {index} {op.name} cannot run on the Edge TPU ({why}): it and the {after}"
            f" operator(s) after it would run on the CPU — {fix}")


def edgetpu_readiness(graph: "Graph") -> EdgeTpuReadiness:
    """Predict how the Edge TPU compiler treats the main subgraph of ``graph``.

    ``ops_mappable`` counts the operations before the predicted cut; ``source`` says where the rules come from.
    """
    reasons = _dtype_reasons(graph) + _shape_reasons(graph)
    total = len(graph.operators)
    first = None
    for op in graph.operators:
        why = op_blocker(op, graph)
        if why:
            first = OpBlock(index=op.index, op=op.name, reason=why)
            reasons.append(_cut_reason(op.index, op, why, total))
            break
    if total == 0:
        reasons.append("the model has no operators — convert it again")
    return EdgeTpuReadiness(ready=not reasons, reasons=reasons, ops_total=total,
                            ops_mappable=first.index if first else total, first_unsupported=first, source=SOURCE)


def not_checked(why: str) -> EdgeTpuReadiness:
    """The readiness summary when the operators could not be read (``ready`` is False)."""
    return EdgeTpuReadiness(ready=False, reasons=[why], source=SOURCE)
