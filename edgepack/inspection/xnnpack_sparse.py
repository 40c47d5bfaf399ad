"""Whether XNNPACK runs a float .tflite through its sparse kernels, and which condition fails first.

XNNPACK switches a run of operators to its NCHW layout, where 1x1 convolutions use sparse kernels, when
(XNNPACK ``src/subgraph.c``, ``xnn_check_nchw_compatibility`` and ``xnn_subgraph_rewrite_for_nchw``; the
LiteRT delegate ``xnnpack_delegate.cc``): the model is float (float32 or float16); some weights are stored
sparse (the converter's sparsity optimisation writes them with a DENSIFY operator, and that is what
makes the delegate ask for sparse inference); the run starts with a 3x3 stride-2 CONV_2D on 3 channels
padded by 1 on every side; inside it are only 1x1 stride-1 unpadded CONV_2D, 3x3 or 5x5 DEPTHWISE_CONV_2D
(stride 1 or 2, explicit padding of 1 or 2 on every side: a PAD before a VALID convolution, which
XNNPACK fuses; TensorFlow's SAME padding is refused), ADD/MUL and one-input operators on 4-D tensors;
it ends with a spatial MEAN; and at least 2/3 of the 1x1 convolutions' weights are zero. XNNPACK takes
that path on ARM and on x86 without AVX only (``xnn_is_chw_compatible_config``).
Read from the flatbuffer only (no runtime), so ``inspect`` can say it for any model.
"""

from __future__ import annotations

import numpy as np

from edgepack.inspection.result import SparseCondition, SparseReadiness

SOURCE = "XNNPACK src/subgraph.c (xnn_check_nchw_compatibility), read from the graph; not run"
WHERE = ("XNNPACK takes its sparse path on ARM (and x86 without AVX); on x86 with AVX it runs every model dense "
         "(src/xnnpack/hardware-config.h: dense is faster there), so the speed-up shows on phones and boards")
MIN_ZEROS = 2 / 3
UNARY = {"RELU", "RELU6", "RELU_N1_TO_1", "HARD_SWISH", "LOGISTIC", "TANH", "ELU", "LEAKY_RELU", "ABS", "NEG",
         "SQUARE", "SQRT", "RSQRT", "FLOOR", "CEIL", "ROUND", "EXP", "GELU"}
PREP = {"DENSIFY", "DEQUANTIZE"}  # operators that only prepare constant weights


def _options(model, op):
    return model.subgraphs[0].operators[op.index].builtinOptions


def _padding(model, graph, op, producers) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) padding of a conv/depthwise: a PAD's constant before a VALID one (XNNPACK
    fuses the two); SAME at stride 1 is the kernel's half on every side (XNNPACK turns it explicit); None
    for SAME at a larger stride (it keeps TensorFlow's SAME flag, which sparse inference refuses)."""
    options = _options(model, op)
    if options.padding == 0:  # SAME
        if (options.strideH, options.strideW) != (1, 1):
            return None
        kernel = graph.tensors[op.inputs[1]].shape
        height, width = kernel[1] - 1, kernel[2] - 1
        return (height // 2, height - height // 2, width // 2, width - width // 2)
    pad = producers.get(op.inputs[0])
    if pad is None or pad.name not in ("PAD", "PADV2"):
        return (0, 0, 0, 0)
    values = _constant(model, graph, pad.inputs[1])
    if values is None or values.size != 8:
        return None
    rows = values.reshape(4, 2)
    return (int(rows[1, 0]), int(rows[1, 1]), int(rows[2, 0]), int(rows[2, 1]))


def _constant(model, graph, index: int) -> np.ndarray | None:
    tensor = graph.tensors[index]
    if not tensor.is_constant:
        return None
    raw = model.buffers[model.subgraphs[0].tensors[index].buffer].data
    dtype = {"int32": np.int32, "int64": np.int64, "float32": np.float32, "float16": np.float16}.get(tensor.dtype)
    return None if raw is None or dtype is None else np.frombuffer(bytes(raw), dtype=dtype)


def _filter(model, graph, op, producers) -> tuple[int, int]:
    """(weights, zeros) of a convolution's filter, whether it is stored dense or sparse (a sparse tensor
    stores only the values its index lists: the rest are zeros)."""
    index = op.inputs[1]
    while index in producers and producers[index].name in PREP:
        index = producers[index].inputs[0]
    total = int(np.prod(graph.tensors[op.inputs[1]].shape))
    values = _constant(model, graph, index)
    if values is None:
        return total, 0
    return total, total - int(np.count_nonzero(values))


def _check_op(model, graph, op, producers) -> str | None:
    """Why ``op`` cannot sit inside the sparse run (None: it can)."""
    shape = graph.tensors[op.inputs[0]].shape
    if op.name == "CONV_2D":
        options, kernel = _options(model, op), graph.tensors[op.inputs[1]].shape
        if kernel[1:3] != [1, 1]:
            return f"CONV_2D #{op.index} is {kernel[1]}x{kernel[2]}: only 1x1 convolutions may follow the first"
        if (options.strideH, options.strideW) != (1, 1) or _padding(model, graph, op, producers) != (0, 0, 0, 0):
            return f"CONV_2D #{op.index} (1x1) is strided or padded"
        return None
    if op.name == "DEPTHWISE_CONV_2D":
        options, kernel = _options(model, op), graph.tensors[op.inputs[1]].shape
        size, pad = kernel[1], _padding(model, graph, op, producers)
        if kernel[1] != kernel[2] or size not in (3, 5) or options.depthMultiplier not in (0, 1):
            return f"DEPTHWISE_CONV_2D #{op.index} is {kernel[1]}x{kernel[2]}: only 3x3 and 5x5 (multiplier 1)"
        if options.strideH != options.strideW or options.strideH not in (1, 2):
            return f"DEPTHWISE_CONV_2D #{op.index} has stride {options.strideH}x{options.strideW}"
        if pad is None:
            return (f"DEPTHWISE_CONV_2D #{op.index} uses SAME padding at stride {options.strideH}: pad explicitly "
                    f"(ZeroPadding2D({size // 2}) then padding='valid')")
        if pad != (size // 2,) * 4:
            return f"DEPTHWISE_CONV_2D #{op.index} is padded {pad}, not {size // 2} on every side"
        return None
    if op.name in ("ADD", "MUL") or op.name in UNARY or op.name == "RESIZE_BILINEAR":
        return None if len(shape) == 4 else f"{op.name} #{op.index} works on a {len(shape)}-D tensor, not 4-D"
    return f"{op.name} #{op.index} is not an operator XNNPACK runs in its sparse (NCHW) layout"


def _first_conv(model, graph, op, producers) -> str | None:
    kernel = graph.tensors[op.inputs[1]].shape if op.name == "CONV_2D" else None
    if kernel is None or kernel[1:] != [3, 3, 3]:
        return f"the first operator is {op.name} #{op.index}, not a 3x3 CONV_2D on 3 channels"
    options = _options(model, op)
    if (options.strideH, options.strideW) != (2, 2):
        return f"the first convolution has stride {options.strideH}x{options.strideW}, not 2"
    pad = _padding(model, graph, op, producers)
    if pad != (1, 1, 1, 1):
        return ("the first convolution is not padded by 1 on every side (use ZeroPadding2D(1) then a "
                "padding='valid' Conv2D; SAME pads 0/1 at stride 2)")
    return None


def sparse_readiness(model, graph) -> SparseReadiness:
    """Each of XNNPACK's sparse-inference conditions, whether it holds, and the first that fails,
    for the main graph (``model`` the flatbuffer object, ``graph`` its parsed Graph)."""
    producers = {out: op for op in graph.operators for out in op.outputs}
    work = [op for op in graph.operators if op.name not in PREP and not (
        op.name in ("PAD", "PADV2") and any(op.outputs[0] in o.inputs[:1] for o in graph.operators
                                            if o.name in ("CONV_2D", "DEPTHWISE_CONV_2D")))]
    activations = {graph.tensors[i].dtype for op in work for i in (*op.inputs, *op.outputs)
                   if i >= 0 and not graph.tensors[i].is_constant}
    floats = activations <= {"float32", "float16"}
    stored_sparse = any(op.name == "DENSIFY" for op in graph.operators)
    start = _first_conv(model, graph, work[0], producers) if work else "the model has no operators"
    end = next((i for i, op in enumerate(work) if op.name == "MEAN"), None)
    inside = None if end is None else next(
        (reason for op in work[1:end] if (reason := _check_op(model, graph, op, producers))), None)
    ones = [_filter(model, graph, op, producers) for op in work[1:end or len(work)]
            if op.name == "CONV_2D" and graph.tensors[op.inputs[1]].shape[1:3] == [1, 1]]
    total, zeros = sum(f[0] for f in ones), sum(f[1] for f in ones)
    fraction = zeros / total if total else 0.0
    conditions = [
        ("float", floats, "every activation is float32/float16" if floats else
         f"activations are {', '.join(sorted(activations - {'float32', 'float16'}))}: sparse kernels are float only"),
        ("stored sparse", stored_sparse, "weights stored sparse (DENSIFY)" if stored_sparse else
         "no weight is stored sparse: convert with the sparsity optimisation (quantize --sparse)"),
        ("starts with a 3x3 stride-2 convolution on 3 channels", start is None, start or "yes"),
        ("ends with a spatial MEAN", end is not None, "yes" if end is not None else
         "no MEAN (GlobalAveragePooling2D) after the convolutions"),
        ("only supported operators between", end is not None and inside is None, inside or "yes"),
        ("at least 2/3 of the 1x1 weights are zero", fraction >= MIN_ZEROS,
         f"{fraction:.1%} of {total:,} 1x1-convolution weights are zero"),
    ]
    rows = [SparseCondition(condition=name, holds=bool(holds), detail=detail) for name, holds, detail in conditions]
    failed = next((row.condition for row in rows if not row.holds), None)
    return SparseReadiness(ready=failed is None, failed=failed, conditions=rows, zero_fraction=round(fraction, 4),
                           where=WHERE, source=SOURCE)
