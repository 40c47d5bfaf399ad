"""Benchmark (a): ``edgepack evaluate`` throughput divided by a bare interpreter loop.

Both run the same .tflite on the same data (the digits val set tiled to 9,000 rows), alternating
in one process, several rounds; the ratio of the medians is printed. Goal: >= 0.9.
The bare loop is what a user writes by hand: set_tensor / invoke / get_tensor, one row at a time.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import digits_example  # noqa: E402


def bare_loop(model: Path, x: np.ndarray) -> float:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    start = time.perf_counter()
    for row in x:
        interpreter.set_tensor(inp["index"], row[None])
        interpreter.invoke()
        interpreter.get_tensor(out["index"])
    return len(x) / (time.perf_counter() - start)


def edgepack_evaluate(model: Path, data: Path, batch_size: int) -> float:
    from edgepack.evaluation.evaluate import EvaluateConfig, evaluate
    from edgepack.loading.data import DataSpec

    result = evaluate(EvaluateConfig(model=model, data=DataSpec(source=str(data)), batch_size=batch_size))
    return result.samples / result.tflite.seconds


def main(rounds: int = 5) -> None:
    paths = digits_example()
    with tempfile.TemporaryDirectory(prefix="edgepack-bench-") as folder:
        _compare(paths, Path(folder), rounds)


def _compare(paths: dict, work: Path, rounds: int) -> None:
    from edgepack.steps.quantize import QuantizeConfig, quantize
    from edgepack.loading.data import DataSpec

    val = np.load(paths["val"])
    x, y = np.tile(val["x"], (20, 1, 1, 1)), np.tile(val["y"], 20)
    np.savez(work / "big.npz", x=x, y=y)
    print(f"data: {len(x)} rows of {x.shape[1:]}; {rounds} alternating rounds; medians")
    print(f"{'model':<10}{'bare loop/s':>14}{'evaluate b=1/s':>16}{'ratio':>8}{'evaluate b=64/s':>17}{'ratio':>8}")
    for mode in ("float32", "int8"):
        model = quantize(QuantizeConfig(model=paths["model"], output=work / f"{mode}.tflite", mode=mode,
                                        calibration=DataSpec(source=str(paths["train"])) if mode == "int8" else None)).path
        bare, single, batched = [], [], []
        for _ in range(rounds):
            bare.append(bare_loop(model, x))
            single.append(edgepack_evaluate(model, work / "big.npz", 1))
            batched.append(edgepack_evaluate(model, work / "big.npz", 64))
        b, s, m = statistics.median(bare), statistics.median(single), statistics.median(batched)
        print(f"{mode:<10}{b:>14,.0f}{s:>16,.0f}{s / b:>8.2f}{m:>17,.0f}{m / b:>8.2f}")


if __name__ == "__main__":
    main()
