"""Does XNNPACK run a convolution faster per MAC when its channel count is a multiple of 4, 8 or 16?

The answer sets the device profiles' ``channel_multiple`` (the default ``--round-to`` of channel
pruning). A stack of three convolutions (1x1, 3x3, 1x1) at 28x28 with C channels in and out, for C
around 64 and 128, converted to float32 and to int8, timed here (1 thread, XNNPACK, every model's
rounds interleaved, medians). Printed per width: ms, and ns per kMAC relative to the widest multiple
of 16 below it, so a width that costs more per MAC than its neighbours shows.

    .venv/bin/python benchmarks/channel_multiples.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CACHE  # noqa: E402

WIDTHS = (56, 60, 62, 63, 64, 65, 66, 68, 72, 80, 120, 124, 127, 128, 129, 132, 136, 144)
SIDE = 28


def _model(width: int):
    import keras

    inputs = keras.Input((SIDE, SIDE, width), batch_size=1)
    h = keras.layers.Conv2D(width, 1, activation="relu")(inputs)
    h = keras.layers.Conv2D(width, 3, padding="same", activation="relu")(h)
    return keras.Model(inputs, keras.layers.Conv2D(width, 1)(h))


def macs(width: int) -> int:
    return SIDE * SIDE * width * width * (1 + 9 + 1)


def tflite(width: int, mode: str) -> Path:
    path = CACHE / "channel_multiples" / f"w{width}-{mode}.tflite"
    if path.exists():
        return path
    import tensorflow as tf

    model = _model(width)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode == "int8":
        rng = np.random.default_rng(0)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([rng.uniform(-1, 1, (1, SIDE, SIDE, width)).astype(np.float32)]
                                                    for _ in range(4))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(converter.convert())
    return path


def measure(paths: dict, rounds: int = 9, invokes: int = 20) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    loaded = {}
    for key, path in paths.items():
        interpreter = Interpreter(model_path=str(path), num_threads=1)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
        for _ in range(3):
            interpreter.invoke()
        loaded[key] = interpreter
    samples = {key: [] for key in paths}
    for _ in range(rounds):
        for key, interpreter in loaded.items():
            times = []
            for _ in range(invokes):
                start = time.perf_counter()
                interpreter.invoke()
                times.append((time.perf_counter() - start) * 1e3)
            samples[key].append(statistics.median(times))
    return {key: statistics.median(values) for key, values in samples.items()}


def main() -> None:
    for mode in ("int8", "float32"):
        ms = measure({w: tflite(w, mode) for w in WIDTHS})
        print(f"\n{mode}: width, ms, ns per kMAC (and relative to the width-64/128 model)")
        for w in WIDTHS:
            per = ms[w] / macs(w) * 1e9 / 1e3
            anchor = 64 if w < 100 else 128
            ref = ms[anchor] / macs(anchor) * 1e9 / 1e3
            print(f"  {w:4d}  {ms[w]:7.3f} ms  {per:6.3f}  {per / ref:5.2f}x  "
                  f"{'x16' if w % 16 == 0 else 'x8' if w % 8 == 0 else 'x4' if w % 4 == 0 else ''}")


if __name__ == "__main__":
    main()
