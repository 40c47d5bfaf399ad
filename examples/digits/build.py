"""Build the demo: a small digits CNN and its train/val data, deterministically and offline.

    python examples/digits/build.py [OUT_DIR] [--flavor keras3|tf_keras] [--epochs N]

Writes OUT_DIR/model.keras (or model_tfkeras.keras), train.npz and val.npz. The data is
``sklearn.datasets.load_digits`` (1,797 8x8 images, shipped inside scikit-learn), scaled to [0, 1].
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def digits_split(seed: int = 0, val_fraction: float = 0.25):
    """The digits images as (N, 8, 8, 1) float32 in [0, 1], split per class into train and val."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    val_index = []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        val_index.extend(members[: int(round(len(members) * val_fraction))])
    val_mask = np.zeros(len(y), dtype=bool)
    val_mask[val_index] = True
    return (x[~val_mask], y[~val_mask]), (x[val_mask], y[val_mask])


def make_cnn(keras_module, classes: int = 10):
    """Conv-BN-ReLU x2, pooling, dense head: every layer the Edge TPU and int8 path support."""
    layers = keras_module.layers
    inputs = keras_module.Input((8, 8, 1), name="image")
    h = layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)
    h = layers.BatchNormalization()(h)
    h = layers.ReLU()(h)
    h = layers.Conv2D(32, 3, padding="same", activation="relu")(h)
    h = layers.MaxPooling2D()(h)
    h = layers.Flatten()(h)
    h = layers.Dense(64, activation="relu")(h)
    h = layers.Dropout(0.2)(h)
    outputs = layers.Dense(classes, activation="softmax", name="probabilities")(h)
    return keras_module.Model(inputs, outputs, name="digits_cnn")


def build(out_dir: str | Path = HERE, *, flavor: str = "keras3", epochs: int = 12, seed: int = 0) -> dict:
    """Train the CNN and write model + data into ``out_dir``; returns the paths and val accuracy."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    if flavor == "keras3":
        import keras as keras_module
    else:
        import tf_keras as keras_module
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (x_train, y_train), (x_val, y_val) = digits_split(seed)
    keras_module.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    model = make_cnn(keras_module)
    model.compile(optimizer=keras_module.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0, shuffle=True)
    _, accuracy = model.evaluate(x_val, y_val, verbose=0)
    model_path = out_dir / ("model.keras" if flavor == "keras3" else "model_tfkeras.keras")
    model.save(model_path)
    np.savez(out_dir / "train.npz", x=x_train, y=y_train)
    np.savez(out_dir / "val.npz", x=x_val, y=y_val)
    return {"model": model_path, "train": out_dir / "train.npz", "val": out_dir / "val.npz",
            "val_accuracy": float(accuracy)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default=str(HERE))
    parser.add_argument("--flavor", choices=["keras3", "tf_keras"], default="keras3")
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args()
    result = build(args.out_dir, flavor=args.flavor, epochs=args.epochs)
    print(f"wrote {result['model']}, {result['train']}, {result['val']} "
          f"(float val accuracy {result['val_accuracy']:.4f})")


if __name__ == "__main__":
    main()
