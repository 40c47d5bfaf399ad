"""``quantize``: convert a Keras model to .tflite in one of five modes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field, model_validator

from edgepack.errors import ModelError
from edgepack.modes import IOType, QuantMode
from edgepack.loading.data import DataSpec, fit_to_input, load_data
from edgepack.loading.model import KerasFlavor, LoadedModel, ModelFormat, load_model
from edgepack.util.files import check_writable_target, sha256_file, write_bytes_atomic
from edgepack.util.provenance import write_sidecar
from edgepack.steps._compress import produce
from edgepack.steps.artifacts import ModelArtifact
from edgepack.steps.base import ModelKind, Problem, Step, StepParams
from edgepack.util.tf import captured_native_output, import_tf


# Accelerators that need static shapes: a dynamic batch adds int32 SHAPE/PACK ops that the Edge TPU
# rejects and the GPU delegate leaves on the CPU (measured on the digits CNN: 3 of 10 ops delegated).
STATIC_BATCH_ACCELERATORS = frozenset({"edgetpu", "gpu", "npu"})


class QuantizeParams(StepParams):
    """The ``quantize`` step's parameters: the recipe keys, the CLI options and the API's arguments."""

    mode: QuantMode = Field(default=QuantMode.FLOAT32, description="Conversion mode.")
    io: IOType = Field(default=IOType.FLOAT32, description="Input/output type of an int8 model.")
    samples: int = Field(default=200, ge=1, le=100_000, description="Calibration samples drawn from the data.")
    seed: int = Field(default=0, ge=0, description="Seed of the calibration sample.")
    static_batch: bool | None = Field(
        default=None, description="Fix the batch size at 1 so every shape is static (the Edge TPU needs this); "
                                  "unset: on for Edge TPU, GPU and NPU devices, off otherwise.")

    @model_validator(mode="after")
    def _io_needs_int8(self):
        if self.io is not IOType.FLOAT32 and self.mode is not QuantMode.INT8:
            raise ValueError(f"io {self.io.value} needs mode int8 (only full-integer models have integer "
                             f"inputs and outputs)")
        return self


class QuantizeConfig(QuantizeParams):
    """A library call of ``quantize``: the params plus the model, calibration data and output."""

    model: Path
    output: Path
    calibration: DataSpec | None = None
    trust_model: bool = False

    @model_validator(mode="after")
    def _rules(self):
        if self.mode.needs_calibration and self.calibration is None:
            raise ValueError(f"--mode {self.mode.value} needs --calibration DATA (representative inputs)")
        if self.output.suffix.lower() != ".tflite":
            raise ValueError(f"output {self.output} should end in .tflite")
        return self


class TfliteArtifact(BaseModel):
    """A converted model on disk and what made it."""

    path: Path
    size_bytes: int
    sha256: str
    mode: QuantMode
    io: IOType
    source: Path
    source_sha256: str
    calibration_samples: int | None
    config_path: Path


def _representative(calibration: np.ndarray):
    def generator():
        for row in calibration:
            yield [row[None, ...]]

    return generator


def _converter(tf, loaded: LoadedModel, static_batch: bool):
    if loaded.info.format is ModelFormat.SAVEDMODEL and not loaded.is_keras:
        if static_batch:
            raise ModelError(f"{loaded.info.path}: --static-batch needs a Keras model, not a plain SavedModel")
        return tf.lite.TFLiteConverter.from_saved_model(str(loaded.info.path))
    if not static_batch:
        return tf.lite.TFLiteConverter.from_keras_model(loaded.model)
    if loaded.info.flavor is KerasFlavor.KERAS3:
        import keras as keras_module
    else:
        import tf_keras as keras_module
    inputs = keras_module.Input(batch_shape=(1, *loaded.input_shape[1:]), dtype=loaded.input_dtype) \
        if loaded.info.flavor is KerasFlavor.KERAS3 else \
        keras_module.Input(batch_size=1, shape=loaded.input_shape[1:], dtype=loaded.input_dtype)
    fixed = keras_module.Model(inputs, loaded.model(inputs, training=False))
    return tf.lite.TFLiteConverter.from_keras_model(fixed)


def _configure(tf, converter, config: QuantizeConfig, calibration: np.ndarray | None) -> None:
    mode = config.mode
    if mode is QuantMode.FLOAT32:
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode is QuantMode.FLOAT16:
        converter.target_spec.supported_types = [tf.float16]
    elif mode is QuantMode.INT8:
        converter.representative_dataset = _representative(calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io_type = {IOType.FLOAT32: tf.float32, IOType.INT8: tf.int8, IOType.UINT8: tf.uint8}[config.io]
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type
    elif mode is QuantMode.INT16X8:
        converter.representative_dataset = _representative(calibration)
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]


def _conversion_error(exc: Exception, captured: list[str]) -> ModelError:
    text = str(exc) + "\n" + "".join(captured)
    lines = [line.strip() for line in text.splitlines() if re.search(r"error:|not supported|unsupported", line, re.I)]
    reason = lines[0] if lines else (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return ModelError(f"the TFLite converter rejected the model: {reason[:300]}",
                      hint="run again with --debug for the converter's full log")


def quantize(config: QuantizeConfig) -> TfliteArtifact:
    """Convert ``config.model`` into ``config.output`` and write the resolved config beside it."""
    check_writable_target(config.output)
    loaded = load_model(config.model, trust_model=config.trust_model)
    calibration = None
    if config.calibration is not None:
        if loaded.input_count != 1:
            raise ModelError(f"{config.model} has {loaded.input_count} inputs; int8 calibration supports one")
        dataset = load_data(config.calibration, input_shape=loaded.input_shape)
        dataset = fit_to_input(dataset, loaded.input_shape, loaded.input_dtype, model_name=str(config.model))
        calibration = dataset.sample(config.samples, seed=config.seed).x
    tf = import_tf()
    captured: list[str] = []
    try:
        with captured_native_output() as captured:
            converter = _converter(tf, loaded, bool(config.static_batch))
            _configure(tf, converter, config, calibration)
            flatbuffer = converter.convert()
    except Exception as exc:  # the converter raises ConverterError, ValueError, RuntimeError...
        raise _conversion_error(exc, captured) from exc
    write_bytes_atomic(config.output, flatbuffer)
    artifact_sha = sha256_file(config.output)
    source_sha = loaded.info.sha256
    sidecar = write_sidecar(config.output, {
        "step": "quantize",
        "config": config.model_dump(mode="json"),
        "source_sha256": source_sha,
        "output_sha256": artifact_sha,
        "calibration_samples": None if calibration is None else len(calibration),
    })
    return TfliteArtifact(path=config.output, size_bytes=len(flatbuffer), sha256=artifact_sha, mode=config.mode,
                          io=config.io, source=config.model, source_sha256=source_sha,
                          calibration_samples=None if calibration is None else len(calibration),
                          config_path=sidecar)


class QuantizeStep(Step):
    """Conversion to .tflite, quantized as ``mode`` says (int8 and int16x8 calibrate on data.train)."""

    name = "quantize"
    params = QuantizeParams
    consumes = ModelKind.KERAS
    produces = ModelKind.TFLITE
    summary = "conversion to .tflite: float32, float16, dynamic, int8, int16x8"

    def check(self, params: QuantizeParams, setting) -> list[Problem]:
        problems = []
        if params.mode.needs_calibration and not setting.has_train:
            problems.append(Problem(key=("mode",), message=f"quantize mode {params.mode.value} needs data.train "
                                    f"for calibration", hint="add data.train to the recipe (or --train)"))
        device = setting.device
        if device is None:
            return problems
        modes = {m.value for m in device.modes}
        if params.mode.value not in modes:
            problems.append(Problem(key=("mode",), message=f"quantize mode {params.mode.value} is not run by "
                                    f"device {device.name} (it runs: {', '.join(sorted(modes))})",
                                    hint="choose one of the device's modes"))
        if setting.accelerator == "edgetpu" and (params.mode is not QuantMode.INT8 or params.io is IOType.FLOAT32):
            problems.append(Problem(key=("mode",), message=f"device {device.name} is an Edge TPU, which needs a "
                                    f"full-integer model with integer input and output",
                                    hint="use quantize: {mode: int8, io: int8} (or io: uint8)"))
        if setting.accelerator == "edgetpu" and params.static_batch is False:
            problems.append(Problem(key=("static_batch",), message=f"device {device.name} is an Edge TPU, which "
                                    f"needs static shapes", hint="leave static_batch unset or set it to true"))
        return problems

    def resolve(self, params: QuantizeParams, setting) -> QuantizeParams:
        if params.static_batch is not None:
            return params
        return params.model_copy(update={"static_batch": setting.accelerator in STATIC_BATCH_ACCELERATORS})

    def label(self, params: QuantizeParams) -> str:
        return f"{params.mode.value} .tflite"

    def run(self, ctx, source: ModelArtifact, params: QuantizeParams) -> ModelArtifact:
        calibration = ctx.train if params.mode.needs_calibration else None

        def make(output: Path):
            return quantize(QuantizeConfig(model=source.path, output=output, calibration=calibration,
                                           trust_model=ctx.trust_model, **params.model_dump()))

        return produce(self, ctx, source, params, ".tflite", make, data=calibration)
