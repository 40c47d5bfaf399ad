"""Benchmark (c): how much smaller prune + cluster + int8 make the digits CNN, and what it costs.

Per stage (float32 .tflite, int8, prune+int8, prune+cluster+int8) it prints the gzip -9 size of
the .tflite bytes, the ratio to the float32 .tflite's gzip size, the val accuracy measured with the
LiteRT interpreter, and the drop against the float Keras model (percentage points).
Goal: >= 15x smaller than the float32 .tflite (gzip) at <= 1.0 point drop.

    .venv/bin/python benchmarks/compression.py [--sparsity S] [--clusters K] [--prune-epochs N]
                                                [--cluster-epochs N] [--seed N]
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import digits_example  # noqa: E402

# Tuned on this example (see benchmarks/README.md); the library defaults are the contract's.
DEFAULTS = {"sparsity": 0.9, "clusters": 8, "prune_epochs": 15, "cluster_epochs": 3, "seed": 0}


def tflite_accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    """Val accuracy of a .tflite, one row at a time through the LiteRT interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    correct = 0
    for row, label in zip(x, y):
        interpreter.set_tensor(inp["index"], row[None].astype(np.float32))
        interpreter.invoke()
        correct += int(np.argmax(interpreter.get_tensor(out["index"])[0]) == label)
    return correct / len(y)


def gzip_size(path: Path) -> int:
    """Bytes of the file after gzip -9."""
    return len(gzip.compress(path.read_bytes(), compresslevel=9))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sparsity", type=float, default=DEFAULTS["sparsity"])
    parser.add_argument("--clusters", type=int, default=DEFAULTS["clusters"])
    parser.add_argument("--prune-epochs", type=int, default=DEFAULTS["prune_epochs"])
    parser.add_argument("--cluster-epochs", type=int, default=DEFAULTS["cluster_epochs"])
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    args = parser.parse_args()
    paths = digits_example()
    with tempfile.TemporaryDirectory(prefix="edgepack-compress-") as tmp:
        run(args, paths, Path(tmp))


def run(args, paths: dict, work: Path) -> None:
    """Compress, convert and measure every stage inside the folder ``work``."""
    import keras

    from edgepack.loading.data import DataSpec
    from edgepack.steps.cluster import ClusterConfig, cluster
    from edgepack.steps.prune import PruneConfig, prune
    from edgepack.steps.quantize import QuantizeConfig, quantize

    train, val_spec = DataSpec(source=str(paths["train"])), DataSpec(source=str(paths["val"]))
    val = np.load(paths["val"])
    reference = float(np.mean(keras.models.load_model(paths["model"]).predict(val["x"], verbose=0).argmax(1)
                              == val["y"]))

    start = time.perf_counter()
    pruned = prune(PruneConfig(model=paths["model"], data=train, val=val_spec, output=work / "pruned.keras",
                               sparsity=args.sparsity, epochs=args.prune_epochs, seed=args.seed)).path
    clustered = cluster(ClusterConfig(model=pruned, data=train, val=val_spec, output=work / "clustered.keras",
                                      clusters=args.clusters, preserve_sparsity=True, epochs=args.cluster_epochs,
                                      seed=args.seed)).path
    seconds = time.perf_counter() - start

    def convert(model: Path, name: str, mode: str) -> Path:
        return quantize(QuantizeConfig(model=model, output=work / f"{name}.tflite", mode=mode,
                                       calibration=train if mode == "int8" else None)).path

    stages = [("float32", convert(paths["model"], "float32", "float32")),
              ("int8", convert(paths["model"], "int8", "int8")),
              ("prune+int8", convert(pruned, "pruned_int8", "int8")),
              ("prune+cluster+int8", convert(clustered, "clustered_int8", "int8"))]
    base = gzip_size(stages[0][1])
    print(f"digits CNN, {len(val['y'])} val samples; float Keras accuracy {reference * 100:.2f}%")
    print(f"prune: sparsity {args.sparsity}, {args.prune_epochs} epochs; cluster: {args.clusters} clusters, "
          f"preserve sparsity, {args.cluster_epochs} epochs; fine-tuning took {seconds:.1f} s")
    print(f"{'stage':<20}{'.tflite B':>10}{'gzip B':>9}{'ratio':>8}{'accuracy':>10}{'drop (pts)':>12}")
    for name, path in stages:
        size = gzip_size(path)
        accuracy = tflite_accuracy(path, val["x"], val["y"])
        print(f"{name:<20}{path.stat().st_size:>10,}{size:>9,}{base / size:>7.1f}x{accuracy * 100:>9.2f}%"
              f"{(reference - accuracy) * 100:>12.2f}")


if __name__ == "__main__":
    main()
