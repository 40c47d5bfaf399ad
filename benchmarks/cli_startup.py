"""Benchmark (b): wall time of ``edgepack --help`` and proof that it imports no TensorFlow.

Runs ``python -m edgepack --help`` and ``python -c pass`` alternately, 15 times each, and prints
the medians and their difference. Goal: ``edgepack --help`` under 0.25 s (issue 19), TensorFlow not imported.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

PROBE = ("import sys, runpy\nsys.argv = ['edgepack', '--help']\n"
         "try:\n    runpy.run_module('edgepack', run_name='__main__')\nexcept SystemExit:\n    pass\n"
         "sys.stderr.write('tensorflow imported: %s\\n' % ('tensorflow' in sys.modules))")


def wall(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    return time.perf_counter() - start


def main(rounds: int = 15) -> None:
    help_times, bare_times = [], []
    for _ in range(rounds):
        help_times.append(wall([sys.executable, "-m", "edgepack", "--help"]))
        bare_times.append(wall([sys.executable, "-c", "pass"]))
    probe = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    h, b = statistics.median(help_times), statistics.median(bare_times)
    print(f"edgepack --help: median {h * 1000:.0f} ms (min {min(help_times) * 1000:.0f}, max "
          f"{max(help_times) * 1000:.0f}) over {rounds} runs")
    print(f"python -c pass : median {b * 1000:.0f} ms; edgepack's own start-up {(h - b) * 1000:.0f} ms")
    print(probe.stderr.strip())
    print("goal < 250 ms and no TensorFlow:", "MET" if h < 0.25 and "False" in probe.stderr else "NOT MET")


if __name__ == "__main__":
    main()
