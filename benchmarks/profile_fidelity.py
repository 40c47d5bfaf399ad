"""Benchmark: profiler fidelity — ``edgepack profile``'s mean ÷ LiteRT's own Python benchmark's mean.

The reference is ``ai_edge_litert/tools/benchmark_litert_model.py`` (shipped inside ai-edge-litert;
flags --model --num_threads --num_runs --warmup_runs --result_json; CompiledModel on the CPU). Both
measure MobileNetV2 (keras.applications, weights=None, batch 1) as float32 and full int8 at 1 and 2
threads, side by side in one run: several alternating rounds, each tool in its own process, the
ratio of the medians of the means printed. Goal: within ±3%.

The reference does a fixed number of warm-ups and runs; edgepack (like benchmark_model) keeps going
until counts *and* times are reached (5 warm-ups and 0.5 s; 50 runs and 1 s). So that both measure
the same thing, the reference is given the warm-up and run counts edgepack used in the same round
("matched"); the ratio with the reference's own defaults (5 warm-ups, 50 runs) is printed too.

    .venv/bin/python benchmarks/profile_fidelity.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _mobilenet import ROOT, mobilenet_tflite  # noqa: E402

sys.path.insert(0, str(ROOT))
RUNS, WARMUP = 50, 5


def reference_mean(model: Path, threads: int, out: Path, runs: int = RUNS, warmup: int = WARMUP) -> float:
    """benchmark_litert_model.py's mean latency (ms), in its own process."""
    result = out / "reference.json"
    subprocess.run([sys.executable, "-m", "ai_edge_litert.tools.benchmark_litert_model", f"--model={model}",
                    f"--num_threads={threads}", f"--num_runs={runs}", f"--warmup_runs={warmup}",
                    f"--result_json={result}"], check=True, capture_output=True, text=True)
    return json.loads(result.read_text())["latency"]["avg_ms"]


def edgepack_run(model: Path, threads: int) -> tuple[float, int, int]:
    """``edgepack profile``'s mean latency (ms) with its default method, and the warm-up and timed
    run counts it used (the library call, which runs the device-side runner in a child process)."""
    from edgepack.latency import LatencyConfig, profile

    result = profile(LatencyConfig(model=model, threads=threads, runs=RUNS, warmup=WARMUP))
    return result.latency_ms["mean"], result.warmup["count"], result.latency_ms["count"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import ai_edge_litert
    from importlib import metadata

    print(f"MobileNetV2 224x224, ai-edge-litert {metadata.version('ai-edge-litert')}, {RUNS} runs, {WARMUP} warm-ups;"
          f" {args.rounds} alternating rounds; medians of the per-round means")
    print(f"{'model':<9}{'threads':>8}{'edgepack ms':>12}{'matched ref':>12}{'ratio':>7}{'default ref':>12}"
          f"{'ratio':>7}  per-round matched ratios")
    del ai_edge_litert
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("float32", "int8"):
            model = mobilenet_tflite("mobilenet_v2", mode)
            for threads in (1, 2):
                ours, matched, default, counts = [], [], [], None
                for round_index in range(args.rounds):
                    if round_index % 2 and counts:  # alternate which tool goes first
                        matched.append(reference_mean(model, threads, Path(tmp), counts[1], counts[0]))
                    mean, *counts = edgepack_run(model, threads)
                    ours.append(mean)
                    if len(matched) < len(ours):
                        matched.append(reference_mean(model, threads, Path(tmp), counts[1], counts[0]))
                    default.append(reference_mean(model, threads, Path(tmp)))
                mine, ref, ref_default = (statistics.median(v) for v in (ours, matched, default))
                ratios = " ".join(f"{o / r:.3f}" for o, r in zip(ours, matched))
                print(f"{mode:<9}{threads:>8}{mine:>12.3f}{ref:>12.3f}{mine / ref:>7.3f}{ref_default:>12.3f}"
                      f"{mine / ref_default:>7.3f}  {ratios}", flush=True)


if __name__ == "__main__":
    main()
