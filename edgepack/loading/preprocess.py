"""``--preprocess``: what is done to input values as they are read (image pixels are 0-255 RGB).

Order: reverse the channels (``bgr``), then ``x * scale + offset``, then ``(x - mean) / std`` per
channel. A keras.applications family name fills these in as its ``preprocess_input`` does; the
resolved numbers are what a recipe's resolved copy records. On the command line::

    --preprocess mobilenet_v2
    --preprocess "scale=1/255 mean=0.485,0.456,0.406 std=0.229,0.224,0.225"
"""

from __future__ import annotations

import math
from fractions import Fraction

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from edgepack.errors import ConfigError, DataError, validation_problem

if TYPE_CHECKING:
    import numpy as np

_TF = {"scale": 1 / 127.5, "offset": -1.0}
_CAFFE = {"bgr": True, "mean": [103.939, 116.779, 123.68]}
_TORCH = {"scale": 1 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
_NONE: dict = {}  # the model normalizes its own 0-255 input (Rescaling/Normalization layers)
FAMILIES = {
    "mobilenet": _TF, "mobilenet_v2": _TF, "inception_v3": _TF, "inception_resnet_v2": _TF, "xception": _TF,
    "nasnet": _TF, "resnet_v2": _TF,
    "resnet": _CAFFE, "resnet50": _CAFFE, "vgg16": _CAFFE, "vgg19": _CAFFE,
    "densenet": _TORCH,
    "efficientnet": _NONE, "efficientnet_v2": _NONE, "mobilenet_v3": _NONE, "convnext": _NONE, "regnet": _NONE,
}
"""keras.applications families and what their ``preprocess_input`` does (modes "tf", "caffe",
"torch", or nothing for models that normalize inside)."""
_KEYS = ("scale", "offset", "mean", "std", "bgr")


def _number(text: str) -> float:
    try:
        value = float(Fraction(text.strip())) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"{text!r} is not a number") from None
    return value


class Preprocess(BaseModel):
    """How input values are transformed as they are read (see the module's docstring)."""

    model_config = ConfigDict(extra="forbid")

    family: str | None = None
    scale: float = 1.0
    offset: float = 0.0
    mean: list[float] | None = None
    std: list[float] | None = None
    bgr: bool = False

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value):
        if isinstance(value, str):
            return parse_text(value)
        return value

    @field_validator("scale", "offset")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError(f"must be a finite number, not {value}")
        return value

    @field_validator("mean", "std")
    @classmethod
    def _channels(cls, values: list[float] | None) -> list[float] | None:
        if values is not None and (not values or not all(math.isfinite(v) for v in values)):
            raise ValueError("must be one finite number, or one per channel")
        return values

    @model_validator(mode="after")
    def _family(self):
        if self.std is not None and any(v == 0 for v in self.std):
            raise ValueError("std must not be 0")
        if self.family is None:
            return self
        if self.family not in FAMILIES:
            raise ValueError(f"unknown family {self.family!r}; known: {', '.join(sorted(FAMILIES))}")
        given = [key for key in _KEYS if key in self.model_fields_set]
        resolved = {key: value for key, value in FAMILIES[self.family].items()}
        if given and any(getattr(self, key) != resolved.get(key, Preprocess.model_fields[key].default)
                         for key in given):
            raise ValueError(f"family {self.family} sets {', '.join(_KEYS)} itself; give the family or the "
                             f"numbers, not both")
        for key, value in resolved.items():
            object.__setattr__(self, key, value)
        return self

    def apply(self, x: np.ndarray, source: str) -> np.ndarray:
        """``x`` (rows, ..., channels) transformed, as a new float32 array (one copy, then in place)."""
        import numpy as np

        x = np.array(x[..., ::-1] if self.bgr else x, dtype=np.float32, order="C", copy=True)
        if self.scale != 1.0:
            x *= np.float32(self.scale)
        if self.offset != 0.0:
            x += np.float32(self.offset)
        if self.mean is not None:
            x -= self._per_channel(self.mean, x, source, "mean")
        if self.std is not None:
            x /= self._per_channel(self.std, x, source, "std")
        return x

    @staticmethod
    def _per_channel(values: list[float], x: np.ndarray, source: str, name: str) -> np.ndarray:
        import numpy as np

        if len(values) not in (1, x.shape[-1]):
            raise DataError(f"{source}: --preprocess {name} has {len(values)} values but the inputs have "
                            f"{x.shape[-1]} channels (last axis)", hint="give one value, or one per channel")
        return np.asarray(values, dtype=np.float32)


def parse_text(text: str) -> dict:
    """``mobilenet_v2`` or ``"scale=1/255 mean=0.485,0.456,0.406 std=..."`` as Preprocess fields."""
    text = text.strip()
    if "=" not in text:
        return {"family": text}
    fields: dict = {}
    for part in text.replace(";", " ").split():
        key, _, value = part.partition("=")
        if key not in (*_KEYS, "family"):
            raise ValueError(f"unknown key {key!r}; use family, {', '.join(_KEYS)}")
        if key in ("mean", "std"):
            fields[key] = [_number(v) for v in value.split(",") if v.strip()]
        elif key == "bgr":
            fields[key] = value.lower() in ("1", "true", "yes")
        elif key == "family":
            fields[key] = value
        else:
            fields[key] = _number(value)
    return fields


def parse_preprocess(text: str | None) -> Preprocess | None:
    """The ``--preprocess`` option as a Preprocess; ConfigError (exit 2) saying what is wrong."""
    if text is None:
        return None
    from pydantic import ValidationError

    try:
        return Preprocess.model_validate(text)
    except ValidationError as exc:
        message = validation_problem(exc)[1]
        raise ConfigError(f"--preprocess {text!r}: {message}",
                          hint="give a family such as mobilenet_v2, or 'scale=1/255 mean=R,G,B std=R,G,B'") from None
