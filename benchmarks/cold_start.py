"""Benchmark: wall time of whole ``edgepack`` commands, as a user starts them, in two checkouts side by side.

What it is for: changes to what a command does before its real work (imports, child processes such
as the converter's, which imports TensorFlow too). Each case runs ``python -m edgepack ...`` from the
``--before`` checkout and from this one, alternating which goes first, ``--rounds`` times; the
medians and their ratio are printed. Cases:

- ``quantize`` of the digits CNN (8x8 inputs, ~26 k parameters) to int8,
- ``quantize`` of MobileNetV2 (96x96x3, alpha 1.0, 10 classes, random weights: the work depends on
  the graph, not the values) to int8 with 32 calibration rows,
- ``run`` of a recipe on the digits CNN: prune 0.5 for one epoch, int8, latency estimated.

Usage: ``git worktree add /tmp/before <commit>`` then
``python benchmarks/cold_start.py --before /tmp/before [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import CACHE, ROOT, digits_example

RECIPE = """\
name: cold
device: host-cpu
model: {model}
data: {{train: {train}, val: {val}}}
steps:
  - prune: {{sparsity: 0.5, epochs: 1}}
  - quantize: {{mode: int8}}
  - profile: {{where: estimate}}
output: {output}
"""


def mobilenet_v2_keras() -> dict:
    """MobileNetV2 at 96x96 as a .keras file and 32 random calibration rows, built once into the cache."""
    model, data = CACHE / "mobilenet_v2_96.keras", CACHE / "mobilenet_v2_96_calibration.npz"
    if not (model.exists() and data.exists()):
        import keras
        import numpy as np

        keras.utils.set_random_seed(0)
        keras.applications.MobileNetV2(input_shape=(96, 96, 3), weights=None, classes=10).save(model)
        rng = np.random.default_rng(0)
        np.savez(data, x=rng.uniform(-1, 1, (32, 96, 96, 3)).astype(np.float32), y=rng.integers(0, 10, 32))
    return {"model": model, "calibration": data}


def cases(folder: Path) -> dict[str, list[str]]:
    digits, mobilenet = digits_example(), mobilenet_v2_keras()
    recipe = folder / "cold.yaml"
    recipe.write_text(RECIPE.format(model=digits["model"], train=digits["train"], val=digits["val"],
                                    output=folder / "dist" / "{name}"))
    return {
        "quantize digits CNN int8": ["quantize", str(digits["model"]), "-o", str(folder / "d.tflite"), "--mode",
                                     "int8", "--calibration", str(digits["train"])],
        "quantize MobileNetV2 96x96 int8": ["quantize", str(mobilenet["model"]), "-o", str(folder / "m.tflite"),
                                            "--mode", "int8", "--calibration", str(mobilenet["calibration"])],
        "run prune+int8 recipe (digits CNN)": ["run", str(recipe), "--json"],
    }


def wall(tree: Path, args: list[str], folder: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree), "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "edgepack", *args], cwd=folder, env=env, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{tree}: edgepack {args[0]} failed (exit {done.returncode}): {done.stderr[-800:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the earlier commit")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgepack-cold-") as folder:
        folder = Path(folder)
        timed = {name: {"before": [], "after": []} for name in cases(folder)}
        for round_ in range(args.rounds):
            for name, command in cases(folder).items():
                order = [("before", args.before), ("after", ROOT)]
                for label, tree in order if round_ % 2 == 0 else reversed(order):
                    timed[name][label].append(wall(tree, command, folder))
        print(f"median wall time over {args.rounds} interleaved rounds; before = {args.before}, after = {ROOT}")
        for name, times in timed.items():
            before, after = statistics.median(times["before"]), statistics.median(times["after"])
            print(f"  {name:36s} before {before:6.2f} s  after {after:6.2f} s  ratio {before / after:.2f}x")


if __name__ == "__main__":
    main()
