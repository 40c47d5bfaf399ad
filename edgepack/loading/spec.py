"""Where a data set comes from, as the user gave it (no numpy: the CLI builds these while starting up)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from edgepack.loading.preprocess import Preprocess


class DataSpec(BaseModel):
    """Where a data set comes from, as the user gave it."""

    model_config = ConfigDict(extra="forbid")

    source: str
    x_key: str = "x"
    y_key: str = "y"
    trust_code: bool = False
    output: str | None = None  # the model output the targets are for: an .npz's y_<output> is read first
    preprocess: Preprocess | None = None  # applied to the inputs as they are read (image folders: 0-255 RGB)
