"""A model that is hard for int8, built in seconds: a deep digits CNN in which two hidden units of
the Dense layer ``dense`` are scaled up by 1000 and scaled down again in the next layer.

The float function is unchanged (ReLU is positive-homogeneous), but the activation range of
``dense``'s output grows a thousandfold, so one int8 scale for that tensor rounds the other
units to zero. Keeping ``dense`` and its consumer in float repairs it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SCALE = 1000.0
CONVS = 16


def build_hard_model(out_dir: Path, train: Path, *, epochs: int = 10, seed: int = 0) -> dict:
    """Train the deep CNN on ``train`` (.npz), damage it, save ``hard.keras``; returns paths and facts."""
    import keras

    data = np.load(train)
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1), name="image")
    h = inputs
    for index in range(CONVS):
        h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name=f"conv{index}")(h)
    h = keras.layers.MaxPooling2D(name="pool")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    h = keras.layers.Dense(64, activation="relu", name="dense")(h)
    h = keras.layers.Dropout(0.1, name="dropout")(h)
    outputs = keras.layers.Dense(10, activation="softmax", name="probabilities")(h)
    model = keras.Model(inputs, outputs, name="deep_digits")
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy")
    model.fit(data["x"], data["y"], epochs=epochs, batch_size=32, verbose=0)
    hidden = keras.Model(model.inputs, model.get_layer("dense").output).predict(data["x"][:500], verbose=0)
    units = np.argsort(hidden.mean(axis=0))[-2:]
    dense, head = model.get_layer("dense"), model.get_layer("probabilities")
    kernel, bias = dense.get_weights()
    head_kernel, head_bias = head.get_weights()
    kernel[:, units] *= SCALE
    bias[units] *= SCALE
    head_kernel[units, :] /= SCALE
    dense.set_weights([kernel, bias])
    head.set_weights([head_kernel, head_bias])
    path = Path(out_dir) / "hard.keras"
    model.save(path)
    return {"model": path, "layers": len(model.layers) - 1, "damaged": "dense"}
