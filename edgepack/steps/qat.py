"""``qat``: quantization-aware training (tfmot, Keras 3 and tf_keras models in), then full int8."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from edgepack.compress.batchnorm import BatchNormReport
from edgepack.compress.config import FineTuneInputs, TrainingParams
from edgepack.compress.result import Trained
from edgepack.modes import IOType
from edgepack.steps._compress import produce
from edgepack.steps.artifacts import ModelArtifact
from edgepack.steps.base import ModelKind, Problem, Step
from edgepack.devices.schema import STATIC_BATCH_ACCELERATORS


class QatParams(TrainingParams):
    """The ``qat`` step's parameters: the recipe keys, the CLI options and the API's arguments."""

    epochs: int = Field(default=2, ge=1, le=10_000, description="Fine-tuning epochs.")
    learning_rate: float = Field(default=1e-4, gt=0, le=1, description="Adam learning rate.")
    io: IOType = Field(default=IOType.FLOAT32, description="Input/output type of the int8 model.")
    preserve: Literal["auto", "none", "sparsity", "clusters", "both"] = Field(
        default="auto", description="Keep a pruned model's zeros (sparsity, PQAT), a clustered model's centroids "
                                    "(clusters, CQAT), or both (PCQAT); auto reads the weights.")
    static_batch: bool | None = Field(default=None, description="Fix the batch size at 1 (static shapes); unset: "
                                      "on for Edge TPU, GPU and NPU devices.")
    equalize: bool | None = Field(default=None, description="Cross-layer equalization before fine-tuning (balances "
                                  "weight ranges of consecutive layers; the float function is unchanged); unset: on "
                                  "unless centroids are preserved.")

    @model_validator(mode="after")
    def _equalize_keeps_centroids(self):
        if self.equalize and self.preserve in ("clusters", "both"):
            raise ValueError(f"equalize rescales channels, which would break the centroids that preserve "
                             f"{self.preserve} keeps; leave equalize unset or false")
        return self


class QatConfig(FineTuneInputs, QatParams):
    """A library call of ``qat``: the params plus the model, data and the .tflite to write."""

    @field_validator("output")
    @classmethod
    def _suffix(cls, value: Path) -> Path:
        if value.suffix.lower() != ".tflite":
            raise ValueError(f"output {value} should end in .tflite (qat writes the int8 model)")
        return value


class QatArtifact(Trained):
    """The int8 .tflite made by QAT, and how."""

    path: Path
    size_bytes: int
    sha256: str
    io: IOType
    preserve: str
    equalized: list[dict] | None = None
    source: Path
    source_sha256: str
    train_samples: int
    steps: int
    final_loss: float | None
    seconds: float
    config_path: Path
    metrics: dict | None = None
    batchnorm: BatchNormReport | None = None


def qat(config: QatConfig, *, progress=None) -> QatArtifact:
    """Fine-tune ``config.model`` with fake quantization and write the full-int8 ``config.output``."""
    from edgepack.compress.qat import train_and_convert
    from edgepack.util.files import check_writable_target, sha256_file, write_bytes_atomic
    from edgepack.util.provenance import write_sidecar

    check_writable_target(config.output)
    flatbuffer, facts = train_and_convert(config, progress)
    metrics = _val_metrics(config, flatbuffer) if config.val is not None else None
    write_bytes_atomic(config.output, flatbuffer)
    sha = sha256_file(config.output)
    sidecar = write_sidecar(config.output, {"step": "qat", "config": config.model_dump(mode="json"),
                                            **facts.model_dump(mode="json"), "output_sha256": sha, "metrics": metrics})
    return QatArtifact(path=config.output, size_bytes=len(flatbuffer), sha256=sha, io=config.io,
                       preserve=facts.preserve, equalized=facts.equalized, source=config.model,
                       source_sha256=facts.source_sha256, train_samples=facts.train_samples, steps=facts.steps,
                       final_loss=facts.final_loss, seconds=facts.seconds, config_path=sidecar, metrics=metrics,
                       batchnorm=facts.batchnorm, trained_on=facts.trained_on)


def _val_metrics(config: QatConfig, flatbuffer: bytes) -> dict:
    from edgepack.evaluation.metrics import Metric, compute
    from edgepack.loading.data import load_data
    from edgepack.quantization.selective import BytesPredictor

    data = load_data(config.val)
    predictor = BytesPredictor()
    try:
        outputs = predictor.predict(flatbuffer, data.x)
        return {"metric": "accuracy", "samples": len(data), "tflite": compute(Metric.ACCURACY, data.y, outputs,
                                                                              data.source)}
    finally:
        predictor.close()


class QatStep(Step):
    """Quantization-aware training on data.train; makes the full-int8 .tflite (instead of quantize)."""

    name = "qat"
    params = QatParams
    consumes = ModelKind.KERAS
    produces = ModelKind.TFLITE
    trains = True
    summary = "quantization-aware training (tfmot; PQAT/CQAT/PCQAT keep zeros and centroids), full int8"

    def check(self, params: QatParams, setting) -> list[Problem]:
        problems = super().check(params, setting)
        device = setting.device
        if device is not None and "int8" not in {m.value for m in device.modes}:
            problems.append(Problem(message=f"qat makes an int8 model, which device {device.name} does not run"))
        if setting.accelerator == "edgetpu" and params.io is IOType.FLOAT32:
            problems.append(Problem(key=("io",), message=f"device {device.name} is an Edge TPU, which needs integer "
                                    "input and output", hint="use qat: {io: int8}"))
        return problems

    def resolve(self, params: QatParams, setting) -> QatParams:
        if params.static_batch is not None:
            return params
        return params.model_copy(update={"static_batch": setting.accelerator in STATIC_BATCH_ACCELERATORS})

    def label(self, params: QatParams) -> str:
        return f"qat int8 .tflite ({params.preserve})"

    def run(self, ctx, source: ModelArtifact, params: QatParams) -> ModelArtifact:
        def make(output: Path):
            return qat(QatConfig(model=source.path, data=ctx.train, output=output, trust_model=ctx.trust_model,
                                 **params.model_dump()), progress=ctx.training_progress)

        return produce(self, ctx, source, params, ".tflite", make, data=ctx.train)
