"""Benchmark: ``edgepack evaluate`` on a folder of generated 224x224 JPEG images with MobileNetV2.

Peak memory (RSS) of the evaluation as the folder grows from 5,000 to 20,000 images (goal: under
1.5 GB and flat: the data is streamed a batch at a time), and its images/s divided by a bare
decode+invoke loop on the same folder (goal: >= 0.9). Both sides decode each JPEG with PIL, apply
MobileNetV2's preprocessing (x / 127.5 - 1; edgepack: ``--preprocess mobilenet_v2``) and run the
same .tflite (keras.applications.MobileNetV2, weights=None, float32, batch 1, as built by
benchmarks/_mobilenet.py) with the runtime's default thread count.

    python benchmarks/data_scale.py [--sizes 5000,10000,20000] [--folder /tmp/edgepack-data-scale]

The images (about 15 KB each) are written under --folder and deleted at the end. Every measurement
runs in a fresh child process; peak RSS is that child's ru_maxrss (os.wait4). The children import
no TensorFlow (evaluating a .tflite does not need it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CLASSES = 10


def generate(folder: Path, count: int, seed: int = 0) -> None:
    """``count`` smooth random 224x224 RGB JPEGs in ``CLASSES`` class folders (quality 90)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label in range(CLASSES):
        (folder / f"class_{label}").mkdir(parents=True, exist_ok=True)
    for index in range(count):
        small = rng.integers(0, 256, (7, 7, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((224, 224), Image.BILINEAR)
        noise = rng.normal(0, 6, (224, 224, 3))
        pixels = np.clip(np.asarray(image, np.float32) + noise, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"class_{index % CLASSES}" / f"{index:06d}.jpg", quality=90)


def subset(source: Path, target: Path, count: int) -> Path:
    """The first ``count`` images of ``source`` (by index) as hard links in ``target``'s class folders."""
    for label in range(CLASSES):
        (target / f"class_{label}").mkdir(parents=True, exist_ok=True)
    for index in range(count):
        name = f"class_{index % CLASSES}/{index:06d}.jpg"
        os.link(source / name, target / name)
    return target


def child_edgepack(model: str, folder: str) -> dict:
    sys.path.insert(0, str(ROOT))
    from edgepack.evaluation.evaluate import EvaluateConfig, evaluate
    from edgepack.loading.data import DataSpec

    start = time.perf_counter()
    result = evaluate(EvaluateConfig(model=Path(model), data=DataSpec(source=folder, preprocess="mobilenet_v2")))
    return {"samples": result.samples, "seconds": time.perf_counter() - start, "accuracy": result.tflite.value,
            "batch": result.batch_size}


def child_bare(model: str, folder: str) -> dict:
    """What a user writes by hand: list, decode, preprocess, set_tensor / invoke / get_tensor."""
    from ai_edge_litert.interpreter import Interpreter
    from PIL import Image

    start = time.perf_counter()
    interpreter = Interpreter(model_path=model)
    interpreter.allocate_tensors()
    index_in = interpreter.get_input_details()[0]["index"]
    index_out = interpreter.get_output_details()[0]["index"]
    classes = sorted(p for p in Path(folder).iterdir() if p.is_dir())
    hits = total = 0
    for label, path in enumerate(classes):
        for file in sorted(path.iterdir()):
            with Image.open(file) as image:
                pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
            interpreter.set_tensor(index_in, (pixels / np.float32(127.5) - np.float32(1))[None])
            interpreter.invoke()
            hits += int(interpreter.get_tensor(index_out)[0].argmax() == label)
            total += 1
    return {"samples": total, "seconds": time.perf_counter() - start, "accuracy": hits / total}


def measure(kind: str, model: Path, folder: Path) -> dict:
    """Run one child; its JSON line plus its peak RSS in MB."""
    process = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", kind, str(model),
                                str(folder)], stdout=subprocess.PIPE, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{kind} child failed with exit {process.returncode}")
    reply = json.loads(output.decode().strip().splitlines()[-1])
    reply["peak_rss_mb"] = usage.ru_maxrss / 1024
    return reply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,10000,20000")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/edgepack-data-scale"))
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    sys.path.insert(0, str(HERE))
    from _mobilenet import mobilenet_tflite

    model = mobilenet_tflite("mobilenet_v2", "float32")
    shutil.rmtree(args.folder, ignore_errors=True)
    try:
        started = time.perf_counter()
        generate(args.folder / f"n{sizes[-1]}", sizes[-1])
        size_mb = sum(f.stat().st_size for f in (args.folder / f"n{sizes[-1]}").rglob("*.jpg")) / 2**20
        print(f"generated {sizes[-1]:,} JPEGs ({size_mb:,.0f} MB) in {time.perf_counter() - started:.0f} s; "
              f"model {model.name} ({model.stat().st_size / 2**20:.1f} MB)", flush=True)
        print(f"{'images':>8}{'edgepack img/s':>16}{'bare img/s':>12}{'ratio':>7}{'edgepack RSS':>14}"
              f"{'bare RSS':>10}{'as one array':>14}", flush=True)
        for count in sizes:
            folder = args.folder / f"n{count}"
            if not folder.exists():
                subset(args.folder / f"n{sizes[-1]}", folder, count)
            bare = measure("bare", model, folder)
            ours = measure("edgepack", model, folder)
            assert ours["samples"] == bare["samples"] == count
            assert abs(ours["accuracy"] - bare["accuracy"]) < 1e-9, (ours, bare)
            rate, bare_rate = count / ours["seconds"], count / bare["seconds"]
            print(f"{count:>8,}{rate:>16,.1f}{bare_rate:>12,.1f}{rate / bare_rate:>7.2f}"
                  f"{ours['peak_rss_mb']:>11,.0f} MB{bare['peak_rss_mb']:>7,.0f} MB"
                  f"{count * 224 * 224 * 3 * 4 / 2**30:>11.1f} GB", flush=True)
    finally:
        shutil.rmtree(args.folder, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        run = child_edgepack if sys.argv[2] == "edgepack" else child_bare
        print(json.dumps(run(sys.argv[3], sys.argv[4])))
    else:
        main()
