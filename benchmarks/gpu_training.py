"""Fine-tuning on the CPU against the GPU: one epoch of `edgepack prune` on MobileNetV2 (alpha 1.0,
160x160, 10 classes, random weights, 512 random images), the same command run with the GPU hidden
(CUDA_VISIBLE_DEVICES="") and with it visible, rounds interleaved, medians of the fine-tuning seconds
that prune reports (model building and saving left out), and where each run says it trained.

Needs the `gpu` extra on a machine with an NVIDIA GPU; without one it says so and stops.

    .venv/bin/python benchmarks/gpu_training.py [--rounds 2] [--samples 512] [--size 160]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def _gpus() -> list[str]:
    code = "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    return int(done.stdout.strip() or 0) if done.returncode == 0 else 0


def _inputs(folder: Path, samples: int, size: int) -> tuple[Path, Path]:
    import keras

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=1.0, weights=None, classes=10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    path = folder / "mobilenetv2.keras"
    model.save(path)
    rng = np.random.default_rng(0)
    train = folder / "train.npz"
    np.savez(train, x=rng.uniform(-1, 1, (samples, size, size, 3)).astype(np.float32),
             y=rng.integers(0, 10, samples))
    return path, train


def _prune(model: Path, train: Path, output: Path, gpu: bool) -> dict:
    env = dict(os.environ)
    if not gpu:
        env["CUDA_VISIBLE_DEVICES"] = ""
    done = subprocess.run([sys.executable, "-m", "edgepack", "prune", str(model), "--data", str(train), "--sparsity",
                           "0.5", "--epochs", "1", "--batch-size", "32", "-o", str(output), "--json"],
                          capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"prune failed ({'GPU' if gpu else 'CPU'}): {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--size", type=int, default=160)
    args = parser.parse_args()
    gpus = _gpus()
    if not gpus:
        print("no GPU visible to TensorFlow: nothing to compare (install 'edgepack[gpu]' on a machine with one)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model, train = _inputs(folder, args.samples, args.size)
        seconds = {"CPU": [], "GPU": []}
        where = {}
        for round_ in range(args.rounds):
            for side in (("CPU", "GPU") if round_ % 2 == 0 else ("GPU", "CPU")):
                doc = _prune(model, train, folder / f"{side}.keras", gpu=side == "GPU")
                seconds[side].append(doc["seconds"])
                where[side] = doc["trained_on"]
        cpu, gpu = statistics.median(seconds["CPU"]), statistics.median(seconds["GPU"])
        print(f"MobileNetV2 1.0 {args.size}x{args.size}, {args.samples} images, 1 epoch of prune (batch 32), "
              f"{args.rounds} rounds interleaved, {gpus} GPU(s) visible")
        print(f"| side | trained on | fine-tuning s (median) |\n|---|---|---|")
        for side, value in (("CPU", cpu), ("GPU", gpu)):
            print(f"| {side} | {where[side]} | {value:.1f} |")
        print(f"GPU is {cpu / gpu:.1f}x faster per epoch")


if __name__ == "__main__":
    main()
