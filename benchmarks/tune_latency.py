"""Benchmark: `edgepack tune` with ``objectives: [latency, drop]`` on keras.applications MobileNetV2 (issue 20).

The model of structured.py (alpha 0.5, 96x96x3, weights=None, trained here on digits upscaled; cached). The
recipe as a user writes it for a Raspberry Pi 4: plain int8 (int8 I/O), latency estimated from the device
profile, gate ``max_accuracy_drop: 1.0``, and a ``tune:`` section that searches pruning (distilled, 15 epochs,
no accuracy control). ``edgepack tune --timeout T`` runs as a user runs it; then the written tuned recipe runs
again from a clean folder and this script measures, from the files, against plain int8 of the same model:
accuracy drop (LiteRT interpreter on the val set against the float Keras model), p50 here (1 thread, rounds
interleaved, medians) and the estimated p50 on the Pi 4, Pi 5 and phone profiles.

    .venv/bin/python benchmarks/tune_latency.py [--timeout 600]
"""

from __future__ import annotations

import argparse
import json
import sys
import shutil
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CACHE  # noqa: E402
from accuracy_control import tflite_facts  # noqa: E402
from structured import DEVICES, arena_bytes, estimated, keras_accuracy, measured_p50, mobilenet_example  # noqa: E402
from tune_models import edgepack  # noqa: E402

RECIPE = """\
name: mobilenetv2-fast
device: raspberry-pi-4
model: {model}
data: {{train: {train}, val: {val}}}
steps:
  - quantize: {{mode: int8, io: int8}}
  - profile: {{where: estimate}}
gates: {{max_accuracy_drop: 1.0}}
output: {output}
tune: {{objectives: [latency, drop], steps: [prune], distill: [true], epochs: 15, accuracy_control: [false]}}
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    paths = mobilenet_example()
    val = dict(np.load(paths["val"]))
    folder = CACHE / "tune-latency"  # kept after the run: the study, its page and both bundles
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    recipe = folder / "fast.yaml"
    recipe.write_text(RECIPE.format(model=paths["model"], train=paths["train"], val=paths["val"],
                                    output=folder / "dist" / "{name}"))
    started = time.perf_counter()
    tuned = edgepack("tune", recipe, "--timeout", args.timeout, "-o", folder / "tuned.yaml", "--json", cwd=folder)
    seconds = time.perf_counter() - started
    assert tuned.returncode == 0, tuned.stderr[-3000:]
    study = json.loads(tuned.stdout)
    best = next(t for t in study["trials"] if t["number"] == study["best"])
    for t in study["trials"]:
        print(f"trial {t['number']}: {t['state']} latency {t['latency_ms']} drop {t['drop']} feasible {t['feasible']} "
              f"{json.dumps(t['steps'][0]) if t['steps'] and 'prune' in t['steps'][0] else t['note'] or ''}"[:400],
              flush=True)
    clean = folder / "clean"
    clean.mkdir()
    again = edgepack("run", folder / "tuned.yaml", "-o", clean / "bundle", "--json", cwd=clean)
    plain = folder / "int8.tflite"
    done = edgepack("quantize", paths["model"], "-o", plain, "--mode", "int8", "--io", "int8", "--calibration",
                    paths["train"], cwd=folder)
    assert done.returncode == 0, done.stderr[-2000:]
    files = {"int8": plain, "tuned": clean / "bundle" / "model.tflite"}
    reference = keras_accuracy(paths["model"], val)
    drops = {name: round(reference - 100 * tflite_facts(path, val["x"], val["y"])[0], 2) for name, path in files.items()}
    p50 = measured_p50(files)
    estimates = {name: estimated(path) for name, path in files.items()}
    print(f"study: {len(study['trials'])} trials ({sum(t['feasible'] for t in study['trials'])} passing) in "
          f"{seconds:.0f} s, ended by its {study['stopped_by']}; best trial {best['number']}: "
          f"{json.dumps(best['steps'][0])}")
    print(f"tuned recipe again from a clean folder: {'passes' if again.returncode == 0 else 'FAILS'} its gates")
    print("| variant | drop (pts) | .tflite bytes | arena bytes | p50 here | " + " | ".join(f"{d} est" for d in DEVICES) + " |")
    print("|---|---|---|---|---|" + "---|" * len(DEVICES))
    for name, path in files.items():
        print(f"| {name} | {drops[name]:.2f} | {path.stat().st_size:,} | {arena_bytes(path):,} | {p50[name]:.3f} ms | "
              + " | ".join(f"{estimates[name][d]:.3f} ms" for d in DEVICES) + " |")
    print(f"| speed-up | | {files['int8'].stat().st_size / files['tuned'].stat().st_size:.2f}x smaller | | "
          f"{p50['int8'] / p50['tuned']:.2f}x | "
          + " | ".join(f"{estimates['int8'][d] / estimates['tuned'][d]:.2f}x" for d in DEVICES) + " |")


if __name__ == "__main__":
    main()
