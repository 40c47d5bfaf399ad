"""Two BatchNorm models on digits upscaled to 32x32 (cached): a residual CNN (the held-out model of
issue 18) and a MobileNet-style net (depthwise separable blocks, BatchNorm after every convolution).
Neither was used while building the BatchNorm re-estimation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from _common import CACHE

SIDE = 32


def _digits_32(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = np.repeat(np.repeat((digits.images / 16.0).astype(np.float32), 4, 1), 4, 2)[..., None]
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    train, val = order[:1400], order[1400:]
    np.savez(folder / "train.npz", x=x[train], y=y[train])
    np.savez(folder / "val.npz", x=x[val], y=y[val])
    return x[train], y[train]


def _residual(keras):
    def block(h, filters, stride):
        s = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(h)
        s = keras.layers.ReLU()(keras.layers.BatchNormalization()(s))
        s = keras.layers.BatchNormalization()(keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(s))
        if stride != 1 or h.shape[-1] != filters:
            h = keras.layers.BatchNormalization()(keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False)(h))
        return keras.layers.ReLU()(keras.layers.Add()([h, s]))

    inputs = keras.Input((SIDE, SIDE, 1))
    h = keras.layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)
    h = keras.layers.ReLU()(keras.layers.BatchNormalization()(h))
    h = block(block(block(h, 16, 1), 32, 2), 64, 2)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(keras.layers.GlobalAveragePooling2D()(h)))


def _mobilenet_style(keras):
    def separable(h, filters, stride):
        h = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(h)
        h = keras.layers.ReLU(6.0)(keras.layers.BatchNormalization()(h))
        h = keras.layers.Conv2D(filters, 1, use_bias=False)(h)
        return keras.layers.ReLU(6.0)(keras.layers.BatchNormalization()(h))

    inputs = keras.Input((SIDE, SIDE, 1))
    h = keras.layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(inputs)
    h = keras.layers.ReLU(6.0)(keras.layers.BatchNormalization()(h))
    for filters, stride in ((32, 1), (64, 2), (64, 1), (128, 2), (128, 1)):
        h = separable(h, filters, stride)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(keras.layers.GlobalAveragePooling2D()(h)))


def batchnorm_example(kind: str) -> dict:
    """Paths of the ``residual`` or ``mobilenet`` model and its data, trained on first use (20 epochs)."""
    out = CACHE / f"bn-{kind}"
    paths = {"model": out / "model.keras", "train": out / "train.npz", "val": out / "val.npz"}
    if all(p.exists() for p in paths.values()):
        return paths
    import keras

    out.mkdir(parents=True, exist_ok=True)
    x, y = _digits_32(out)
    keras.utils.set_random_seed(0)
    model = {"residual": _residual, "mobilenet": _mobilenet_style}[kind](keras)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=20, batch_size=32, verbose=0)
    model.save(paths["model"])
    return paths
