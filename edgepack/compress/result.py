"""What prune and cluster return: the compressed Keras model on disk, what was done to it, what it cost."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from edgepack.compress.batchnorm import BatchNormReport
from edgepack.compress.loss import LossChoice
from edgepack.compress.training import Distribute


class Trained(BaseModel):
    """A result of fine-tuning: says where the training ran."""

    trained_on: str | None = Field(default=None, description="Where fine-tuning ran: the GPU's name, or the CPU's.")


class KerasArtifact(Trained):
    """A compressed Keras model on disk, what was done to it, and what it cost."""

    step: Literal["prune", "cluster"]
    path: Path
    flavor: str
    size_bytes: int
    sha256: str
    source: Path
    source_sha256: str
    config_path: Path
    loss: LossChoice
    layers: list[dict]
    compressed_layers: int
    metrics: dict | None = None
    train_samples: int
    epochs: int
    steps: int
    final_loss: float | None
    distribute: Distribute
    replicas: int
    seconds: float
    allocation: dict | None = None
    skipped: dict[str, str] = Field(default_factory=dict, description="Layers holding a weight matrix that were "
                                    "left as they were, with the reason (unsupported by tfmot, excluded, too small).")
    output: str | None = Field(default=None, description="The output trained on the labels (models with several "
                               "outputs).")
    self_distilled: list[str] = Field(default_factory=list, description="The other outputs, kept close to the "
                                      "source model's own predictions (mean squared error).")
    bridge_difference: float | None = Field(default=None, description="Largest output difference of the tf_keras "
                                            "rebuild from the source model, relative to the outputs' scale.")
    batchnorm: BatchNormReport | None = Field(default=None, description="The BatchNorm re-estimation after "
                                              "fine-tuning (None when turned off).")
