"""How a .tflite is run over the data: the parameters ``edgepack evaluate`` and the evaluate step share."""

from __future__ import annotations

from pydantic import Field

from edgepack.params import StepParams


class EvaluateParams(StepParams):
    """How the .tflite is run over the data; shared by the step and ``edgepack evaluate``."""

    batch_size: int = Field(default=64, ge=1, description="Rows per interpreter call where the model allows it.")
    threads: int | None = Field(default=None, ge=1, le=256, description="Interpreter threads (default: all cores).")
