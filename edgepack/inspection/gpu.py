"""GPU-delegate readiness of a .tflite graph: which ops the LiteRT GPU delegate would leave on the CPU.

GPU delegates fall back to the CPU silently. This predicts it from the graph, with the rules of the
delegate's own op parser (tensorflow/lite/delegates/gpu/common/model_builder.cc, NewOperationParser
and GetOpsToReplace): an op is delegated when the parser knows it and every non-constant tensor it
touches is float32 or float16 (int8/uint8 too when quantized models are enabled); DEQUANTIZE of
float16 weights is absorbed; by default only the largest partition of supported ops is delegated.
Per-op parameter limits (e.g. a transpose conv's options) are not checked: it is a prediction.
"""

from __future__ import annotations

from edgepack.inspection.result import GpuReadiness, OpBlock

GPU_OPS = frozenset({
    "ABS", "ADD", "AVERAGE_POOL_2D", "BATCH_MATMUL", "CONCATENATION", "CONV_2D", "COS", "DEPTHWISE_CONV_2D",
    "DIV", "ELU", "EXP", "FULLY_CONNECTED", "HARD_SWISH", "LOGISTIC", "LOG", "LSTM", "MAXIMUM", "MAX_POOL_2D",
    "MEAN", "MINIMUM", "MIRROR_PAD", "MUL", "NEG", "PACK", "PAD", "POW", "REDUCE_MAX", "REDUCE_MIN",
    "REDUCE_PROD", "RELU", "RELU6", "LEAKY_RELU", "PRELU", "RESHAPE", "RESIZE_BILINEAR",
    "RESIZE_NEAREST_NEIGHBOR", "RSQRT", "SIN", "SLICE", "SOFTMAX", "SPACE_TO_DEPTH", "SPLIT_V", "SQRT",
    "SQUARE", "SQUARED_DIFFERENCE", "STRIDED_SLICE", "SUB", "SUM", "TANH", "TRANSPOSE", "TRANSPOSE_CONV",
    "CUSTOM:Convolution2DTransposeBias", "CUSTOM:MaxPoolingWithArgmax2D", "CUSTOM:MaxUnpooling2D",
})
QUANT_OPS = frozenset({"QUANTIZE", "DEQUANTIZE"})
SOURCE = ("LiteRT GPU delegate op parser (tensorflow/lite/delegates/gpu/common/model_builder.cc); "
          "predicted from the graph, per-op parameter limits not checked")


def _blocker(op, graph, allow_quant: bool) -> str | None:
    tensors = graph.op_tensors(op)
    if op.name == "DEQUANTIZE" and tensors and tensors[0].dtype == "float16":
        return None  # float16 weights: the delegate folds these away
    if op.name not in GPU_OPS and not (allow_quant and op.name in QUANT_OPS):
        return f"{op.name} is not an operator the GPU delegate implements"
    allowed = {"float32", "float16"} | ({"int8", "uint8"} if allow_quant else set())
    packed = next((t for t in tensors if t.is_constant and t.dtype == "int4"), None)
    if packed is not None:
        return f"weights '{packed.name}' are int4; the GPU delegate has no int4 kernels (quantize with --weights int8)"
    bad = next((t for t in tensors if not t.is_constant and t.dtype not in allowed), None)
    if bad is not None:
        return f"tensor '{bad.name}' is {bad.dtype}; the GPU delegate computes in float32/float16"
    return None


def gpu_readiness(graph, *, allow_quant: bool = False) -> GpuReadiness:
    """``fully_delegated``, ``ops_total``, ``ops_on_gpu`` (the largest run of supported ops, which is
    what the delegate takes by default), ``cpu_ops`` (``{index, op, reason}`` each) and ``source``."""
    blockers = [_blocker(op, graph, allow_quant) for op in graph.operators]
    best_start, best_len, start = 0, 0, None
    for index, blocked in enumerate([*blockers, "end"]):
        if blocked is None and start is None:
            start = index
        elif blocked is not None and start is not None:
            if index - start > best_len:
                best_start, best_len = start, index - start
            start = None
    on_gpu = set(range(best_start, best_start + best_len))
    cpu_ops = [OpBlock(index=op.index, op=op.name,
                       reason=blockers[i] or "outside the largest delegated partition (the delegate takes one)")
               for i, op in enumerate(graph.operators) if i not in on_gpu]
    total = len(graph.operators)
    return GpuReadiness(fully_delegated=total > 0 and not cpu_ops, ops_total=total, ops_on_gpu=best_len,
                        cpu_ops=cpu_ops, source=SOURCE)
