"""Profiling .tflite models: measured here or on a device over SSH, or estimated from a device profile.

``profile(LatencyConfig(model=..., device=..., estimate=...)) -> LatencyResult``. The names load on
first use, so importing ``edgepack.latency.params`` (the CLI does, for its options) stays light.
"""

_NAMES = {"OpProfile": "edgepack.latency.result", "LatencyConfig": "edgepack.latency.config",
          "LatencyResult": "edgepack.latency.result", "profile": "edgepack.latency.measure"}
__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        import importlib

        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'edgepack.latency' has no attribute {name!r}")
