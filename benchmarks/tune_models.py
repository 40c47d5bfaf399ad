"""Benchmark (i): `edgepack tune` toward "≤ 1.0 point drop, smallest size" on four architectures.

The digits CNN (the demo's), a Conv1D net over the digits as 64-step sequences (not used while
building the tuner), and two BatchNorm models on digits upscaled to 32x32: a residual CNN and a
MobileNet-style net (depthwise separable, BatchNorm after every convolution; _batchnorm_models.py). Each recipe: prune → cluster → int8 (int8 I/O), estimated latency, gate
``max_accuracy_drop: 1.0``, and ``tune: {objectives: [size, drop]}`` — the default search space. For
each model this runs ``edgepack tune --timeout T`` as a user writes it (no ``--trials``), then runs the written TUNED.yaml again from a clean
folder and measures, here, from the files: the gzip size of its .tflite against the float32 .tflite
(converted here), and its accuracy in the LiteRT interpreter against the float Keras model.

    .venv/bin/python benchmarks/tune_models.py [--timeout 600] [--models digits,conv1d,residual,mobilenet]
        [--objectives size,drop]

``--objectives flash,drop`` tunes toward the smallest .tflite in bytes (what the device holds) instead of
the smallest download; the table then also gives the .tflite bytes against the float32 .tflite's.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CACHE, ROOT, digits_example  # noqa: E402
from accuracy_control import tflite_facts  # noqa: E402
from allocation import conv1d_example  # noqa: E402
from _batchnorm_models import batchnorm_example  # noqa: E402

RECIPE = """\
name: {name}
device: raspberry-pi-4
model: {model}
data: {{train: {train}, val: {val}}}
steps:
  - prune: {{sparsity: 0.8, epochs: 4}}
  - cluster: {{clusters: 16, preserve_sparsity: true, epochs: 2}}
  - quantize: {{mode: int8, io: int8}}
  - profile: {{where: estimate}}
gates: {{max_accuracy_drop: 1.0}}
output: {output}
tune: {{objectives: [{objectives}]}}
"""


def edgepack(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "edgepack", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True)


def float32_tflite(model: Path, folder: Path) -> bytes:
    done = edgepack("quantize", model, "-o", folder / "float32.tflite", "--mode", "float32", cwd=folder)
    assert done.returncode == 0, done.stderr[-2000:]
    return (folder / "float32.tflite").read_bytes()


def keras_accuracy(model: Path, val: dict) -> float:
    import keras

    net = keras.saving.load_model(model)
    return float(np.mean(net.predict(val["x"], verbose=0).argmax(1) == val["y"]))


def tune_one(name: str, paths: dict, timeout: float, folder: Path, objectives: str = "size, drop") -> dict:
    recipe = folder / f"{name}.yaml"
    recipe.write_text(RECIPE.format(name=name, model=paths["model"], train=paths["train"], val=paths["val"],
                                    output=folder / "dist" / "{name}", objectives=objectives))
    started = time.perf_counter()
    tuned = edgepack("tune", recipe, "--timeout", timeout, "-o", folder / "tuned.yaml", "--json", cwd=folder)
    seconds = time.perf_counter() - started
    assert tuned.returncode == 0, tuned.stderr[-3000:]
    study = json.loads(tuned.stdout)
    clean = folder / "clean"
    clean.mkdir()
    again = edgepack("run", folder / "tuned.yaml", "-o", clean / "bundle", "--json", cwd=clean)
    val = dict(np.load(paths["val"]))
    tflite = clean / "bundle" / "model.tflite"
    accuracy, _ = tflite_facts(tflite, val["x"], val["y"])
    reference = keras_accuracy(paths["model"], val)
    best = next(t for t in study["trials"] if t["number"] == study["best"])
    float32 = float32_tflite(paths["model"], folder)
    return {"bytes": tflite.stat().st_size, "float32_bytes": len(float32),"trials": len(study["trials"]), "stopped_by": study["stopped_by"], "feasible": sum(t["feasible"] for t in study["trials"]),
            "seconds": seconds, "settings": best["steps"], "gzip": len(gzip.compress(tflite.read_bytes(), 9)),
            "float32_gzip": len(gzip.compress(float32, 9)), "drop": 100 * (reference - accuracy),
            "rerun_passed": again.returncode == 0 and json.loads(again.stdout)["passed"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--models", default="digits,conv1d,residual,mobilenet")
    parser.add_argument("--objectives", default="size,drop")
    args = parser.parse_args()
    digits = digits_example()
    available = {"digits": lambda: digits, "conv1d": lambda: conv1d_example(digits),
                 "residual": lambda: batchnorm_example("residual"), "mobilenet": lambda: batchnorm_example("mobilenet")}
    print(f"objectives: {args.objectives}")
    print("| model | trials (passing) | wall s | best: gzip B | float32 gzip B | ratio | best: .tflite B | "
          "float32 .tflite B | ratio | drop (points, measured here) | TUNED.yaml again |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        with tempfile.TemporaryDirectory(prefix=f"tune-{name}-", dir=CACHE) as folder:
            r = tune_one(name, available[name](), args.timeout, Path(folder), args.objectives.replace(",", ", "))
        print(f"| {name} | {r['trials']} ({r['feasible']}) | {r['seconds']:.0f} | {r['gzip']:,} | "
              f"{r['float32_gzip']:,} | {r['float32_gzip'] / r['gzip']:.1f}x | {r['bytes']:,} | "
              f"{r['float32_bytes']:,} | {r['float32_bytes'] / r['bytes']:.1f}x | {r['drop']:.2f} | "
              f"{'passes' if r['rerun_passed'] else 'FAILS'} |", flush=True)
        print(f"  best settings: {json.dumps(r['settings'])}; the study ended by its {r['stopped_by']}", flush=True)


if __name__ == "__main__":
    main()
