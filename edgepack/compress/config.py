"""The fine-tuning options prune, cluster and qat share, and the inputs they read and write (their result: ``compress.result``)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from edgepack.compress.layers import Unsupported
from edgepack.compress.training import Distribute
from edgepack.loading.spec import DataSpec
from edgepack.params import StepParams, searched

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


class TrainingParams(StepParams):
    """The fine-tuning parameters prune and cluster share; each field is a recipe key and a CLI option."""

    epochs: int = Field(default=2, ge=1, le=10_000, description="Fine-tuning epochs.",
                        json_schema_extra=searched(low=2, high=8, integer=True, corner=8,
                                                         fast_corner=8))
    batch_size: int = Field(default=32, ge=1, le=1_000_000, description="Fine-tuning batch size (global).")
    learning_rate: float = Field(default=1e-3, gt=0, le=1, description="Adam learning rate.")
    exclude: str | None = Field(default=None, description="Layers whose name matches REGEX (re.search) are left "
                                "alone.", json_schema_extra={"metavar": "REGEX"})
    distribute: Distribute = Field(default=Distribute.NONE, description="tf.distribute strategy for fine-tuning.")
    seed: int = Field(default=0, ge=0, description="Random seed (training order, initialisation).")
    distill: bool = Field(default=False, description="Also learn the original model's soft outputs (computed once "
                          "before training).", json_schema_extra=searched(choices=[False, True], corner=False,
                                                                       fast_corner=True))
    temperature: float = Field(default=3.0, gt=0, le=100, description="Distillation: softening of the outputs.")
    alpha: float = Field(default=0.5, ge=0, le=1, description="Distillation: weight of the labels' loss (the "
                         "original model's outputs get 1 - alpha).")
    bn_reestimate: bool = Field(default=True, description="After fine-tuning, re-estimate every BatchNormalization "
                                "layer's moving mean and variance on the training data (forward passes in training "
                                "mode, no gradient), so inference uses statistics of the fine-tuned weights.")
    bn_batches: int = Field(default=100, ge=1, le=100_000, description="Training batches (of batch-size rows, drawn "
                            "without replacement; all the data when it has fewer) for the BatchNorm re-estimation.")

    @field_validator("exclude")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"{value!r} is not a valid regular expression ({exc})") from None
        return value


class CompressParams(TrainingParams):
    """What prune and cluster add to the shared training parameters."""

    unsupported: Unsupported = Field(
        default="skip", description="Layers holding weights that tfmot cannot compress (depthwise, recurrent, ...): "
                                    "skip leaves them dense and lists them; refuse stops with exit 4 naming the first.")


class FineTuneInputs(BaseModel):
    """What a library call of a fine-tuning step reads and writes (the recipe supplies these itself)."""

    model_config = ConfigDict(extra="forbid")

    model: Path
    data: DataSpec
    output: Path
    val: DataSpec | None = None
    trust_model: bool = False


class CompressInputs(FineTuneInputs):
    """The inputs of prune and cluster, which write a Keras model."""

    @field_validator("output")
    @classmethod
    def _suffix(cls, value: Path) -> Path:
        if value.suffix.lower() not in KERAS_SUFFIXES:
            raise ValueError(f"output {value} should end in .keras (or .h5 for the legacy HDF5 format)")
        return value


class CompressConfig(CompressInputs, CompressParams):
    """Inputs plus training params: what ``compress.pipeline.run`` takes (see PruneConfig, ClusterConfig)."""
