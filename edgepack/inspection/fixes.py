"""A fix-it list for accelerator fallbacks: each operator the Edge TPU compiler or the GPU delegate leaves on
the CPU, the Keras layer that produced it, why, and what to change.

The layer comes from the operator's output tensor names, which the converter writes as
``<model>/<layer>/<op>`` (``<model>_1/<layer>_1/<op>`` in Keras 3's numbered export): a .tflite alone
carries no other link to its Keras layers. The fixes are a known list, with sources: Coral's supported
operations and limits (``inspection.edgetpu``), LiteRT's GPU delegate documentation (split execution,
float arithmetic) and its op parser (``inspection.gpu``), and the fallbacks users report (ARG_MAX, CAST,
GATHER_ND in tensorflow/tensorflow#45902 and the MoveNet thread on discuss.ai.google.dev/t/23694).
"""

from __future__ import annotations

import re

from edgepack.inspection.edgetpu import SHAPE_OPS, STATIC_BATCH_FIX, fix_for, op_blocker
from edgepack.inspection.edgetpu import SOURCE as EDGETPU_SOURCE
from edgepack.inspection.result import FixIt, GpuReadiness

GPU_SOURCE = "https://ai.google.dev/edge/litert/performance/gpu (supported ops, split execution)"
PARTITION = "outside the largest delegated partition"
FLOAT_FOR_GPU = "convert for the GPU with --mode float16 (or float32): the delegate computes in float16/float32"
GPU_ALTERNATIVES = {
    "ARG_MAX": "return the scores and take the arg-max in the application (drop the argmax from the model)",
    "ARG_MIN": "return the scores and take the arg-min in the application (drop the argmin from the model)",
    "CAST": "keep the model float32 from input to output: feed float inputs and remove dtype casts inside it",
    "GATHER": "look the indices up in the application and feed the result, or accept this operator on the CPU",
    "GATHER_ND": "look the indices up in the application and feed the result, or accept this operator on the CPU",
    "EMBEDDING_LOOKUP": "feed embeddings instead of token ids (look them up in the application)",
    "EXPAND_DIMS": "use a keras.layers.Reshape instead of expanding dimensions",
    "SQUEEZE": "use a keras.layers.Reshape instead of squeezing dimensions",
    "GELU": "use ReLU or swish (x * sigmoid(x): MUL and LOGISTIC run on the GPU) instead of GELU",
    "QUANTIZE": FLOAT_FOR_GPU,
    "DEQUANTIZE": FLOAT_FOR_GPU,
}


WEIGHTED = re.compile(r"conv|matmul|depthwise|tensordot", re.IGNORECASE)


def keras_layer(op, graph) -> str | None:
    """The Keras layer whose call produced ``op``, from its output tensor names (None when they name none).
    A fused operator names several layers (convolution, batch norm, ReLU): the one with weights wins. A
    graph output's tensor has the signature's name: then its weights' names say."""
    found = []
    constants = [i for i in op.inputs if i >= 0 and graph.tensors[i].is_constant]
    for index in [i for i in op.outputs if i >= 0] + constants:
        for part in graph.tensors[index].name.split(";"):
            components = part.split("/")
            if len(components) >= 3:
                found.append((_layer_of(components[:-1]), bool(WEIGHTED.search(components[-1]))))
    weighted = [layer for layer, has_weights in found if has_weights]  # an output's name first, then weights
    return (weighted or [layer for layer, _ in found] or [None])[0]


def _layer_of(scopes: list[str]) -> str:
    """The layer in a tensor name's scopes: Keras 3's export numbers every scope (``model_1/seq_1/dense_2_1``,
    the layer ``dense_2`` inside nested models): the innermost numbered one, less its number; otherwise
    (tf_keras: ``model/dense``) the scope under the model's."""
    numbered = [scope for scope in scopes if re.search(r"_\d+$", scope)]
    if all(re.search(r"_\d+$", scope) for scope in scopes[:2]):
        return re.sub(r"_\d+$", "", numbered[-1])
    return scopes[1]


def gpu_fix(op_name: str, reason: str) -> str:
    """What to change so that an operator the GPU delegate leaves on the CPU (because ``reason``) runs on it."""
    if reason.startswith(PARTITION):
        return ("the delegate takes one run of operators: move what it cannot run to the start or end of the "
                "model (pre- or post-processing in the application) so the rest forms one run")
    if "int4" in reason:
        return "quantize with --weights int8, or convert for the GPU with --mode float16"
    if op_name in GPU_ALTERNATIVES:
        return GPU_ALTERNATIVES[op_name]
    if op_name in SHAPE_OPS or "is int32" in reason:
        return STATIC_BATCH_FIX
    if "computes in float" in reason:
        return FLOAT_FOR_GPU
    return f"build the layer from operators the GPU delegate implements (see {GPU_SOURCE})"


def fix_list(graph, gpu_prediction: GpuReadiness) -> list[FixIt]:
    """Every operator the Edge TPU compiler would not map (the first cuts the graph; fixing it shows the
    next) and every operator the GPU delegate is predicted to leave on the CPU, with its layer and fix."""
    fixes = []
    for op in graph.operators:
        why = op_blocker(op, graph)
        if why:
            fixes.append(FixIt(target="edgetpu", index=op.index, op=op.name, layer=keras_layer(op, graph),
                               reason=why, fix=fix_for(op, why)))
    for row in gpu_prediction.cpu_ops:
        op = graph.operators[row.index]
        fixes.append(FixIt(target="gpu", index=op.index, op=op.name, layer=keras_layer(op, graph),
                           reason=row.reason, fix=gpu_fix(op.name, row.reason)))
    return fixes


SOURCES = {"edgetpu": EDGETPU_SOURCE, "gpu": GPU_SOURCE}
