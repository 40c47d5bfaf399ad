"""Benchmark (h): sensitivity allocation vs uniform, at the same global sparsity or cluster bits.

Two models: the digits CNN (the demo's) and a Conv1D net over the digits as 64-step sequences (an
architecture the allocation was not developed on). For each global sparsity, the same fine-tuning
(epochs, learning rate, seed) runs with --allocate uniform and --allocate sensitivity; the val
accuracy is measured here from the saved model, and the global sparsity from its kernels.
With ``--what cluster`` the same for cluster counts: the same mean bits per weight (log2 of the
clusters, weighted by kernel size), the distinct values of each saved kernel counted here.

    .venv/bin/python benchmarks/allocation.py [--what prune|cluster] [--epochs 3] [--seeds 2]
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
CLUSTERS = (4, 8, 16)


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


def measured(path: Path, val: dict, what: str) -> tuple[float, float]:
    """(val accuracy, fraction of zeros — or mean bits per weight — over all Conv/Dense kernels) from the
    saved model."""
    import keras

    model = keras.saving.load_model(path)
    accuracy = float(np.mean(model.predict(val["x"], verbose=0).argmax(1) == val["y"]))
    kernels = [np.asarray(layer.kernel) for layer in model.layers if getattr(layer, "kernel", None) is not None]
    total = sum(k.size for k in kernels)
    if what == "cluster":
        return accuracy, sum(k.size * np.log2(max(2, np.unique(k).size)) for k in kernels) / total
    return accuracy, sum(int(np.sum(k == 0)) for k in kernels) / total


def compress(what: str, paths: dict, out: Path, level, epochs: int, seed: int, allocate: str) -> None:
    import edgepack

    if what == "cluster":
        edgepack.cluster(paths["model"], data=paths["train"], output=out, clusters=level, epochs=epochs, seed=seed,
                         allocate=allocate)
    else:
        edgepack.prune(paths["model"], data=paths["train"], output=out, sparsity=level, epochs=epochs, seed=seed,
                       allocate=allocate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", choices=("prune", "cluster"), default="prune")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()

    digits = digits_example()
    measure = "bits u/s" if args.what == "cluster" else "zeros u/s"
    print(f"{'model':12} {args.what:>8} {'uniform acc %':>16} {'sensitivity acc %':>18} {measure:>12}")
    with tempfile.TemporaryDirectory(prefix="edgepack-allocation-") as tmp:
        for label, paths in (("digits CNN", digits), ("Conv1D net", conv1d_example(digits))):
            val = dict(np.load(paths["val"]))
            for level in (CLUSTERS if args.what == "cluster" else SPARSITIES):
                results = {"uniform": [], "sensitivity": []}
                spent = {}
                for seed in range(args.seeds):
                    for allocate in results:
                        out = Path(tmp) / f"{allocate}.keras"
                        compress(args.what, paths, out, level, args.epochs, seed, allocate)
                        accuracy, spent[allocate] = measured(out, val, args.what)
                        results[allocate].append(accuracy * 100)
                print(f"{label:12} {level:8g} {_spread(results['uniform']):>16} "
                      f"{_spread(results['sensitivity']):>18} {spent['uniform']:.3f}/{spent['sensitivity']:.3f}")


def _spread(values: list[float]) -> str:
    return f"{statistics.mean(values):.1f} ± {statistics.pstdev(values):.1f}"


if __name__ == "__main__":
    main()
