"""Rebuild a Keras model in the other Keras (3 <-> tf_keras), layer by layer, and copy its weights.

tfmot 0.8.1 only accepts tf_keras objects and tf_keras cannot read Keras 3 files, so a Keras 3
model is rebuilt here as a tf_keras model: every layer is re-created from its own config (with the
few keys the two Kerases spell differently translated), the graph is re-wired by walking the
source model's nodes, and the weights are copied exactly. Nested models are flattened into the
rebuild (``leaf_layers`` names their layers); Keras 3 operations applied between layers (``x + 3``)
become TensorFlow operations. The same walk rebuilds tf_keras models inside a tf.distribute scope;
fine-tuned weights go back into the source model by layer name (``copy_weights``).
"""

from __future__ import annotations

import inspect

from edgepack.errors import ModelError
from edgepack.util.tf import import_tf

KERAS3 = "keras3"
TF_KERAS = "tf_keras"

# Built-in Keras layers whose rebuild in tf_keras is tested in test_compress_bridge.py. Other built-in
# layers go through the bridge too; its output check (the rebuild computes what the model computes)
# decides for them.
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

# Keys that only matter together with another option that is off; dropped without a word.
_MOOT_KEYS = {"renorm_momentum", "renorm_clipping", "lora_alpha", "optional", "ragged", "sparse"}
_NEUTRAL = {"groups": 1, "dynamic": False, "data_format": "channels_last"}
_RENAMED = (("negative_slope", "alpha"), ("alpha", "negative_slope"))
_OBJECT_KINDS = {"_initializer": "initializers", "_regularizer": "regularizers", "_constraint": "constraints"}


def keras_module(flavor: str):
    """``keras`` (Keras 3) or ``tf_keras`` (Keras 2)."""
    import_tf()
    if flavor == KERAS3:
        import keras

        return keras
    import tf_keras

    return tf_keras


def flavor_of_module(module) -> str:
    """``keras3`` or ``tf_keras`` for the module itself."""
    return TF_KERAS if module.__name__ == "tf_keras" else KERAS3


def flavor_of(model) -> str:
    """``keras3`` or ``tf_keras``, from the class of a model object."""
    return TF_KERAS if type(model).__module__.startswith("tf_keras") else KERAS3


def _accepted_keys(cls) -> set[str]:
    keys: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for param in inspect.signature(init).parameters.values():
            if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
                keys.add(param.name)
    keys.discard("self")
    return keys | {"name", "dtype", "trainable"}


def _translate_object(value, kind: str, target, owner: str):
    """An initializer/regularizer/constraint config in the target's own terms."""
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, dict) or "class_name" not in value:
        raise ModelError(f"layer '{owner}' has a {kind} edgepack cannot translate: {value!r}"[:300])
    cls = getattr(getattr(target, kind), value["class_name"], None)
    if cls is None:
        raise ModelError(f"layer '{owner}' uses {kind[:-1]} {value['class_name']}, which "
                         f"{target.__name__} does not have")
    accepted = _accepted_keys(cls)
    config = {k: v for k, v in (value.get("config") or {}).items() if k in accepted}
    return {"class_name": value["class_name"], "config": config}


def _plain(value):
    """tf_keras's tracking wrappers (ListWrapper, _DictWrapper) as plain lists and dicts."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


KERAS3_PREFIX = "keras3_"


def _keras3_activations() -> dict:
    """Keras 3 activations tf_keras spells differently or lacks (its hard_sigmoid is another function:
    clip(0.2x + 0.5)), as tf_keras callables registered as ``keras3_<name>``: tfmot clones layers from
    their configs, and the name keeps the Keras 3 function through every clone and on the way back."""
    tf = import_tf()
    import tf_keras

    def keras3_hard_sigmoid(x):
        return tf.nn.relu6(x + 3.0) / 6.0

    def keras3_hard_silu(x):
        return x * tf.nn.relu6(x + 3.0) / 6.0

    def keras3_silu(x):
        return tf.nn.silu(x)

    functions = {"hard_sigmoid": keras3_hard_sigmoid, "hard_silu": keras3_hard_silu,
                 "hard_swish": keras3_hard_silu, "silu": keras3_silu, "swish": keras3_silu}
    tf_keras.utils.get_custom_objects().update({f.__name__: f for f in functions.values()})
    return functions


def _translate_activation(value, target, layer):
    if isinstance(value, dict) and value.get("class_name") == "function":  # tf_keras writes a function as a dict
        value = value.get("config")
    if not isinstance(value, str):
        return value
    if target.__name__ == "tf_keras":
        return _keras3_activations().get(value, value)
    if value.startswith(KERAS3_PREFIX):
        return value[len(KERAS3_PREFIX):]
    if value == "hard_sigmoid":
        raise ModelError(f"layer '{layer.name}' uses tf_keras's hard_sigmoid (clip(0.2x + 0.5)), which Keras 3 "
                         f"computes differently (relu6(x + 3) / 6)")
    return value


def translate_config(layer, target) -> dict:
    """The layer's config with Keras-3/tf_keras differences resolved for ``target``'s layer class."""
    name = type(layer).__name__
    cls = getattr(target.layers, name)
    config = dict(layer.get_config())
    dtype = config.get("dtype")
    if isinstance(dtype, dict):
        config["dtype"] = (dtype.get("config") or {}).get("name", "float32")
    if name == "BatchNormalization" and isinstance(config.get("axis"), (list, tuple)) and len(config["axis"]) == 1:
        config["axis"] = int(config["axis"][0])  # tf_keras stores [3]; Keras 3 wants 3
    accepted = _accepted_keys(cls)
    for ours, theirs in _RENAMED:  # LeakyReLU: Keras 3's negative_slope is tf_keras's alpha
        if ours in config and ours not in accepted and theirs in accepted:
            config[theirs] = config.pop(ours)
    out = {}
    for key, value in config.items():
        value = _plain(value)
        kind = next((k for suffix, k in _OBJECT_KINDS.items() if key.endswith(suffix)), None)
        if key == "activity_regularizer":
            kind = "regularizers"
        if key not in accepted:
            # An initializer only shapes weights at creation; the weights are copied. (tf_keras's
            # SeparableConv2D carries an unused kernel_initializer that Keras 3's does not take.)
            if not value or key in _MOOT_KEYS or _NEUTRAL.get(key, ...) == value or key.endswith("_initializer"):
                continue
            raise ModelError(f"layer '{layer.name}' ({name}) uses {key}={value!r}, which "
                             f"{target.__name__} cannot express"[:300])
        if key in ("activation", "recurrent_activation") and flavor_of(layer) != flavor_of_module(target):
            value = _translate_activation(value, target, layer)
        out[key] = _translate_object(value, kind, target, layer.name) if kind else value
    return out


def _new_layer(layer, target, name: str, updates: dict | None = None):
    """``layer`` re-created in ``target`` under ``name`` (its name in the flattened model), with ``updates``
    to its config (channel pruning's new widths)."""
    try:
        if flavor_of(layer) == flavor_of_module(target):  # same Keras: its own class (tf_keras's TFOpLambda too)
            config = {**layer.get_config(), **(updates or {}), "name": name}
            return type(layer).from_config(config)
        config = {**translate_config(layer, target), **(updates or {}), "name": name}
        return getattr(target.layers, type(layer).__name__).from_config(config)
    except ModelError:
        raise
    except Exception as exc:  # from_config raises TypeError/ValueError for options it rejects
        raise ModelError(f"cannot rebuild layer '{layer.name}' ({type(layer).__name__}) in "
                         f"{target.__name__}: {str(exc).splitlines()[0][:200]}",
                         hint="prune, cluster and qat fine-tune a tf_keras copy for tfmot, which has no such layer; "
                              "quantize works on the model as it is (or replace the layer with built-in ones)") from exc


def _input_for(tensor, layer_name: str, target):
    shape = tuple(tensor.shape)
    dtype = tensor.dtype if isinstance(tensor.dtype, str) else tensor.dtype.name
    return target.Input(shape=shape[1:], batch_size=shape[0], dtype=dtype, name=layer_name)


def is_model(layer) -> bool:
    """True for a model used as a layer (Functional, Sequential), whose layers the bridge inlines."""
    return any(klass.__name__ == "Model" and klass.__module__.startswith(("keras.", "tf_keras."))
               for klass in type(layer).__mro__)


def leaf_layers(model) -> list[tuple[str, object]]:
    """Every layer of ``model`` that is not itself a model, with its name in the flattened model.

    A nested model's layers keep their own names (its input layers are left out: the outer tensors
    take their place); a name already taken gets the nested model's name in front (``inner_dense``).
    """
    taken = {layer.name for layer in model.layers if not is_model(layer)}
    found: list[tuple[str, object]] = []
    seen: set[int] = set()
    for layer in model.layers:
        if not is_model(layer):
            found.append((layer.name, layer))
            seen.add(id(layer))
            continue
        for name, inner in leaf_layers(layer):
            if id(inner) in seen or type(inner).__name__ == "InputLayer":
                continue
            if name in taken:
                name = f"{layer.name}_{name}"
            taken.add(name)
            seen.add(id(inner))
            found.append((name, inner))
    return found


def find_layer(model, name: str):
    """The layer called ``name`` in the flattened ``model`` (see ``leaf_layers``); KeyError if none."""
    for flat, layer in leaf_layers(model):
        if flat == name:
            return layer
    raise KeyError(name)


def _tf_operations(tf) -> dict:
    """Keras 3 operations that a functional graph may hold outside any layer (``x + 3.0``,
    ``x * (1 / 6)`` in MobileNetV3's hard-sigmoid), as the TensorFlow functions that compute them;
    called on tf_keras tensors these become tf_keras's own TFOpLambda layers."""
    m = tf.math
    return {"Add": m.add, "Subtract": m.subtract, "Multiply": m.multiply, "Divide": m.truediv,
            "TrueDivide": m.truediv, "Negative": m.negative, "Maximum": m.maximum, "Minimum": m.minimum,
            "Square": m.square, "Sqrt": m.sqrt, "Absolute": m.abs, "Exp": m.exp, "Tanh": m.tanh,
            "Sigmoid": m.sigmoid, "Relu": tf.nn.relu, "Relu6": tf.nn.relu6, "Silu": tf.nn.silu,
            "HardSigmoid": lambda x: tf.nn.relu6(x + 3.0) / 6.0,
            "HardSilu": lambda x: x * (tf.nn.relu6(x + 3.0) / 6.0)}


class _Walker:
    """Re-creates the source graph in ``target`` by resolving output tensors recursively.

    Nested models are inlined (their layers join the rebuilt model under ``leaf_layers`` names);
    Keras 3 operations between layers become TensorFlow operations.
    """

    def __init__(self, source_flavor: str, target, names: dict[int, str], parent: "_Walker | None" = None,
                 training=None, overrides: dict[str, dict] | None = None):
        tf = import_tf()
        self.tf = tf
        self.target = target
        self.names = names
        self.layers: dict[int, object] = parent.layers if parent else {}
        self.tensors: dict[int, object] = {}
        self.training = training  # a nested model called with training=... passes it to its layers
        self.overrides = parent.overrides if parent else (overrides or {})
        self.source_flavor = source_flavor
        if source_flavor == KERAS3:
            import keras

            self.is_tensor = lambda x: isinstance(x, keras.KerasTensor)
            self.is_layer = lambda x: isinstance(x, keras.layers.Layer)
            self.call_args = lambda node: (node.arguments.args, node.arguments.kwargs)
        else:
            import tf_keras

            kind = tf_keras.backend.is_keras_tensor
            self.is_tensor = lambda x: hasattr(x, "_keras_history") and kind(x)
            self.is_layer = lambda x: True
            self.call_args = lambda node: (node.call_args, node.call_kwargs)

    def layer(self, layer):
        if id(layer) not in self.layers:
            name = self.names.get(id(layer), layer.name)
            self.layers[id(layer)] = _new_layer(layer, self.target, name, self.overrides.get(name))
        return self.layers[id(layer)]

    def resolve(self, tensor):
        """The rebuilt tensor for ``tensor``: the layers that make its inputs are rebuilt first, walking
        the graph with a stack (a recursion per layer overflows Python's stack on deep models such as
        EfficientNet, about 240 layers in a chain)."""
        stack = [tensor]
        while stack:
            current = stack[-1]
            if id(current) in self.tensors:
                stack.pop()
                continue
            pending = [x for x in self._inputs_of(current) if id(x) not in self.tensors]
            if pending:
                stack.extend(pending)
            else:
                self._resolve_one(current)
                stack.pop()
        return self.tensors[id(tensor)]

    def _inputs_of(self, tensor) -> list:
        layer, node_index, _ = tensor._keras_history
        if type(layer).__name__ == "InputLayer":
            return []
        args, kwargs = self.call_args(layer._inbound_nodes[node_index])
        return [x for x in self.tf.nest.flatten([list(args), dict(kwargs or {})]) if self.is_tensor(x)]

    def _resolve_one(self, tensor):
        layer, node_index, _ = tensor._keras_history
        node = layer._inbound_nodes[node_index]
        if type(layer).__name__ == "InputLayer":
            self.tensors[id(tensor)] = _input_for(tensor, layer.name, self.target)
            return self.tensors[id(tensor)]
        args, kwargs = self.call_args(node)
        if is_model(layer):
            result = self._inline(layer, args, dict(kwargs or {}))
        else:
            convert = lambda x: self.resolve(x) if self.is_tensor(x) else x  # noqa: E731
            new_args = self.tf.nest.map_structure(convert, list(args))
            new_kwargs = self.tf.nest.map_structure(convert, dict(kwargs or {}))
            result = self._call(layer, new_args, new_kwargs)
        for source, built in zip(self.tf.nest.flatten(node.outputs), self.tf.nest.flatten(result)):
            self.tensors[id(source)] = built
        return self.tensors[id(tensor)]

    def _call(self, layer, args: list, kwargs: dict):
        if not self.is_layer(layer) and self.source_flavor == KERAS3 and flavor_of_module(self.target) == KERAS3:
            return layer(*args, **kwargs)  # a Keras 3 operation, applied again to the new tensors
        if not self.is_layer(layer):
            function = _tf_operations(self.tf).get(type(layer).__name__)
            if function is None or kwargs or not type(layer).__module__.startswith("keras.src.ops"):
                raise ModelError(f"the model applies the Keras operation '{layer.name}' ({type(layer).__name__}) "
                                 f"outside any layer, which edgepack cannot rebuild in {self.target.__name__}",
                                 hint="wrap it in a Keras layer (e.g. Activation, Add, Multiply, Rescaling)")
            return function(*args)
        built = self.layer(layer)
        if self.training is not None and "training" in inspect.signature(built.call).parameters:
            kwargs = {**kwargs, "training": self.training}
        return built(*args, **kwargs)

    def _inline(self, model, args, kwargs: dict):
        """The outputs of nested ``model`` applied to the resolved ``args``, its layers inlined."""
        sources = [x for x in self.tf.nest.flatten(list(args)) if self.is_tensor(x)]
        if len(sources) != len(model.inputs):
            raise ModelError(f"nested model '{model.name}' is called on {len(sources)} tensors but has "
                             f"{len(model.inputs)} inputs; edgepack cannot inline it")
        training = kwargs.get("training", self.training)
        inner = _Walker(self.source_flavor, self.target, self.names, parent=self, training=training)
        for source, inner_input in zip(sources, model.inputs):
            inner.tensors[id(inner_input)] = self.resolve(source)
        return [inner.resolve(t) for t in model.outputs]


def _flat_names(model) -> dict[int, str]:
    return {id(layer): name for name, layer in leaf_layers(model)}


def _sequential(model, target, source_flavor: str, overrides: dict | None = None):
    walker = _Walker(source_flavor, target, _flat_names(model), overrides=overrides)
    first = model.inputs[0]
    input_layer = first._keras_history[0]
    rebuilt = target.Sequential(name=model.name)
    rebuilt.add(_input_for(first, input_layer.name, target))
    for layer in model.layers:
        if type(layer).__name__ != "InputLayer":
            rebuilt.add(walker.layer(layer))
    return rebuilt


def rebuild(model, flavor: str):
    """A new ``flavor`` model with the same layers, names, graph and weights as ``model``.

    Layers must be built-in Keras layers; nested models are flattened into one model (their
    layers named as ``leaf_layers`` says). Weights are copied exactly, so zeros and clustered values
    survive the trip.
    """
    rebuilt = rebuild_graph(model, flavor)
    copy_weights(model, rebuilt)
    return rebuilt


def rebuild_graph(model, flavor: str, overrides: dict[str, dict] | None = None):
    """``model``'s graph re-created in ``flavor`` (nested models flattened) with fresh weights; ``overrides``
    updates the configs of the layers it names (by flattened name)."""
    target = keras_module(flavor)
    source_flavor = flavor_of(model)
    if type(model).__name__ == "Sequential" and not any(is_model(layer) for layer in model.layers):
        return _sequential(model, target, source_flavor, overrides)
    walker = _Walker(source_flavor, target, _flat_names(model), overrides=overrides)
    inputs = [walker.resolve(t) for t in model.inputs]
    outputs = [walker.resolve(t) for t in model.outputs]
    return target.Model(inputs if len(inputs) > 1 else inputs[0], outputs if len(outputs) > 1 else outputs[0],
                        name=model.name)


def copy_weights(source, target_model) -> None:
    """Copy every layer's weights from ``source`` to the same-named layer of ``target_model``.

    Layers are paired by their names in the flattened models (``leaf_layers``), so weights go from a
    model with nested sub-models to its flattened rebuild and back.
    """
    by_name = dict(leaf_layers(target_model))
    for name, layer in leaf_layers(source):
        weights = layer.get_weights()
        if not weights:
            continue
        if name not in by_name:
            raise ModelError(f"rebuilt model has no layer '{name}'; edgepack could not copy its weights")
        try:
            by_name[name].set_weights(weights)
        except ValueError as exc:
            raise ModelError(f"cannot copy the weights of layer '{name}' ({type(layer).__name__}): "
                             f"{str(exc).splitlines()[0][:200]}") from exc


def outputs_of(model, x, batch_size: int = 256) -> list:
    """Every output of ``model`` on ``x`` (inference mode), as a list in ``model.outputs`` order.

    A few batches are run as plain calls: ``predict`` first traces a function, which costs more
    than the calls themselves for a few hundred rows."""
    import numpy as np

    if len(x) > EAGER_ROWS:
        keras = keras_module(flavor_of(model))
        plain = keras.Model(model.inputs, list(model.outputs)) if len(model.outputs) > 1 else model
        result = plain.predict(x, batch_size=batch_size, verbose=0)
        return [np.asarray(r) for r in (result if isinstance(result, (list, tuple)) else [result])]
    parts = []
    for start in range(0, len(x), batch_size):
        result = model(x[start:start + batch_size], training=False)
        flat = import_tf().nest.flatten(result) if len(model.outputs) > 1 else [result]
        parts.append([np.asarray(r) for r in flat])
    return [np.concatenate(column) for column in zip(*parts)]


EAGER_ROWS = 1024


def check_same_function(source, rebuilt, x, where) -> float:
    """Raise ModelError unless ``rebuilt`` computes what ``source`` computes on ``x`` (inference mode);
    return the largest difference relative to the outputs' scale."""
    import numpy as np

    worst, at = 0.0, None
    for name, a, b in zip(output_names(source), outputs_of(source, x), outputs_of(rebuilt, x)):
        scale = max(1.0, float(np.max(np.abs(a))))
        difference = float(np.max(np.abs(a - b))) / scale
        if not difference <= worst:
            worst, at = difference, name
    if not worst <= SAME_FUNCTION_TOLERANCE:
        untested = sorted({f"{name} ({type(layer).__name__})" for name, layer in leaf_layers(source)
                           if type(layer).__name__ not in SUPPORTED})
        hint = (f"layers whose rebuild edgepack has not tested: {', '.join(untested[:6])}" if untested
                else "please report this model's layers")
        raise ModelError(f"{where}: the tf_keras rebuild for tfmot does not compute what the model computes "
                         f"(output '{at}' differs by {worst:.3g} of its scale); edgepack cannot fine-tune it "
                         f"faithfully", hint=hint)
    return worst


SAME_FUNCTION_TOLERANCE = 1e-3


def output_names(model) -> list[str]:
    """The names of ``model``'s outputs, in ``model.outputs`` order."""
    names = getattr(model, "output_names", None)
    return list(names) if names else [f"output_{i}" for i in range(len(model.outputs))]
