"""MobileNet v1/v2 (keras.applications, weights=None) as .tflite files, built once into benchmarks/.cache/.

Random weights are fine for latency: the work per inference depends on the graph, not the values.
Full-int8 conversion calibrates on random inputs (about 17 s for MobileNetV2 on the 2-core machine).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache"
ARCHS = {"mobilenet_v1": "MobileNet", "mobilenet_v2": "MobileNetV2"}


def mobilenet_tflite(arch: str = "mobilenet_v2", mode: str = "float32") -> Path:
    """Path of ``arch`` (mobilenet_v1 | mobilenet_v2) converted in ``mode``
    (float32 | float16 | dynamic | int8 | int8io | int16x8)."""
    return application_tflite(ARCHS[arch], 224, mode, CACHE / f"{arch}_{mode}.tflite")


def application_tflite(arch: str, side: int, mode: str, path: Path, *, samples: int = 8) -> Path:
    """``path``: keras.applications ``arch`` (random weights, batch 1, side x side x 3) converted in ``mode``
    with ``samples`` random calibration inputs; built on first use, then read from the cache."""
    if path.exists():
        return path
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from edgepack.util.tf import captured_native_output, import_tf

    tf = import_tf()
    keras = tf.keras
    keras.utils.set_random_seed(0)
    # Batch 1 and static shapes, as the published models (and the Edge TPU) have them.
    model = getattr(keras.applications, arch)(weights=None, input_tensor=keras.Input((side, side, 3), batch_size=1))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    rng = np.random.default_rng(0)

    def calibration():
        for _ in range(samples):
            yield [rng.uniform(-1, 1, (1, side, side, 3)).astype(np.float32)]

    _configure(tf, converter, mode, calibration)
    with captured_native_output():
        data = converter.convert()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def _configure(tf, converter, mode: str, calibration) -> None:
    if mode in ("int8", "int8io"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = calibration
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if mode == "int8io":  # integer input and output, as Coral's published models
            converter.inference_input_type = converter.inference_output_type = tf.int8
    elif mode == "int16x8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = calibration
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    elif mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode != "float32":
        raise ValueError(mode)


if __name__ == "__main__":
    modes = sys.argv[1:] or ["float32", "int8"]
    for arch in ARCHS:
        for mode in modes:
            print(mobilenet_tflite(arch, mode), flush=True)
