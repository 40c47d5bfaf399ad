"""Which layers the compression steps accept, and which of them hold a kernel tfmot can compress."""

from __future__ import annotations

import re

from edgepack.errors import ModelError

# Built-in Keras layers that the bridge rebuilds and tfmot accepts (tested in test_compress_bridge.py).
SUPPORTED = frozenset({
    "InputLayer", "Conv1D", "Conv2D", "DepthwiseConv2D", "Dense", "BatchNormalization",
    "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
    "Add", "Concatenate", "ReLU", "Activation", "Softmax", "Dropout", "Flatten", "Reshape",
    "ZeroPadding1D", "ZeroPadding2D",
    # MobileNetV3 / EfficientNet-style models: preprocessing, squeeze-excite, separable and transposed convs.
    "Rescaling", "Normalization", "Multiply", "Subtract", "LeakyReLU", "SeparableConv2D", "Conv2DTranspose",
    "UpSampling2D", "Cropping2D",
})

# Layers whose ``kernel`` tfmot 0.8.1 prunes and clusters.
KERNEL_LAYERS = frozenset({"Conv1D", "Conv2D", "Dense", "SeparableConv2D", "Conv2DTranspose"})

NOT_COMPRESSED = {
    "DepthwiseConv2D": "tfmot 0.8.1 neither prunes nor clusters depthwise kernels; kept dense",
}

NO_KERNEL = "no kernel"

BUILTIN_MODULES = ("keras.", "tf_keras.")


def layer_class(layer) -> str:
    """The class name of a layer, as users see it in their code."""
    return type(layer).__name__


def is_builtin(layer) -> bool:
    """True for Keras's own layer classes (not user subclasses that reuse a built-in name)."""
    return type(layer).__module__.startswith(BUILTIN_MODULES)


def check_supported(model, path) -> None:
    """Raise ModelError (exit 4) naming the first layer the compression steps cannot handle."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError(f"{path} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                         f"prune and cluster support models with one input and one output")
    for layer in model.layers:
        name = layer_class(layer)
        if name in ("Functional", "Sequential", "Model"):
            raise ModelError(f"{path}: layer '{layer.name}' is a nested model ({name}), which prune and "
                             f"cluster do not support",
                             hint="flatten the model into one Functional or Sequential model")
        if name not in SUPPORTED or not is_builtin(layer):
            raise ModelError(f"{path}: layer '{layer.name}' ({name}) is not supported by prune and cluster",
                             hint="supported layers: " + ", ".join(sorted(SUPPORTED - {"InputLayer"})))


def compressed_kernel(layer):
    """The weight prune and cluster work on: ``kernel``, or a SeparableConv2D's ``pointwise_kernel``
    (as tfmot's registries say); None for a layer without one."""
    kernel = getattr(layer, "kernel", None)
    return kernel if kernel is not None else getattr(layer, "pointwise_kernel", None)


def kernel_size(layer) -> int:
    """Number of values in a layer's kernel (0 when it has none)."""
    kernel = compressed_kernel(layer)
    if kernel is None:
        return 0
    size = 1
    for dim in kernel.shape:
        size *= int(dim)
    return size


def select_layers(model, exclude: str | None, eligible) -> tuple[list[str], dict[str, str]]:
    """Names of layers to compress, and for every other weighted layer the reason it is left alone.

    ``eligible(layer)`` returns None when the step can compress the layer, else the reason it cannot.
    """
    pattern = re.compile(exclude) if exclude else None
    chosen, skipped = [], {}
    for layer in model.layers:
        if not layer.weights:
            continue
        name = layer_class(layer)
        if name not in KERNEL_LAYERS:
            skipped[layer.name] = NOT_COMPRESSED.get(name, NO_KERNEL)
        elif pattern is not None and pattern.search(layer.name):
            skipped[layer.name] = "excluded by --exclude"
        elif (reason := eligible(layer)) is not None:
            skipped[layer.name] = reason
        else:
            chosen.append(layer.name)
    return chosen, skipped
