"""``inspect``: describe a Keras model or a .tflite file."""

from __future__ import annotations

from pathlib import Path


def inspect_model(path: str | Path, *, trust_model: bool = False) -> dict:
    """Describe ``path``: a .tflite (without TensorFlow) or a Keras model; the dict's ``kind`` says which."""
    if Path(path).suffix.lower() == ".tflite":
        from edgepack.inspection.tflite_model import inspect_tflite

        return inspect_tflite(path)
    from edgepack.inspection.keras_model import inspect_keras

    return inspect_keras(path, trust_model=trust_model)
