"""The float speed-up XNNPACK's sparse kernels give one pruned model: stored sparse against stored dense.

A MobileNet-v1-style float CNN (alpha 0.5, 128x128x3, explicit padding where XNNPACK's sparse layout
needs it) trained briefly on digits upscaled, pruned with ``prune --structure xnnpack`` (1x1 convolutions
at 0.75 and 0.9), then converted twice from the same Keras file: ``quantize --mode float32`` (dense) and
``--sparse``. Both are timed side by side (1 and 2 threads, rounds interleaved, medians); ``inspect``'s
verdict on XNNPACK's conditions and both files' accuracy are printed beside.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SIDE = 128
BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (1024, 2))


def _data(folder: Path) -> dict:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    x = np.repeat(np.repeat(x, SIDE // 8, 1), SIDE // 8, 2)[..., None].repeat(3, axis=-1)
    order = np.random.default_rng(0).permutation(len(x))
    paths = {"train": folder / "train.npz", "val": folder / "val.npz"}
    np.savez(paths["train"], x=x[order[:1400]], y=digits.target[order[:1400]])
    np.savez(paths["val"], x=x[order[1400:]], y=digits.target[order[1400:]])
    return paths


def _model(path: Path, train: Path, alpha: float = 0.5, epochs: int = 2) -> Path:
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIDE, SIDE, 3))
    h = keras.layers.ZeroPadding2D(1)(inputs)
    h = keras.layers.Conv2D(int(32 * alpha), 3, strides=2, padding="valid", activation="relu")(h)
    for width, stride in BLOCKS:
        if stride == 2:
            h = keras.layers.ZeroPadding2D(1)(h)
        h = keras.layers.DepthwiseConv2D(3, strides=stride, padding="valid" if stride == 2 else "same",
                                         activation="relu")(h)
        h = keras.layers.Conv2D(int(width * alpha), 1, activation="relu")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(h))
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy")
    data = np.load(train)
    model.fit(data["x"], data["y"], epochs=epochs, batch_size=32, verbose=0)
    model.save(path)
    return path


def sparse_float_rows(folder: Path, measure, accuracy, sparsities=(0.75, 0.9)) -> list[dict]:
    """One row per sparsity: bytes, p50 at 1 and 2 threads dense vs sparse, the verdict and accuracy."""
    import edgepack
    from edgepack.loading.spec import DataSpec
    from edgepack.steps.prune import PruneConfig, prune
    from edgepack.steps.quantize import QuantizeConfig, quantize

    folder.mkdir(parents=True, exist_ok=True)
    data = _data(folder)
    source = folder / "model.keras"
    if not source.exists():
        _model(source, data["train"])
    val = np.load(data["val"])
    rows = []
    for sparsity in sparsities:
        pruned = folder / f"pruned-{sparsity}.keras"
        prune(PruneConfig(model=source, data=DataSpec(source=str(data["train"])), output=pruned,
                          structure="xnnpack", sparsity=sparsity, epochs=1))
        files = {}
        for kind in ("dense", "sparse"):
            files[kind] = quantize(QuantizeConfig(model=pruned, output=folder / f"{sparsity}-{kind}.tflite",
                                                  mode="float32", sparse=kind == "sparse")).path
        timings = {threads: measure(files, threads=threads) for threads in (1, 2)}
        verdict = edgepack.inspect(files["sparse"]).xnnpack_sparse.model_dump()
        rows.append({"sparsity": sparsity, "bytes": {k: p.stat().st_size for k, p in files.items()},
                     "ms": {t: m for t, m in timings.items()}, "ready": verdict["ready"],
                     "failed": verdict["failed"], "zeros": verdict["zero_fraction"],
                     "accuracy": {k: accuracy(p, val) for k, p in files.items()}})
    (folder / "rows.json").write_text(json.dumps(rows, indent=1, default=str))
    return rows
