"""The one way edgepack imports TensorFlow: late, quietly, and only where a step needs it."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings

from edgepack.util import quiet
from edgepack.util.quiet import captured_native_output

__all__ = ["import_tf", "captured_native_output"]


def import_tf():
    """Import and return ``tensorflow`` with its start-up chatter silenced (unless --debug)."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    if not quiet.DEBUG:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        warnings.filterwarnings("ignore", module="keras")
        warnings.filterwarnings("ignore", module="tf_keras")
        warnings.filterwarnings("ignore", module="tensorflow")
    with captured_native_output():
        import tensorflow as tf
    _grow_gpu_memory(tf)
    if not quiet.DEBUG:
        tf.get_logger().setLevel(logging.ERROR)
        logging.getLogger("absl").setLevel(logging.ERROR)
        with contextlib.suppress(Exception):
            tf.autograph.set_verbosity(0)
    return tf


def _grow_gpu_memory(tf) -> None:
    """Let each process take GPU memory as it needs it (tune trials and the converter worker share a GPU);
    TensorFlow otherwise reserves all of it in the first process. CUDA_VISIBLE_DEVICES="" trains on the CPU."""
    for gpu in tf.config.list_physical_devices("GPU"):
        with contextlib.suppress(RuntimeError, ValueError):  # already initialised: leave it as it is
            tf.config.experimental.set_memory_growth(gpu, True)
