"""``cluster``: weight clustering with fine-tuning (tfmot), for Keras 3 and tf_keras models."""

from __future__ import annotations

from enum import Enum
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from edgepack.compress.layers import kernel_size
from edgepack.compress.config import CompressInputs, CompressParams
from edgepack.compress.result import KerasArtifact
from edgepack.compress.pipeline import Technique, run
from edgepack.compress.progress import ProgressSink
from edgepack.params import searched
from edgepack.steps._compress import allocation_hook, recorded_allocation, run_compress_step
from edgepack.steps.artifacts import ModelArtifact
from edgepack.steps.base import ModelKind, Step


class ClusterInit(str, Enum):
    KMEANS_PLUS_PLUS = "kmeans++"
    LINEAR = "linear"
    DENSITY = "density"
    RANDOM = "random"


_TFMOT_INIT = {ClusterInit.KMEANS_PLUS_PLUS: "KMEANS_PLUS_PLUS", ClusterInit.LINEAR: "LINEAR",
               ClusterInit.DENSITY: "DENSITY_BASED", ClusterInit.RANDOM: "RANDOM"}


# tfmot's cluster wrapper refuses 2 clusters or fewer when it keeps the zeros (one centroid is zero).
PRESERVING_MIN = 3


class ClusterParams(CompressParams):
    """The ``cluster`` step's parameters: the recipe keys, the CLI options and the API's arguments."""

    clusters: int = Field(default=16, ge=2, le=65_536, description="Distinct values per clustered kernel.",
                          json_schema_extra=searched(choices=[8, 16, 32], corner=8))
    init: ClusterInit = Field(default=ClusterInit.KMEANS_PLUS_PLUS, description="How centroids start.")
    preserve_sparsity: bool = Field(default=False, description="Keep the zeros of a pruned model at zero.")
    epochs: int = Field(default=1, ge=1, le=10_000, description="Fine-tuning epochs.",
                        json_schema_extra=searched(low=1, high=4, integer=True, corner=4))
    learning_rate: float = Field(default=1e-4, gt=0, le=1, description="Adam learning rate.")
    allocate: Literal["uniform", "sensitivity"] = Field(
        default="uniform", description="uniform: every clustered kernel gets the clusters; sensitivity: the same "
                                       "bits per weight on average, spread by measured damage per layer.",
        json_schema_extra=searched(choices=["uniform", "sensitivity"], corner="uniform"))
    layer_clusters: dict[str, int] = Field(
        default_factory=dict, description="Clusters per layer name (overrides the clusters for those layers; "
                                          "allocate: sensitivity fills it in and the resolved recipe records it).",
        json_schema_extra={"metavar": "NAME=CLUSTERS"})

    @field_validator("layer_clusters")
    @classmethod
    def _counts(cls, value: dict[str, int]) -> dict[str, int]:
        for name, count in value.items():
            if not (2 <= count <= 65_536):
                raise ValueError(f"{name}: {count} is outside [2, 65536]")
        return value

    @model_validator(mode="after")
    def _zero_centroid(self):
        fewest = min([self.clusters, *self.layer_clusters.values()])
        if self.preserve_sparsity and fewest < PRESERVING_MIN:
            raise ValueError(f"preserve_sparsity keeps one centroid for the zeros, so tfmot needs at least "
                             f"{PRESERVING_MIN} centroids per layer (got clusters {fewest})")
        return self


class ClusterConfig(CompressInputs, ClusterParams):
    """A library call of ``cluster``: the params plus the model, data and output paths."""


def _sparse_kernel_problem(kernel: np.ndarray, clusters: int) -> str | None:
    """Why tfmot's zero-centroid initialisation cannot cluster ``kernel`` (None when it can).

    It keeps one centroid at zero and splits the other ``clusters - 1`` between negative and
    positive weights in proportion; kmeans++ fails when a side gets more centroids than weights.
    Such a kernel already has fewer non-zero values than ``clusters``, so it is left as it is.
    """
    negative, positive = int(np.sum(kernel < 0)), int(np.sum(kernel > 0))
    if negative + positive == 0:
        return "kernel is all zeros"
    wanted_negative = int(np.round((clusters - 1) * negative / (negative + positive)))
    if wanted_negative > negative or clusters - 1 - wanted_negative > positive:
        return (f"only {negative + positive} non-zero weights: too few for {clusters} clusters with "
                f"--preserve-sparsity; left as it is")
    return None


def _fits(layer, clusters: int, preserve_sparsity: bool) -> str | None:
    """Why ``layer`` cannot be clustered into ``clusters`` values (None when it can)."""
    if preserve_sparsity and clusters < PRESERVING_MIN:
        return f"--preserve-sparsity needs at least {PRESERVING_MIN} clusters (one is the zeros')"
    size = kernel_size(layer)
    if size <= clusters:
        return f"kernel has {size} values, not more than {clusters} clusters (--clusters {clusters})"
    if preserve_sparsity:
        from edgepack.compress.layers import compressed_kernel

        return _sparse_kernel_problem(np.asarray(compressed_kernel(layer).numpy()), clusters)
    return None


def _allocation_hook(config: ClusterConfig, allocation: dict[str, int]):
    def allocate(prepared, rows):
        from edgepack.allocation.clusters import allocate_clusters
        from edgepack.compress.bridge import find_layer

        model = prepared.loaded.model
        return allocate_clusters(
            model, prepared.chosen, rows, prepared.predict, config.clusters, preserve_sparsity=config.preserve_sparsity,
            fits=lambda name, k: _fits(find_layer(model, name), k, config.preserve_sparsity) is None,
            memo=f"{prepared.source_sha} output {prepared.output.index}")

    return allocation_hook(config, allocation, key="layer_clusters", verb="clustered", allocate=allocate)


def _technique(config: ClusterConfig) -> Technique:
    allocation = dict(config.layer_clusters)

    def wrap(tfmot, layer, plan):
        ck = tfmot.clustering.keras
        init = getattr(ck.CentroidInitialization, _TFMOT_INIT[config.init])
        return ck.cluster_weights(layer, number_of_clusters=allocation.get(layer.name, config.clusters),
                                  cluster_centroids_init=init, preserve_sparsity=config.preserve_sparsity)

    return Technique(name="cluster", flag="clustered", needs="Conv1D, Conv2D or Dense layer",
                     eligible=lambda layer: _fits(layer, allocation.get(layer.name, config.clusters),
                                                  config.preserve_sparsity),
                     wrap=wrap, strip=lambda tfmot, model: tfmot.clustering.keras.strip_clustering(model),
                     prepare=_allocation_hook(config, allocation))


def cluster(config: ClusterConfig, *, progress: ProgressSink | None = None) -> KerasArtifact:
    """Cluster the kernels of ``config.model`` into ``config.clusters`` values while fine-tuning.

    With ``preserve_sparsity`` the zeros of a pruned model stay zeros. Writes a stripped model in
    the input's Keras flavor to ``config.output`` and the resolved config beside it.
    """
    return run(config, _technique(config), progress)


class ClusterStep(Step):
    """Weight clustering with fine-tuning on the recipe's training data."""

    name = "cluster"
    params = ClusterParams
    consumes = produces = ModelKind.KERAS
    trains = True
    summary = "weight clustering with fine-tuning (tfmot)"

    def label(self, params: ClusterParams) -> str:
        return f"cluster {params.clusters}" + (" per layer" if params.allocate == "sensitivity" else "")

    def run(self, ctx, source: ModelArtifact, params: ClusterParams) -> ModelArtifact:
        produced = run_compress_step(self, ctx, source, params, ClusterConfig, cluster)
        return recorded_allocation(ctx, source, produced, params, "layer_clusters")
