"""int4 weights against int8: bytes the device holds, latency per operator kind, and accuracy.

For each model, three .tflite files made with edgepack's ``quantize``: int8 (the TensorFlow converter,
what ``--mode int8`` writes), int8 made with LiteRT Quantizer (the toolchain int4 uses, so the
toolchain's own effect shows apart from int4's), and ``--weights int4`` (LiteRT Quantizer, int4 weights
on FULLY_CONNECTED and CONV_2D, int8 activations). Models: a fully-connected stack (3 x Dense 1024),
a convolution stack (28x28, 128 channels: 1x1, 3x3, 1x1) and MobileNetV2 alpha 0.5 at 96x96 on digits
(its depthwise convolutions keep int8 weights: no int4 kernel). Latency: the LiteRT interpreter with
its default XNNPACK delegate, 1 thread, every model's rounds interleaved, medians.

    .venv/bin/python benchmarks/int4.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import CACHE  # noqa: E402
from channel_multiples import measure  # noqa: E402
from structured import mobilenet_example, tflite_accuracy  # noqa: E402


def _stack(kind: str, folder: Path) -> dict:
    import keras

    keras.utils.set_random_seed(0)
    if kind == "fc":
        inputs = keras.Input((1024,))
        h = inputs
        for _ in range(3):
            h = keras.layers.Dense(1024, activation="relu")(h)
        shape = (1024,)
    else:
        inputs = keras.Input((28, 28, 128))
        h = keras.layers.Conv2D(128, 1, activation="relu")(inputs)
        h = keras.layers.Conv2D(128, 3, padding="same", activation="relu")(h)
        h = keras.layers.Conv2D(128, 1)(h)
        shape = (28, 28, 128)
    path = folder / f"{kind}.keras"
    keras.Model(inputs, h).save(path)
    train = folder / f"{kind}.npz"
    np.savez(train, x=np.random.default_rng(0).uniform(-1, 1, (32, *shape)).astype(np.float32))
    return {"model": path, "train": train, "val": None}


def _variants(example: dict, folder: Path, name: str) -> dict:
    from edgepack.loading.spec import DataSpec
    from edgepack.steps.quantize import QuantizeConfig, quantize

    calibration = DataSpec(source=str(example["train"]))
    made = {}
    for label, extra in (("int8", {}), ("int8 (LiteRT Quantizer)", {}), ("int4", {"weights": "int4"})):
        out = folder / f"{name}-{label.split()[0]}{'-lq' if 'LiteRT' in label else ''}.tflite"
        if "LiteRT" in label:
            made[label] = _litert_int8(example, calibration, out)
            continue
        quantize(QuantizeConfig(model=example["model"], output=out, mode="int8", calibration=calibration,
                                samples=32, **extra))
        made[label] = out
    return made


def _litert_int8(example: dict, calibration, out: Path) -> Path:
    from edgepack.loading.inputs import calibration_rows
    from edgepack.loading.model import load_model
    from edgepack.quantization.layers import strip_markers
    from edgepack.quantization.precision import PrecisionQuantizer

    loaded = load_model(example["model"])
    rows = calibration_rows(calibration, loaded, 32, 0, model_name=str(example["model"]))
    out.write_bytes(strip_markers(PrecisionQuantizer(loaded, rows).quantize([])))
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        examples = {"fc stack": _stack("fc", folder), "conv stack": _stack("conv", folder),
                    "MobileNetV2 0.5 96x96": mobilenet_example()}
        made = {name: _variants(example, folder, name.split()[0].lower()) for name, example in examples.items()}
        flat = {(name, label): path for name, paths in made.items() for label, path in paths.items()}
        ms = measure(flat)
        print("model | variant | bytes | vs int8 | ms p50 (1 thread) | vs int8 | val accuracy")
        for name, paths in made.items():
            val = examples[name]["val"]
            data = np.load(val) if val else None
            for label, path in paths.items():
                size, base = path.stat().st_size, paths["int8"].stat().st_size
                accuracy = f"{tflite_accuracy(path, data):.2f} %" if data is not None else "-"
                print(f"{name} | {label} | {size:,} | {base / size:.2f}x smaller | {ms[(name, label)]:.3f} | "
                      f"{ms[(name, 'int8')] / ms[(name, label)]:.2f}x | {accuracy}")


if __name__ == "__main__":
    main()
