"""Which install extra provides a missing module: the base install runs a .tflite (LiteRT only); building
needs TensorFlow and its companions from the ``cpu`` or ``gpu`` extra (pyproject.toml)."""

from __future__ import annotations

from edgepack.errors import ConfigError

BUILD_HINT = ("pip install 'edgepack[cpu]' (or 'edgepack[gpu]' on a machine with an NVIDIA GPU); the base "
              "install runs inspect, evaluate, profile and verify of a .tflite")
# Top-level module -> (what it is, the hint that installs it).
EXTRA_OF = {
    "tensorflow": ("TensorFlow", BUILD_HINT),
    "tf_keras": ("TensorFlow (tf-keras)", BUILD_HINT),
    "keras": ("TensorFlow (Keras)", BUILD_HINT),
    "tensorflow_model_optimization": ("TensorFlow Model Optimization", BUILD_HINT),
    "optuna": ("Optuna", BUILD_HINT),
    "litert_quantizer": ("LiteRT Quantizer", BUILD_HINT),
    "model_explorer": ("Model Explorer", "pip install 'edgepack[explore]'"),
    "psycopg2": ("the PostgreSQL driver psycopg2", "pip install 'edgepack[postgresql]'"),
}


class MissingExtra(ConfigError):
    """A command needs a package that this install of edgepack leaves out (exit 2)."""


def missing_extra(exc: BaseException, command: str | None = None) -> MissingExtra | None:
    """The one-line error for a ModuleNotFoundError of a package an extra provides, else None."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    top = exc.name.split(".")[0]
    if top not in EXTRA_OF:
        return None
    what, hint = EXTRA_OF[top]
    who = f"{command} needs" if command else "this needs"
    return MissingExtra(f"{who} {what}, which this install of edgepack leaves out (no module '{exc.name}')",
                        hint=hint)
