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
    path = CACHE / f"{arch}_{mode}.tflite"
    if path.exists():
        return path
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from edgepack.util.tf import captured_native_output, import_tf

    tf = import_tf()
    keras = tf.keras
    keras.utils.set_random_seed(0)
    # Batch 1 and static shapes, as the published models (and the Edge TPU) have them.
    model = getattr(keras.applications, ARCHS[arch])(weights=None,
                                                      input_tensor=keras.Input((224, 224, 3), batch_size=1))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    rng = np.random.default_rng(0)

    def calibration():
        for _ in range(8):
            yield [rng.uniform(-1, 1, (1, 224, 224, 3)).astype(np.float32)]

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
    with captured_native_output():
        data = converter.convert()
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


if __name__ == "__main__":
    modes = sys.argv[1:] or ["float32", "int8"]
    for arch in ARCHS:
        for mode in modes:
            print(mobilenet_tflite(arch, mode), flush=True)
