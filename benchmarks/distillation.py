"""Benchmark (g): what distillation buys while fine-tuning (prune, then QAT) on the digits CNN.

For each setting it runs the same fine-tuning with and without ``--distill`` (T=3, alpha=0.5, the
defaults) over several seeds and prints the val accuracy of the result (the Keras model after
prune; the int8 .tflite after QAT, measured with the LiteRT interpreter) as mean and spread.

    .venv/bin/python benchmarks/distillation.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import digits_example  # noqa: E402

SETTINGS = [
    ("prune 0.90 constant, 3 epochs", "prune", {"sparsity": 0.9, "schedule": "constant", "epochs": 3}),
    ("prune 0.95 polynomial, 6 epochs", "prune", {"sparsity": 0.95, "epochs": 6}),
    ("qat after prune 0.9, 1 epoch", "qat", {"epochs": 1}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    import edgepack

    paths = digits_example()
    print(f"{'setting':34} {'plain acc %':>16} {'distilled acc %':>18}")
    with tempfile.TemporaryDirectory(prefix="edgepack-distill-") as tmp:
        pruned = Path(tmp) / "p90.keras"
        edgepack.prune(paths["model"], data=paths["train"], output=pruned, sparsity=0.9, epochs=4)
        for label, step, params in SETTINGS:
            figures = {False: [], True: []}
            for seed in range(args.seeds):
                for distill in (False, True):
                    figures[distill].append(_run(edgepack, step, paths, pruned, Path(tmp), params, seed, distill))
            print(f"{label:34} {_spread(figures[False]):>16} {_spread(figures[True]):>18}")


def _run(edgepack, step: str, paths: dict, pruned: Path, tmp: Path, params: dict, seed: int, distill: bool) -> float:
    if step == "prune":
        result = edgepack.prune(paths["model"], data=paths["train"], val=paths["val"], output=tmp / "p.keras",
                                seed=seed, distill=distill, **params)
        return result.metrics["after"] * 100
    from edgepack.steps.qat import QatConfig, qat
    from edgepack.loading.data import DataSpec

    artifact = qat(QatConfig(model=pruned, data=DataSpec(source=str(paths["train"])), output=tmp / "q.tflite",
                             val=DataSpec(source=str(paths["val"])), seed=seed, distill=distill, **params))
    return artifact.metrics["tflite"] * 100


def _spread(values: list[float]) -> str:
    return f"{statistics.mean(values):.1f} ± {statistics.pstdev(values):.1f}"


if __name__ == "__main__":
    main()
