"""The quantization modes and integer I/O types, as the CLI, recipes and device profiles name them."""

from __future__ import annotations

from enum import Enum


class QuantMode(str, Enum):
    FLOAT32 = "float32"
    FLOAT16 = "float16"
    DYNAMIC = "dynamic"
    INT8 = "int8"
    INT16X8 = "int16x8"

    @property
    def needs_calibration(self) -> bool:
        return self in (QuantMode.INT8, QuantMode.INT16X8)


class IOType(str, Enum):
    FLOAT32 = "float32"
    INT8 = "int8"
    UINT8 = "uint8"
