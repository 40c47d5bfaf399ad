"""Small models with one kind of channel group each, and what the tests expect of them.

Every fixture names its groups by hand (the layers producing each group's channels) and, for each
group, the consumers that read it: (layer, weight index, axis, rows of channel c). The tests zero
those rows themselves for the channels they remove, so the exact-rebuild check does not lean on the
analysis it checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Consumer = tuple[str, int, int, Callable[[int], list[int]]]


@dataclass
class Fixture:
    name: str
    model: object
    groups: dict[str, list[str]]              # first producer -> every producer of the group
    consumers: dict[str, list[Consumer]]      # first producer -> who reads the group's channels
    flavor: str = "keras3"


def same(c: int) -> list[int]:
    return [c]


def _randomize_batchnorm(model) -> None:
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32) for w in layer.get_weights()])


def residual(keras):
    L = keras.layers
    x = inp = keras.Input((8, 8, 3))
    a = L.ReLU(name="ra")(L.BatchNormalization(name="bna")(L.Conv2D(8, 3, padding="same", name="a")(x)))
    b = L.BatchNormalization(name="bnb")(L.Conv2D(8, 3, padding="same", name="b")(a))
    h = L.ReLU(name="rh")(L.Add(name="add")([a, b]))
    c = L.Conv2D(6, 1, name="c")(h)
    out = L.Dense(4, name="head")(L.GlobalAveragePooling2D(name="gap")(c))
    return Fixture("residual", keras.Model(inp, out), {"a": ["a", "b"], "c": ["c"]},
                   {"a": [("b", 0, 2, same), ("c", 0, 2, same)], "c": [("head", 0, 0, same)]})


def depthwise(keras):
    L = keras.layers
    inp = keras.Input((8, 8, 3))
    a = L.Conv2D(8, 1, name="a")(inp)
    d = L.ReLU(name="r")(L.BatchNormalization(name="bn")(L.DepthwiseConv2D(3, padding="same", name="dw")(a)))
    b = L.Conv2D(5, 1, name="b")(d)
    out = L.Dense(4, name="head")(L.GlobalAveragePooling2D(name="gap")(b))
    return Fixture("depthwise", keras.Model(inp, out), {"a": ["a"], "b": ["b"]},
                   {"a": [("b", 0, 2, same)], "b": [("head", 0, 0, same)]})


def squeeze_excite(keras):
    L = keras.layers
    inp = keras.Input((8, 8, 3))
    a = L.Conv2D(8, 3, padding="same", activation="relu", name="a")(inp)
    s = L.GlobalAveragePooling2D(keepdims=True, name="pool")(a)
    s = L.Dense(4, activation="relu", name="sq")(s)
    s = L.Dense(8, activation="sigmoid", name="ex")(s)
    h = L.Multiply(name="gate")([a, s])
    c = L.Conv2D(6, 1, name="c")(h)
    out = L.Dense(4, name="head")(L.GlobalAveragePooling2D(name="gap")(c))
    return Fixture("squeeze_excite", keras.Model(inp, out), {"a": ["a", "ex"], "sq": ["sq"], "c": ["c"]},
                   {"a": [("sq", 0, 0, same), ("c", 0, 2, same)], "sq": [("ex", 0, 0, same)],
                    "c": [("head", 0, 0, same)]})


def concatenate(keras):
    L = keras.layers
    inp = keras.Input((8, 8, 3))
    a = L.Conv2D(4, 3, padding="same", name="a")(inp)
    b = L.Conv2D(6, 1, name="b")(inp)
    h = L.BatchNormalization(name="bn")(L.Concatenate(name="cat")([a, b]))
    c = L.Conv2D(5, 1, name="c")(h)
    out = L.Dense(4, name="head")(L.GlobalAveragePooling2D(name="gap")(c))
    return Fixture("concatenate", keras.Model(inp, out), {"a": ["a"], "b": ["b"], "c": ["c"]},
                   {"a": [("c", 0, 2, same)], "b": [("c", 0, 2, lambda ch: [4 + ch])], "c": [("head", 0, 0, same)]})


def flatten_dense(keras):
    L = keras.layers
    inp = keras.Input((4, 4, 2))
    a = L.Conv2D(4, 3, padding="same", name="a")(inp)
    out = L.Dense(3, name="head")(L.Flatten(name="flat")(a))
    return Fixture("flatten_dense", keras.Model(inp, out), {"a": ["a"]},
                   {"a": [("head", 0, 0, lambda ch: [p * 4 + ch for p in range(16)])]})


def separable(keras):
    L = keras.layers
    inp = keras.Input((8, 8, 3))
    a = L.Conv2D(6, 3, padding="same", name="a")(inp)
    s = L.SeparableConv2D(8, 3, padding="same", depth_multiplier=2, name="sep")(a)
    out = L.Dense(4, name="head")(L.GlobalAveragePooling2D(name="gap")(s))
    return Fixture("separable", keras.Model(inp, out), {"a": ["a"], "sep": ["sep"]},
                   {"a": [("sep", 0, 2, same)], "sep": [("head", 0, 0, same)]})


def nested(keras):
    L = keras.layers
    inner_in = keras.Input((8, 8, 3))
    inner = keras.Model(inner_in, L.ReLU(name="ir")(L.Conv2D(8, 3, padding="same", name="a")(inner_in)), name="inner")
    inp = keras.Input((8, 8, 3))
    b = L.Conv2D(5, 1, name="b")(inner(inp))
    out = L.Dense(4, name="head")(L.GlobalAveragePooling2D(name="gap")(b))
    return Fixture("nested", keras.Model(inp, out), {"a": ["a"], "b": ["b"]},
                   {"a": [("b", 0, 2, same)], "b": [("head", 0, 0, same)]})


def tf_keras_sequential(tf_keras):
    L = tf_keras.layers
    model = tf_keras.Sequential([
        tf_keras.Input((6, 6, 2)), L.Conv2D(6, 3, padding="same", name="a"), L.BatchNormalization(name="bn"),
        L.ReLU(name="r"), L.Conv2D(4, 3, padding="same", name="b"), L.Flatten(name="flat"), L.Dense(3, name="head"),
    ])
    return Fixture("tf_keras_sequential", model, {"a": ["a"], "b": ["b"]},
                   {"a": [("b", 0, 2, same)], "b": [("head", 0, 0, lambda ch: [p * 4 + ch for p in range(36)])]},
                   flavor="tf_keras")


KERAS3 = (residual, depthwise, squeeze_excite, concatenate, flatten_dense, separable, nested)


def build(maker):
    """The fixture ``maker`` makes, with random BatchNorm statistics (so carrying them matters)."""
    if maker is tf_keras_sequential:
        import tf_keras

        fixture = maker(tf_keras)
    else:
        import keras

        keras.utils.set_random_seed(0)
        fixture = maker(keras)
    _randomize_batchnorm(fixture.model)
    return fixture


def layer(model, name: str):
    """The layer called ``name``, nested models searched too."""
    for candidate in model.layers:
        if candidate.name == name:
            return candidate
        if hasattr(candidate, "layers"):
            try:
                return layer(candidate, name)
            except KeyError:
                pass
    raise KeyError(name)


def zero_consumers(fixture: Fixture, removed: dict[str, list[int]]) -> None:
    """Zero, in the fixture's model, every consumer row of the channels ``removed`` (by first producer)."""
    for first, channels in removed.items():
        for name, index, axis, rows_of in fixture.consumers[first]:
            target = layer(fixture.model, name)
            weights = target.get_weights()
            rows = [r for c in channels for r in rows_of(c)]
            moved = np.moveaxis(weights[index], axis, 0).copy()
            moved[rows] = 0.0
            weights[index] = np.moveaxis(moved, 0, axis)
            target.set_weights(weights)
