"""The Keras zoo through edgepack: every keras.applications family that builds offline (weights=None) at a
small input, through `inspect`, `prune`, `cluster` and `quantize --mode int8`, each in its own process as
a user runs it. Each step either works, with its figure checked from the file it wrote (MACs > 0; the
saved kernels' zeros; distinct values per clustered kernel; the .tflite's int8 operators run in the
interpreter), or refuses in one line with its exit code. Exit 1 (an internal error) is a bug.

    .venv/bin/python benchmarks/zoo.py [--families EfficientNetB0,ResNet50] [--size 32]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# family -> (smallest input keras.applications accepts without weights, extra keyword arguments)
FAMILIES = {
    "MobileNet": (32, {"alpha": 0.5}),
    "MobileNetV2": (32, {"alpha": 0.5}),
    "MobileNetV3Small": (32, {}),
    "MobileNetV3Large": (32, {}),
    "EfficientNetB0": (32, {}),
    "EfficientNetV2B0": (32, {}),
    "ResNet50": (32, {}),
    "DenseNet121": (32, {}),
    "NASNetMobile": (32, {}),
    "ConvNeXtTiny": (32, {}),
    "Xception": (71, {}),
    "InceptionV3": (75, {}),
}
PRUNE_SPARSITY = 0.5
CLUSTERS = 16
COMPUTE = {"Conv1D", "Conv2D", "Dense", "SeparableConv2D", "Conv2DTranspose"}


@dataclass
class StepOutcome:
    step: str
    code: int
    seconds: float
    figure: str  # the figure checked from the file, or the one-line error


def build(family: str, folder: Path, size: int | None = None) -> tuple[Path, Path]:
    """The family at its smallest input (10 classes, random weights) and 64 random images."""
    import keras

    smallest, extra = FAMILIES[family]
    size = max(size or smallest, smallest)
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, family)(input_shape=(size, size, 3), weights=None, classes=10, **extra)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    path = folder / f"{family}.keras"
    model.save(path)
    rng = np.random.default_rng(0)
    data = folder / f"{family}.npz"
    np.savez(data, x=(rng.random((64, size, size, 3)) * 255).astype(np.float32), y=rng.integers(0, 10, 64))
    return path, data


def edgepack(*args, timeout: float = 1800) -> tuple[int, str, str, float]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "edgepack", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)
    return done.returncode, done.stdout, done.stderr.strip(), time.perf_counter() - start


def _kernels(path: Path) -> dict[str, np.ndarray]:
    """Every compute layer's kernel in the saved file (nested models too), by layer name."""
    import keras

    found = {}

    def walk(model):
        for layer in model.layers:
            if hasattr(layer, "layers"):
                walk(layer)
            elif type(layer).__name__ in COMPUTE:
                kernel = getattr(layer, "pointwise_kernel", None) if type(layer).__name__ == "SeparableConv2D" \
                    else layer.kernel
                found[layer.name] = np.asarray(kernel.numpy())

    walk(keras.models.load_model(path, compile=False, safe_mode=True))
    return found


def _int8_ops(path: Path) -> tuple[int, int]:
    """(int8 compute operators, all compute operators) of the .tflite, after one inference."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    interpreter.invoke()
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    compute = [op for op in interpreter._get_ops_details()
               if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
    int8 = [op for op in compute if tensors[op["inputs"][1]]["dtype"] == np.int8]
    return len(int8), len(compute)


def check(step: str, code: int, stdout: str, stderr: str, output: Path) -> str:
    """The figure of a step that worked, computed from its file (raises AssertionError when it is wrong)."""
    if code != 0:
        lines = stderr.splitlines()
        assert code != 1 and len(lines) >= 1 and lines[-1].startswith("edgepack: error:"), (step, code, stderr[-500:])
        return lines[-1].removeprefix("edgepack: error: ")
    if step == "inspect":
        macs = json.loads(stdout)["macs"]
        assert macs > 0
        return f"{macs / 1e6:.1f} M MACs"
    if step == "prune":
        pruned = json.loads(stdout)
        chosen = {row["name"].split("/")[-1] for row in pruned["layers"] if row.get("pruned")}
        kernels = _kernels(output)
        zeros = [float(np.mean(kernels[name] == 0)) for name in chosen if name in kernels]
        assert zeros and min(zeros) >= PRUNE_SPARSITY - 0.02, (min(zeros), len(zeros))
        return f"{len(zeros)} kernels, zeros >= {min(zeros):.0%}"
    if step == "cluster":
        clustered = json.loads(stdout)
        chosen = {row["name"].split("/")[-1] for row in clustered["layers"] if row.get("clustered")}
        kernels = _kernels(output)
        distinct = [len(np.unique(kernels[name])) for name in chosen if name in kernels]
        assert distinct and max(distinct) <= CLUSTERS, (max(distinct), len(distinct))
        return f"{len(distinct)} kernels, <= {max(distinct)} values"
    int8, total = _int8_ops(output)
    assert total and int8 == total, (int8, total)
    return f"{int8} of {total} compute ops int8"


def run_family(family: str, folder: Path, size: int | None = None,
               only: tuple[str, ...] | None = None) -> list[StepOutcome]:
    """inspect, prune, cluster and quantize one family (or the steps in ``only``); each outcome checked
    (AssertionError on a wrong one)."""
    model, data = build(family, folder, size)
    steps = {
        "inspect": (["inspect", model, "--json"], None),
        "prune": (["prune", model, "--data", data, "--sparsity", PRUNE_SPARSITY, "--epochs", 1, "--json"],
                  folder / f"{family}.pruned.keras"),
        "cluster": (["cluster", model, "--data", data, "--clusters", CLUSTERS, "--epochs", 1, "--json"],
                    folder / f"{family}.clustered.keras"),
        "quantize": (["quantize", model, "--mode", "int8", "--calibration", data, "--samples", 32],
                     folder / f"{family}.int8.tflite"),
    }
    outcomes = []
    for step, (args, output) in steps.items():
        if only is not None and step not in only:
            continue
        code, stdout, stderr, seconds = edgepack(*args, *(["-o", output] if output else []))
        outcomes.append(StepOutcome(step, code, round(seconds, 1), check(step, code, stdout, stderr, output)))
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--size", type=int, default=None, help="input size (default: each family's smallest)")
    args = parser.parse_args()
    print("| family | step | exit | seconds | checked from the file |\n|---|---|---|---|---|", flush=True)
    failures = 0
    for family in args.families.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                outcomes = run_family(family, Path(tmp), args.size)
            except AssertionError as exc:
                failures += 1
                print(f"| {family} | - | FAILED | - | {exc} |", flush=True)
                continue
        for outcome in outcomes:
            print(f"| {family} | {outcome.step} | {outcome.code} | {outcome.seconds} | {outcome.figure} |", flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
