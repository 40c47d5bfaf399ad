"""Benchmark (h): sensitivity allocation vs uniform sparsity at the same global sparsity.

Two models: the digits CNN (the demo's) and a Conv1D net over the digits as 64-step sequences (an
architecture the allocation was not developed on). For each global sparsity, the same fine-tuning
(epochs, learning rate, seed) runs with --allocate uniform and --allocate sensitivity; the val
accuracy is measured here from the saved model, and the global sparsity from its kernels.

    .venv/bin/python benchmarks/allocation.py [--epochs 3] [--seeds 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CACHE, digits_example  # noqa: E402

SPARSITIES = (0.8, 0.9, 0.95)


def conv1d_example(paths: dict) -> dict:
    """The digits as (64, 1) sequences and a small Conv1D classifier trained on them (cached)."""
    out = CACHE / "conv1d"
    model = out / "conv1d.keras"
    if model.exists():
        return {"model": model, "train": out / "train.npz", "val": out / "val.npz"}
    import keras

    out.mkdir(parents=True, exist_ok=True)
    for name in ("train", "val"):
        data = np.load(paths[name])
        np.savez(out / f"{name}.npz", x=data["x"].reshape(len(data["x"]), 64, 1), y=data["y"])
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((64, 1)), keras.layers.Conv1D(16, 5, padding="same", activation="relu"),
                            keras.layers.Conv1D(32, 3, padding="same", activation="relu"),
                            keras.layers.MaxPooling1D(2), keras.layers.Flatten(),
                            keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10, activation="softmax")])
    net.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    train = np.load(out / "train.npz")
    net.fit(train["x"], train["y"], epochs=15, batch_size=32, verbose=0)
    net.save(model)
    return {"model": model, "train": out / "train.npz", "val": out / "val.npz"}


def measured(path: Path, val: dict) -> tuple[float, float]:
    """(val accuracy, fraction of zeros over all Conv/Dense kernels) from the saved model."""
    import keras

    model = keras.saving.load_model(path)
    accuracy = float(np.mean(model.predict(val["x"], verbose=0).argmax(1) == val["y"]))
    kernels = [np.asarray(layer.kernel) for layer in model.layers if getattr(layer, "kernel", None) is not None]
    return accuracy, sum(int(np.sum(k == 0)) for k in kernels) / sum(k.size for k in kernels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    import edgepack

    digits = digits_example()
    print(f"{'model':12} {'sparsity':>8} {'uniform acc %':>16} {'sensitivity acc %':>18} {'zeros u/s':>12}")
    with tempfile.TemporaryDirectory(prefix="edgepack-allocation-") as tmp:
        for label, paths in (("digits CNN", digits), ("Conv1D net", conv1d_example(digits))):
            val = dict(np.load(paths["val"]))
            for sparsity in SPARSITIES:
                results = {"uniform": [], "sensitivity": []}
                zeros = {}
                for seed in range(args.seeds):
                    for allocate in results:
                        out = Path(tmp) / f"{allocate}.keras"
                        edgepack.prune(paths["model"], data=paths["train"], output=out, sparsity=sparsity,
                                       epochs=args.epochs, seed=seed, allocate=allocate)
                        accuracy, zeros[allocate] = measured(out, val)
                        results[allocate].append(accuracy * 100)
                print(f"{label:12} {sparsity:8.2f} {_spread(results['uniform']):>16} "
                      f"{_spread(results['sensitivity']):>18} {zeros['uniform']:.3f}/{zeros['sensitivity']:.3f}")


def _spread(values: list[float]) -> str:
    return f"{statistics.mean(values):.1f} ± {statistics.pstdev(values):.1f}"


if __name__ == "__main__":
    main()
