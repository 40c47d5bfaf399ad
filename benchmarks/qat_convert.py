"""Benchmark: converting a tf_keras model (the QAT model at the end of ``edgepack qat``, or a Keras 2
model given to ``quantize``), two ways on the same model.

- ``keras``: what edgepack 0.1 did, ``TFLiteConverter.from_keras_model`` (the converter saves the whole
  model as a SavedModel first, tracing every layer's call, tfmot's wrappers most of all);
- ``function``: what ``edgepack.quantization.convert.tf_keras_converter`` does now, the model's
  inference function and its variables only (``from_concrete_functions`` with a ``tf.Module``).

Models: the digits CNN (8x8x1, ~26 k parameters), the 16-convolution "hard" CNN of the accuracy-control
tests, and MobileNetV2 (96x96x3, alpha 1.0, random weights), each wrapped by tfmot's ``quantize_model``
on the tf_keras bridge and run once on random data (the fake-quant ranges then hold values), converted
to int8; and ``mobilenet_v2_plain``, the same MobileNetV2 in tf_keras without QAT, converted to float32.
Rounds interleave the two ways; medians are printed with the ratio, and the two flatbuffers' outputs
on the same rows are compared (they must be equal).

    .venv/bin/python benchmarks/qat_convert.py [--rounds 3] [--models digits,hard,mobilenet_v2,mobilenet_v2_plain]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import ROOT, digits_example

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def keras_model(name: str, folder: Path):
    """The Keras 3 model ``name`` and its input shape (without the batch)."""
    import keras

    if name == "digits":
        return keras.models.load_model(digits_example()["model"]), (8, 8, 1)
    if name == "hard":
        from hard_model import build_hard_model

        built = build_hard_model(folder, digits_example()["train"], epochs=1)
        return keras.models.load_model(built["model"]), (8, 8, 1)
    keras.utils.set_random_seed(0)
    return keras.applications.MobileNetV2(input_shape=(96, 96, 3), weights=None, classes=10), (96, 96, 3)


def tf_keras_model(name: str, folder: Path):
    """``name`` rebuilt in tf_keras and (unless ``_plain``) wrapped for QAT, after one forward pass in
    training mode; with random rows of its input."""
    import tensorflow_model_optimization as tfmot

    from edgepack.compress import bridge

    model, shape = keras_model(name.removesuffix("_plain"), folder)
    rebuilt = bridge.rebuild(model, bridge.TF_KERAS)
    wrapped = rebuilt if name.endswith("_plain") else tfmot.quantization.keras.quantize_model(rebuilt)
    x = np.random.default_rng(0).random((8, *shape)).astype(np.float32)
    wrapped(x, training=True)
    return wrapped, x


def convert(tf, converter, quantized: bool) -> bytes:
    converter.optimizations = [tf.lite.Optimize.DEFAULT] if quantized else []
    return converter.convert()


def by_keras(tf, model, quantized: bool) -> bytes:
    return convert(tf, tf.lite.TFLiteConverter.from_keras_model(model), quantized)


def by_function(tf, model, quantized: bool) -> bytes:
    from edgepack.quantization.convert import tf_keras_converter

    return convert(tf, tf_keras_converter(tf, model, False), quantized)


def outputs(flatbuffer: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=flatbuffer).get_signature_runner()
    name = next(iter(runner.get_input_details()))
    return np.concatenate([next(iter(runner(**{name: row[None]}).values())) for row in x])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", default="digits,hard,mobilenet_v2,mobilenet_v2_plain")
    args = parser.parse_args()
    from edgepack.util.tf import captured_native_output, import_tf

    tf = import_tf()
    ways = {"keras": by_keras, "function": by_function}
    print("| model | keras (s) | function (s) | speed-up | same outputs |\n|---|---|---|---|---|", flush=True)
    for name in args.models.split(","):
        with tempfile.TemporaryDirectory() as tmp, captured_native_output():
            model, x = tf_keras_model(name, Path(tmp))
            seconds = {way: [] for way in ways}
            made = {}
            for round_ in range(args.rounds):
                for way in (list(ways) if round_ % 2 == 0 else list(reversed(ways))):
                    start = time.perf_counter()
                    made[way] = ways[way](tf, model, not name.endswith("_plain"))
                    seconds[way].append(time.perf_counter() - start)
        same = np.array_equal(outputs(made["keras"], x), outputs(made["function"], x))
        keras_s, function_s = (statistics.median(seconds[way]) for way in ways)
        print(f"| {name} | {keras_s:.2f} | {function_s:.2f} | {keras_s / function_s:.2f}x | {same} |", flush=True)


if __name__ == "__main__":
    main()
