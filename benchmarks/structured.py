"""Channel pruning against plain int8: what the device feels.

Two models trained here on digits (cached in benchmarks/.cache): keras.applications MobileNetV2
(alpha 0.5, 96x96x3, weights=None) and the BatchNorm residual CNN of issue 18 (32x32x1). For each:
plain int8, then ``prune --structure channels`` at two MACs budgets with uniform, sensitivity and
latency allocation (the Raspberry Pi 4 cost model), fine-tuned (15 epochs, distilled from the unpruned model
by default), then int8. Per row: accuracy drop
(LiteRT interpreter on the val set against the float Keras model, computed here), parameters, MACs
(edgepack's count of the Keras graph), ``.tflite`` bytes, p50 measured here (1 thread, XNNPACK, the
models' rounds interleaved, medians), p50 estimated for the Pi 4, Pi 5 and phone profiles, and the
wall time of prune + quantize.

    .venv/bin/python benchmarks/structured.py [--models mobilenetv2,residual] [--epochs 15]
        [--budgets 0.5,0.3] [--allocations uniform,sensitivity,latency] [--distill on|off|both]

Tensor-arena bytes: the arena the LiteRT interpreter plans (built-in kernels), as edgepack measures it
(`edgepack.inspection.arena`, issue 21).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _batchnorm_models import batchnorm_example  # noqa: E402
from _common import CACHE  # noqa: E402

DEVICES = ("raspberry-pi-4", "raspberry-pi-5", "android-phone-cpu")
SIDE = 96


def mobilenet_example(epochs: int = 15) -> dict:
    """MobileNetV2 alpha 0.5 on digits upscaled to 96x96x3, trained once (cached)."""
    out = CACHE / "mobilenetv2-digits"
    paths = {"model": out / "model.keras", "train": out / "train.npz", "val": out / "val.npz"}
    if all(p.exists() for p in paths.values()):
        return paths
    import keras
    from sklearn.datasets import load_digits

    out.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    x = np.repeat(np.repeat(x, SIDE // 8, 1), SIDE // 8, 2)[..., None].repeat(3, axis=-1)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    train, val = order[:1400], order[1400:]
    np.savez(paths["train"], x=x[train], y=y[train])
    np.savez(paths["val"], x=x[val], y=y[val])
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(input_shape=(SIDE, SIDE, 3), alpha=0.5, weights=None, classes=10)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x[train], y[train], epochs=epochs, batch_size=32, verbose=2)
    # keras.applications' BatchNorm momentum (0.999) leaves the moving statistics far from the weights after
    # a few hundred steps (val accuracy at chance in inference mode): estimate them as a user would.
    from edgepack.compress.batchnorm import reestimate

    reestimate(model, x[train], batches=44, batch_size=32, seed=0)
    print(f"float val accuracy {np.mean(np.argmax(model.predict(x[val], verbose=0), -1) == y[val]):.4f}")
    model.save(paths["model"])
    return paths


def tflite_accuracy(path: Path, val) -> float:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    hits = 0
    for row, label in zip(val["x"], val["y"]):
        interpreter.set_tensor(inp["index"], row[None].astype(np.float32))
        interpreter.invoke()
        hits += int(np.argmax(interpreter.get_tensor(out["index"])) == label)
    return 100.0 * hits / len(val["y"])


def keras_accuracy(path: Path, val) -> float:
    import keras

    model = keras.models.load_model(path, compile=False)
    return 100.0 * float(np.mean(np.argmax(model.predict(val["x"], verbose=0), -1) == val["y"]))


def measured_p50(paths: dict[str, Path], rounds: int = 7, invokes: int = 30, threads: int = 1) -> dict[str, float]:
    """Median ms per invoke of each model, ``threads`` threads, rounds interleaved."""
    from ai_edge_litert.interpreter import Interpreter

    loaded = {}
    for name, path in paths.items():
        interpreter = Interpreter(model_path=str(path), num_threads=threads)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
        for _ in range(5):
            interpreter.invoke()
        loaded[name] = interpreter
    medians: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, interpreter in loaded.items():
            times = []
            for _ in range(invokes):
                start = time.perf_counter()
                interpreter.invoke()
                times.append((time.perf_counter() - start) * 1e3)
            medians[name].append(statistics.median(times))
    return {name: statistics.median(values) for name, values in medians.items()}


def estimated(path: Path) -> dict[str, float]:
    import edgepack

    return {device: edgepack.profile(path, device=device, estimate=True).p50 for device in DEVICES}


def arena_bytes(path: Path) -> int | None:
    """The tensor arena the LiteRT interpreter plans for the .tflite (edgepack's measure, in a child process)."""
    from edgepack.inspection.arena import tensor_arena

    return tensor_arena(path).bytes


def keras_macs(path: Path) -> int:
    import keras

    from edgepack.channels.cost import CostModel
    from edgepack.channels.graph import analyze
    from edgepack.channels.rebuild import flatten

    model = flatten(keras.models.load_model(path, compile=False))
    return CostModel(analyze(model)).macs({})


def run_model(name: str, paths: dict, work: Path, epochs: int, budgets: list[float], allocations: list[str],
              distill: str) -> list[dict]:
    import keras

    import edgepack

    val = dict(np.load(paths["val"]))
    float_accuracy = keras_accuracy(paths["model"], val)
    rows = []

    def add(label: str, keras_path: Path, started: float, extra: dict):
        tflite = work / f"{name}-{label}.tflite"
        edgepack.quantize(keras_path, tflite, mode="int8", calibration=paths["train"])
        rows.append({"model": name, "variant": label, "seconds": round(time.perf_counter() - started, 1),
                     "drop": round(float_accuracy - tflite_accuracy(tflite, val), 2),
                     "params": int(keras.models.load_model(keras_path, compile=False).count_params()),
                     "macs": keras_macs(keras_path), "bytes": tflite.stat().st_size, "tflite": str(tflite),
                     "arena": arena_bytes(tflite),
                     **extra})
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "tflite"}), flush=True)

    add("int8", paths["model"], time.perf_counter(), {})
    for budget in budgets:
        for allocate in allocations:
            for teacher in {"off": [False], "on": [True], "both": [False, True]}[distill]:
                label = f"ch{budget:g}-{allocate}" + ("-distill" if teacher else "")
                started = time.perf_counter()
                out = work / f"{name}-{label}.keras"
                edgepack.prune(paths["model"], data=paths["train"], output=out, structure="channels",
                               target_macs=budget, allocate=allocate, round_to=8, epochs=epochs,
                               device="raspberry-pi-4", distill=teacher)
                add(label, out, started, {})
    measured = measured_p50({row["variant"]: Path(row["tflite"]) for row in rows})
    base = measured["int8"]
    for row in rows:
        row["p50_ms"] = round(measured[row["variant"]], 3)
        row["speedup"] = round(base / measured[row["variant"]], 2)
        row["estimated_ms"] = {d: round(v, 3) for d, v in estimated(Path(row["tflite"])).items()}
    return rows


def print_sparse_float(work: Path) -> None:
    """The same xnnpack-pruned float model stored sparse against dense (``--models sparse-float``)."""
    from _sparse_float import sparse_float_rows

    rows = sparse_float_rows(work / "sparse-float", measured_p50, tflite_accuracy)
    print("\nsparse-float: MobileNet-v1-style alpha 0.5 128x128, prune --structure xnnpack, float32 dense vs --sparse")
    print(f"{'1x1 sparsity':>12} {'dense B':>10} {'sparse B':>10} {'1 thr dense':>11} {'sparse':>8} {'speed-up':>8} "
          f"{'2 thr dense':>11} {'sparse':>8} {'speed-up':>8}  conditions  accuracy dense/sparse (same function)")
    for r in rows:
        one, two = r["ms"][1], r["ms"][2]
        print(f"{r['sparsity']:12.2f} {r['bytes']['dense']:10,} {r['bytes']['sparse']:10,} {one['dense']:11.3f} "
              f"{one['sparse']:8.3f} {one['dense'] / one['sparse']:7.2f}x {two['dense']:11.3f} {two['sparse']:8.3f} "
              f"{two['dense'] / two['sparse']:7.2f}x  {'met' if r['ready'] else 'fail: ' + str(r['failed'])}  "
              f"{r['accuracy']['dense']:.2f}/{r['accuracy']['sparse']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="mobilenetv2,residual",
                        help="comma-separated: mobilenetv2, residual, sparse-float (xnnpack pruning, float sparse vs dense)")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--budgets", default="0.5,0.3")
    parser.add_argument("--allocations", default="uniform,sensitivity,latency")
    parser.add_argument("--distill", choices=["off", "on", "both"], default="on",
                        help="fine-tune with distillation from the unpruned model (on), without (off), or both")
    args = parser.parse_args()
    work = CACHE / "structured"
    work.mkdir(parents=True, exist_ok=True)
    examples = {"mobilenetv2": mobilenet_example, "residual": lambda: batchnorm_example("residual")}
    budgets = [float(b) for b in args.budgets.split(",")]
    allocations = args.allocations.split(",")
    for name in args.models.split(","):
        if name == "sparse-float":
            print_sparse_float(work)
            continue
        rows = run_model(name, examples[name](), work, args.epochs, budgets, allocations, args.distill)
        print(f"\n{name}: float -> variant, int8 throughout; p50 measured here (1 thread) and estimated")
        print(f"{'variant':28} {'drop':>6} {'params':>9} {'MACs':>11} {'bytes':>9} {'arena':>8} {'p50 ms':>8} {'speed-up':>8} "
              f"{'Pi4 est':>8} {'Pi5 est':>8} {'phone est':>9} {'wall s':>7}")
        for r in rows:
            e = r["estimated_ms"]
            print(f"{r['variant']:28} {r['drop']:6.2f} {r['params']:9,} {r['macs']:11,} {r['bytes']:9,} {r['arena'] or 0:8,} "
                  f"{r['p50_ms']:8.3f} {r['speedup']:7.2f}x {e[DEVICES[0]]:8.3f} {e[DEVICES[1]]:8.3f} "
                  f"{e[DEVICES[2]]:9.3f} {r['seconds']:7.1f}")
        (work / f"{name}.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
