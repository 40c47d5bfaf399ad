"""Constrained value types shared by the configs (CLI options, recipes)."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import AfterValidator


def _finite_non_negative(value: float) -> float:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"must be a finite number >= 0, not {value}")
    return value


FiniteNonNegative = Annotated[float, AfterValidator(_finite_non_negative)]
"""A threshold: a float that is neither negative, NaN nor infinite."""
