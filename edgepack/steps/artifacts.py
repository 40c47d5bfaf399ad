"""What steps hand to each other: a model file with its hash, sizes, score and the params that made it."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field

from edgepack.inspection.result import DeviceFigures
from edgepack.util.files import sha256_file


class ModelKind(str, Enum):
    """What a step takes and gives: a Keras model file or a .tflite file."""

    KERAS = "keras"
    TFLITE = "tflite"


class ModelArtifact(BaseModel):
    """One model on disk as a stage of a pipeline.

    ``metric`` is the recipe's metric on the val data (None when there is none); ``latency`` is
    set by the profile step; ``detail`` is the producing step's own typed result (e.g. the prune
    report with sparsity per layer); ``params`` are the step's effective parameters.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    kind: ModelKind
    path: Path
    sha256: str
    size_bytes: int
    gzip_size_bytes: int
    step: str | None = None
    label: str
    params: dict = Field(default_factory=dict)
    metric: float | None = None
    seconds: float = 0.0
    trained_on: str | None = None
    detail: BaseModel | None = Field(default=None, exclude=True)
    latency: BaseModel | None = Field(default=None, exclude=True)
    sensitivity: BaseModel | None = Field(default=None, exclude=True)

    @classmethod
    def of_file(cls, path: Path, kind: ModelKind, *, label: str, step: str | None = None, params: dict | None = None,
                started: float | None = None, detail: BaseModel | None = None) -> "ModelArtifact":
        """Hash and measure ``path`` once (a folder, such as a SavedModel, is hashed file by file)."""
        path = Path(path)
        data = path.read_bytes() if path.is_file() else b""
        size = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        return cls(kind=kind, path=path, sha256=sha256_file(path), size_bytes=size,
                   gzip_size_bytes=len(gzip.compress(data, 9, mtime=0)) if data else size, step=step, label=label,
                   params=params or {}, seconds=0.0 if started is None else round(time.perf_counter() - started, 3),
                   detail=detail)


class StageSummary(BaseModel):
    """One stage as the reports show it: name, sizes by format, metric, time, and what the device pays
    for it (``device``: flash, RAM, MACs, latency)."""

    name: str
    format: str
    size_bytes: int
    gzip_size_bytes: int | None = None
    metric: float | None = None
    seconds: float = 0.0
    sha256: str | None = None
    params: dict = Field(default_factory=dict)
    trained_on: str | None = None
    device: DeviceFigures | None = None

    @classmethod
    def of(cls, artifact: ModelArtifact) -> "StageSummary":
        fmt = ".tflite" if artifact.kind is ModelKind.TFLITE else f"Keras {artifact.path.suffix or 'SavedModel'}"
        return cls(name=artifact.label, format=fmt, size_bytes=artifact.size_bytes,
                   gzip_size_bytes=artifact.gzip_size_bytes, metric=artifact.metric, seconds=artifact.seconds,
                   sha256=artifact.sha256, params=artifact.params, trained_on=artifact.trained_on)
