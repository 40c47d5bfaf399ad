"""Benchmark (f): plain int8 vs accuracy control, on a model that is hard for int8 and on the digits CNN.

For each model and method it prints: the accuracy drop against the float Keras model (percentage
points, measured here with the LiteRT interpreter), how many layers run in float (compute ops with
float weights, read from the .tflite), the file size, the p50 latency measured here (edgepack's
profiler, 1 thread) and the wall time of the conversion. QAT rows fine-tune 2 epochs (with and
without distillation) and convert to full int8.

    .venv/bin/python benchmarks/accuracy_control.py [--max-drop 1.0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _common import CACHE, digits_example  # noqa: E402

COMPUTE_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"}


def tflite_facts(path: Path, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """(accuracy, compute ops with float weights) read from the .tflite itself."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    correct = 0
    for row, label in zip(x, y):
        value = row[None].astype(np.float32)
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            value = np.clip(np.round(value / scale) + zero, -128, 127).astype(inp["dtype"])
        interpreter.set_tensor(inp["index"], value)
        interpreter.invoke()
        correct += int(np.argmax(interpreter.get_tensor(out["index"])[0]) == label)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    floats = sum(1 for op in interpreter._get_ops_details()
                 if op["op_name"] in COMPUTE_OPS and tensors[op["inputs"][1]]["dtype"] == np.float32)
    return correct / len(y), floats


def models(paths: dict) -> list[tuple[str, Path]]:
    from hard_model import build_hard_model

    hard = CACHE / "hard" / "hard.keras"
    if not hard.exists():
        hard.parent.mkdir(parents=True, exist_ok=True)
        build_hard_model(hard.parent, paths["train"])
    return [("hard (deep CNN, 2 units x1000)", hard), ("digits CNN", paths["model"])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-drop", type=float, default=1.0)
    args = parser.parse_args()
    import edgepack
    import keras

    paths = digits_example()
    val = np.load(paths["val"])
    print(f"{'model':32} {'method':22} {'drop pts':>8} {'float layers':>12} {'size KB':>8} {'p50 ms':>7} {'wall s':>6}")
    with tempfile.TemporaryDirectory(prefix="edgepack-accuracy-") as tmp:
        for label, model in models(paths):
            reference = float(np.mean(keras.saving.load_model(model).predict(val["x"], verbose=0).argmax(1) == val["y"]))
            layers = len(keras.saving.load_model(model).layers) - 1
            methods = [("plain int8", {}), (f"accuracy control {args.max_drop:g}",
                                            {"val": paths["val"], "max_drop": args.max_drop}),
                       ("qat 2 epochs", {"qat": True}), ("qat 2 epochs + distill", {"qat": True, "distill": True})]
            for index, (method, extra) in enumerate(methods):
                out = Path(tmp) / f"{len(label)}-{index}.tflite"
                started = time.perf_counter()
                if extra.pop("qat", False):
                    _qat(model, out, paths, **extra)
                else:
                    edgepack.quantize(model, out, mode="int8", io="int8", calibration=paths["train"], **extra)
                wall = time.perf_counter() - started
                accuracy, floats = tflite_facts(out, val["x"], val["y"])
                p50 = edgepack.profile(out, threads=1, runs=200, min_seconds=0.5).latency_ms["p50"]
                print(f"{label:32} {method:22} {(reference - accuracy) * 100:8.2f} {floats:5d} of {layers:<4d} "
                      f"{out.stat().st_size / 1024:8.1f} {p50:7.3f} {wall:6.1f}")


def _qat(model: Path, out: Path, paths: dict, distill: bool = False) -> None:
    from edgepack.loading.data import DataSpec
    from edgepack.steps.qat import QatConfig, qat

    qat(QatConfig(model=model, data=DataSpec(source=str(paths["train"])), output=out, io="int8", epochs=2,
                  distill=distill))


if __name__ == "__main__":
    main()
