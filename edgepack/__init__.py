"""edgepack: package Keras models for edge devices, with proof of what they cost.

The Python API (nothing heavy is imported until a function is used)::

    import edgepack
    tflite = edgepack.quantize("model.keras", "model.tflite", mode="int8", calibration="train.npz")
    result = edgepack.run_recipe("recipes/pi4.yaml")

See ``edgepack.api`` for every function, and ``edgepack.errors`` for the exceptions.
"""

__version__ = "0.1.0"

_API = {"quantize", "prune", "cluster", "qat", "evaluate", "profile", "run_recipe", "load_recipe", "load_device",
        "list_steps", "sensitivity", "tune", "inspect", "verify"}
_PARAMS = {"PruneParams": "edgepack.steps.prune", "ClusterParams": "edgepack.steps.cluster",
           "QuantizeParams": "edgepack.steps.quantize", "QatParams": "edgepack.steps.qat", "EvaluateParams": "edgepack.evaluation.params",
           "ProfileParams": "edgepack.steps.profile", "SensitivityParams": "edgepack.steps.sensitivity"}
__all__ = sorted(_API | set(_PARAMS) | {"errors", "__version__"})


def __getattr__(name: str):
    import importlib

    if name in _API:
        return getattr(importlib.import_module("edgepack.api"), name)
    if name in _PARAMS:
        return getattr(importlib.import_module(_PARAMS[name]), name)
    if name == "errors":
        return importlib.import_module("edgepack.errors")
    raise AttributeError(f"module 'edgepack' has no attribute {name!r}")
