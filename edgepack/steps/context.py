"""What a step is given: the recipe's setting (for checks) and the run's context (for work)."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from edgepack.compress.progress import ProgressSink
from edgepack.devices.schema import DeviceProfile
from edgepack.evaluation.metrics import Metric
from edgepack.loading.spec import DataSpec

if TYPE_CHECKING:
    from edgepack.steps.scoring import Scorer

Say = Callable[[str], None]


@dataclass(frozen=True)
class StepSetting:
    """What a step's checks may look at: the data the recipe has and the loaded device profile."""

    has_train: bool = False
    has_val: bool = False
    device: DeviceProfile | None = None  # None: no particular device
    metric: Metric = Metric.ACCURACY

    @property
    def accelerator(self) -> str | None:
        return None if self.device is None else self.device.accelerator.value


class ArtifactCache:
    """Step outputs kept by a hash of (input model, step, params, data), so a shared prefix runs once."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.hits = 0

    @staticmethod
    def key(source_sha256: str, step: str, params: dict, data: dict) -> str:
        blob = json.dumps([source_sha256, step, params, data], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def get(self, key: str) -> Path | None:
        """The cached output file for ``key``, or None."""
        entry = self.folder / key
        files = sorted(p for p in entry.iterdir() if p.is_file()) if entry.is_dir() else []
        if files:
            self.hits += 1
            return files[0]
        return None

    def put(self, key: str, produced: Path) -> Path:
        """Copy ``produced`` into the cache; returns the cached copy's path."""
        entry = self.folder / key
        entry.mkdir(parents=True, exist_ok=True)
        target = entry / produced.name
        shutil.copyfile(produced, target)
        return target


def data_fingerprint(spec: DataSpec | list | None) -> dict | list:
    """What identifies a data set for the cache: its spec and, for a file, size and mtime."""
    if isinstance(spec, list):
        return [data_fingerprint(one) for one in spec]
    if spec is None:
        return {}
    source = Path(spec.source)
    stat = source.stat() if source.is_file() else None
    return {**spec.model_dump(mode="json"), "size": stat.st_size if stat else None,
            "mtime_ns": stat.st_mtime_ns if stat else None}


@dataclass
class StepContext:
    """Everything a step needs besides its params and input model.

    ``say`` prints one progress line; ``training_progress`` is the fine-tuning display (a
    ``compress.progress.ProgressSink``) or None; ``scorer`` scores models on the val data once
    each; ``cache`` (optional) reuses outputs of identical (input, step, params, data); ``latencies``
    (optional, shared by a study's trials) keeps each distinct model's latency, measured once.
    """

    work: Path
    setting: StepSetting = field(default_factory=StepSetting)
    train: DataSpec | None = None
    val: DataSpec | None = None
    trust_model: bool = False
    estimate: bool = False
    device_ref: str | None = None
    say: Say = lambda message: None
    training_progress: ProgressSink | None = None
    cache: ArtifactCache | None = None
    scorer: Scorer | None = None
    latencies: dict | None = None

    @property
    def device(self) -> DeviceProfile | None:
        return self.setting.device

    def output_path(self, index: int, name: str) -> Path:
        """A fresh path in the work folder for stage ``index``'s output."""
        self.work.mkdir(parents=True, exist_ok=True)
        return self.work / f"{index:02d}-{name}"
