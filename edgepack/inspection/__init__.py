"""``inspect``: describe a Keras model or a .tflite file."""

from __future__ import annotations

from pathlib import Path

from edgepack.inspection.result import KerasInspection, TfliteInspection


def inspect_model(path: str | Path, *, trust_model: bool = False) -> TfliteInspection | KerasInspection:
    """Describe ``path``: a .tflite (without TensorFlow) or a Keras model; ``kind`` says which."""
    if Path(path).suffix.lower() == ".tflite":
        from edgepack.inspection.tflite_model import inspect_tflite

        return inspect_tflite(path)
    from edgepack.inspection.keras_model import inspect_keras

    return inspect_keras(path, trust_model=trust_model)
