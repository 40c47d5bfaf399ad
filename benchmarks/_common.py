"""Shared set-up for benchmarks: the digits example, built once into a cache folder."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache"


def digits_example() -> dict:
    """Paths of the digits model and data, building them on first use."""
    out = CACHE / "digits"
    paths = {"model": out / "model.keras", "train": out / "train.npz", "val": out / "val.npz"}
    if not all(p.exists() for p in paths.values()):
        spec = importlib.util.spec_from_file_location("digits_build", ROOT / "examples" / "digits" / "build.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.build(out)
    return paths
