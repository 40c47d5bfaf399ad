"""Which layers the compression steps accept, and which of them hold a kernel tfmot can compress."""

from __future__ import annotations

import re
from typing import Literal

from edgepack.compress.bridge import find_layer, is_model, leaf_layers
from edgepack.errors import ModelError

# Recurrent layers: tfmot 0.8.1 prunes and clusters their cell's kernel and recurrent kernel (the bias
# stays dense); pruning needs tf_keras's cells registered (compress.tfmot_compat).
RECURRENT_LAYERS = frozenset({"LSTM", "GRU", "SimpleRNN"})
# Layers whose ``kernel`` tfmot 0.8.1 prunes and clusters.
KERNEL_LAYERS = frozenset({"Conv1D", "Conv2D", "Dense", "SeparableConv2D", "Conv2DTranspose"}) | RECURRENT_LAYERS
RECURRENT_NOTE = "kernel and recurrent kernel compressed; the bias is left dense"

NO_KERNEL = "no kernel"
EXCLUDED = "excluded by --exclude"

BUILTIN_MODULES = ("keras.", "tf_keras.")

Unsupported = Literal["skip", "refuse"]


def layer_class(layer) -> str:
    """The class name of a layer, as users see it in their code."""
    return type(layer).__name__


def is_builtin(layer) -> bool:
    """True for Keras's own layer classes (not user subclasses that reuse a built-in name)."""
    return type(layer).__module__.startswith(BUILTIN_MODULES)


def _every_layer(model, prefix: str = ""):
    """Every layer of ``model`` and of the models nested in it, with where it sits (``outer/inner``)."""
    for layer in model.layers:
        yield f"{prefix}{layer.name}", layer
        if is_model(layer) and is_builtin(layer):
            yield from _every_layer(layer, f"{prefix}{layer.name}/")


def check_supported(model, path) -> None:
    """Raise ModelError (exit 4) for what prune and cluster cannot take in any mode: several inputs,
    and layers the tf_keras rebuild cannot carry (classes of the user's own, subclassed models)."""
    if len(model.inputs) != 1:
        raise ModelError(f"{path} has {len(model.inputs)} inputs; prune and cluster support models with one input")
    for where, layer in _every_layer(model):
        if not is_builtin(layer):
            kind = "model" if hasattr(layer, "layers") else "layer"
            raise ModelError(f"{path}: {kind} '{where}' ({layer_class(layer)}) is a class of its own, which prune "
                             f"and cluster cannot rebuild in tf_keras for tfmot (with --unsupported skip too)",
                             hint="build it from Keras's own layers; nested Functional and Sequential models work")


def compressed_kernel(layer):
    """The weight prune and cluster work on: ``kernel``, a SeparableConv2D's ``pointwise_kernel``, or a
    recurrent layer's input kernel (as tfmot's registries say); None for a layer without one."""
    if layer_class(layer) in RECURRENT_LAYERS:
        return layer.cell.kernel
    kernel = getattr(layer, "kernel", None)
    return kernel if kernel is not None else getattr(layer, "pointwise_kernel", None)


def compressed_weights(layer) -> list:
    """Every weight prune and cluster change: the kernel, and a recurrent layer's recurrent kernel too."""
    if layer_class(layer) in RECURRENT_LAYERS:
        return [layer.cell.kernel, layer.cell.recurrent_kernel]
    kernel = compressed_kernel(layer)
    return [] if kernel is None else [kernel]


def kernel_size(layer) -> int:
    """Number of values prune and cluster work on in a layer (0 when it has none)."""
    size = 0
    for weight in compressed_weights(layer):
        count = 1
        for dim in weight.shape:
            count *= int(dim)
        size += count
    return size


def unsupported_reason(layer) -> str | None:
    """Why tfmot leaves a weighted layer outside KERNEL_LAYERS dense, when it holds a weight matrix
    (depthwise kernels, recurrent kernels, embeddings); None for layers with vectors only (BatchNormalization)."""
    if not any(len(weight.shape) >= 2 for weight in layer.weights):
        return None
    name = layer_class(layer)
    what = "depthwise kernels" if name == "DepthwiseConv2D" else f"{name} layers"
    return f"unsupported: tfmot 0.8.1 neither prunes nor clusters {what}; kept dense"


def select_layers(model, exclude: str | None, eligible) -> tuple[list[str], dict[str, str]]:
    """Names of layers to compress, and for every other weighted layer the reason it is left alone.

    Layers are named as in the flattened model (``bridge.leaf_layers``: nested models' layers too).
    ``eligible(layer)`` returns None when the step can compress the layer, else the reason it cannot.
    """
    pattern = re.compile(exclude) if exclude else None
    chosen, skipped = [], {}
    for name, layer in leaf_layers(model):
        if not layer.weights:
            continue
        kernel = layer_class(layer) in KERNEL_LAYERS
        unsupported = None if kernel else unsupported_reason(layer)
        if not kernel and unsupported is None:
            skipped[name] = NO_KERNEL
        elif pattern is not None and pattern.search(name):
            skipped[name] = EXCLUDED
        elif unsupported is not None:
            skipped[name] = unsupported
        elif (reason := eligible(layer)) is not None:
            skipped[name] = reason
        else:
            chosen.append(name)
    return chosen, skipped


def unsupported_layers(skipped: dict[str, str]) -> list[str]:
    """The layers in ``skipped`` left dense because tfmot cannot compress their class."""
    return [name for name, reason in skipped.items() if reason.startswith("unsupported:")]


def refuse_unsupported(model, skipped: dict[str, str], done: str, path) -> None:
    """``--unsupported refuse``: ModelError (exit 4) naming the first layer that cannot be ``done`` (pruned)."""
    names = unsupported_layers(skipped)
    if not names:
        return
    first = names[0]
    others = f" ({len(names)} such layers: {', '.join(names[:6])}{', ...' if len(names) > 6 else ''})"
    raise ModelError(f"{path}: layer '{first}' ({layer_class(find_layer(model, first))}) cannot be {done}: "
                     f"{skipped[first].removeprefix('unsupported: ')}",
                     hint=f"leave it dense on purpose with --exclude '^{re.escape(first)}$', or give --unsupported "
                          f"skip to keep every such layer dense{others if len(names) > 1 else ''}")
