"""Rebuild a Keras model in the other Keras (3 <-> tf_keras), layer by layer, and copy its weights.

tfmot 0.8.1 only accepts tf_keras objects and tf_keras cannot read Keras 3 files, so a Keras 3
model is rebuilt here as a tf_keras model: every layer is re-created from its own config (with the
few keys the two Kerases spell differently translated), the graph is re-wired by walking the
source model's nodes, and the weights are copied exactly. The same walk rebuilds the compressed
tf_keras model as Keras 3 again, and rebuilds tf_keras models inside a tf.distribute scope.
"""

from __future__ import annotations

import inspect

from edgepack.errors import ModelError
from edgepack.util.tf import import_tf

KERAS3 = "keras3"
TF_KERAS = "tf_keras"

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


def _new_layer(layer, target):
    try:
        return getattr(target.layers, type(layer).__name__).from_config(translate_config(layer, target))
    except ModelError:
        raise
    except Exception as exc:  # from_config raises TypeError/ValueError for options it rejects
        raise ModelError(f"cannot rebuild layer '{layer.name}' ({type(layer).__name__}) in "
                         f"{target.__name__}: {str(exc).splitlines()[0][:200]}") from exc


def _input_for(tensor, layer_name: str, target):
    shape = tuple(tensor.shape)
    dtype = tensor.dtype if isinstance(tensor.dtype, str) else tensor.dtype.name
    return target.Input(shape=shape[1:], batch_size=shape[0], dtype=dtype, name=layer_name)


class _Walker:
    """Re-creates the source graph in ``target`` by resolving output tensors recursively."""

    def __init__(self, source_flavor: str, target):
        tf = import_tf()
        self.tf = tf
        self.target = target
        self.layers: dict[int, object] = {}
        self.tensors: dict[int, object] = {}
        if source_flavor == KERAS3:
            import keras

            self.is_tensor = lambda x: isinstance(x, keras.KerasTensor)
            self.call_args = lambda node: (node.arguments.args, node.arguments.kwargs)
        else:
            import tf_keras

            kind = tf_keras.backend.is_keras_tensor
            self.is_tensor = lambda x: hasattr(x, "_keras_history") and kind(x)
            self.call_args = lambda node: (node.call_args, node.call_kwargs)

    def layer(self, layer):
        if id(layer) not in self.layers:
            self.layers[id(layer)] = _new_layer(layer, self.target)
        return self.layers[id(layer)]

    def resolve(self, tensor):
        if id(tensor) in self.tensors:
            return self.tensors[id(tensor)]
        layer, node_index, _ = tensor._keras_history
        node = layer._inbound_nodes[node_index]
        if type(layer).__name__ == "InputLayer":
            self.tensors[id(tensor)] = _input_for(tensor, layer.name, self.target)
            return self.tensors[id(tensor)]
        args, kwargs = self.call_args(node)
        convert = lambda x: self.resolve(x) if self.is_tensor(x) else x  # noqa: E731
        new_args = self.tf.nest.map_structure(convert, list(args))
        new_kwargs = self.tf.nest.map_structure(convert, dict(kwargs or {}))
        result = self.layer(layer)(*new_args, **new_kwargs)
        for source, built in zip(self.tf.nest.flatten(node.outputs), self.tf.nest.flatten(result)):
            self.tensors[id(source)] = built
        return self.tensors[id(tensor)]


def _sequential(model, target, source_flavor: str):
    walker = _Walker(source_flavor, target)
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

    Layers must be built-in Keras layers (see ``edgepack.compress.layers.SUPPORTED``). Weights are
    copied exactly, so zeros and clustered values survive the trip.
    """
    target = keras_module(flavor)
    source_flavor = flavor_of(model)
    if type(model).__name__ == "Sequential":
        rebuilt = _sequential(model, target, source_flavor)
    else:
        walker = _Walker(source_flavor, target)
        inputs = [walker.resolve(t) for t in model.inputs]
        outputs = [walker.resolve(t) for t in model.outputs]
        rebuilt = target.Model(inputs if len(inputs) > 1 else inputs[0],
                               outputs if len(outputs) > 1 else outputs[0], name=model.name)
    copy_weights(model, rebuilt)
    return rebuilt


def copy_weights(source, target_model) -> None:
    """Copy every layer's weights from ``source`` to the same-named layer of ``target_model``."""
    by_name = {layer.name: layer for layer in target_model.layers}
    for layer in source.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if layer.name not in by_name:
            raise ModelError(f"rebuilt model has no layer '{layer.name}'; edgepack could not copy its weights")
        try:
            by_name[layer.name].set_weights(weights)
        except ValueError as exc:
            raise ModelError(f"cannot copy the weights of layer '{layer.name}' ({type(layer).__name__}): "
                             f"{str(exc).splitlines()[0][:200]}") from exc
