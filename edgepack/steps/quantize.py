"""``quantize``: convert a Keras model to .tflite in one of five modes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, field_validator, model_validator

from edgepack.errors import GateFailed, ModelError
from edgepack.evaluation.metrics import Metric
from edgepack.modes import IOType, QuantMode
from edgepack.params import searched
from edgepack.loading.spec import DataSpec
from edgepack.loading.inputs import rows_in
from edgepack.loading.model import LoadedModel, load_model
from edgepack.quantization.mixed import MixedPrecision
from edgepack.util.files import check_writable_target, sha256_file, write_bytes_atomic
from edgepack.util.provenance import write_sidecar
from edgepack.steps._compress import produce
from edgepack.steps.artifacts import ModelArtifact
from edgepack.steps.base import ModelKind, Problem, Step, StepParams
from edgepack.devices.schema import STATIC_BATCH_ACCELERATORS
from edgepack.util.types import FiniteNonNegative


class QuantizeParams(StepParams):
    """The ``quantize`` step's parameters: the recipe keys, the CLI options and the API's arguments."""

    mode: QuantMode = Field(default=QuantMode.FLOAT32, description="Conversion mode.")
    io: IOType = Field(default=IOType.FLOAT32, description="Input/output type of an int8 model.")
    samples: int = Field(default=200, ge=1, le=100_000, description="Calibration samples drawn from the data.")
    seed: int = Field(default=0, ge=0, description="Seed of the calibration sample.")
    static_batch: bool | None = Field(
        default=None, description="Fix the batch size at 1 so every shape is static (the Edge TPU needs this); "
                                  "unset: on for Edge TPU, GPU and NPU devices and for models with LSTM/GRU "
                                  "layers, off otherwise (a recipe resolves it from its device).")
    float_ops: list[str] = Field(default_factory=list, description="Keep the layers whose name matches REGEX "
                                 "(re.search) in float; the rest is full int8 (repeatable).",
                                 json_schema_extra={"metavar": "REGEX"})
    max_drop: FiniteNonNegative | None = Field(
        default=None, description="Accuracy control: keep the most harmful layers in float until the metric drop "
                                  "on the val data is at most this (accuracy: percentage points).")
    max_float_ops: int | None = Field(default=None, ge=0, description="Accuracy control: at most this many layers "
                                      "in float (default: no limit).")
    ranking_samples: int = Field(default=100, ge=1, le=100_000, description="Accuracy control: the val samples "
                                 "with the largest int8 error that layers are ranked on.")
    fallback: Literal["none", "qat"] = Field(default="none", description="Accuracy control: when keeping layers "
                                             "float cannot meet max_drop, try quantization-aware training.")
    promote: list[Literal["int8", "int16x8", "float"]] = Field(
        default_factory=lambda: ["float"], min_length=1,
        description="Accuracy control: the precisions a harmful layer is raised to, in order (repeatable; "
                    "int8: 8-bit weights, with --weights int4; int16x8: 16-bit activations with 8-bit weights; "
                    "io float32 or int8). With --weights int4 the default is int8, then float.",
        json_schema_extra={"metavar": "PRECISION"})
    weights: Literal["int8", "int4"] = Field(
        default="int8", description="Weight precision of an int8 or int16x8 model: int4 packs two weights a byte on the "
                                    "operators the runtime runs that way (fully-connected and convolution, made "
                                    "with LiteRT Quantizer); every other operator keeps int8 weights.",
        json_schema_extra=searched(choices=["int8", "int4"], when={"mode": "int8"}, fast_corner="int8"))
    int4_ops: list[Literal["fc", "conv"]] = Field(
        default_factory=lambda: ["fc", "conv"], min_length=1,
        description="With --weights int4: the operator kinds given int4 weights (fc: FULLY_CONNECTED, conv: "
                    "CONV_2D; XNNPACK has int4 kernels for fc only, so int4 convolutions may run slower).",
        json_schema_extra={"metavar": "KIND"})
    sparse: bool = Field(
        default=False, description="Store weights that are mostly zeros sparse (the converter's sparsity "
                                   "optimisation): XNNPACK then runs 1x1 convolutions with 2/3 zeros or more "
                                   "through its sparse float kernels. float32 and float16 only.")
    block_size: int | None = Field(
        default=None, description="With --weights int4: weights quantized in blocks of N along the input "
                                  "(a power of two >= 32) instead of per channel.")

    @field_validator("float_ops")
    @classmethod
    def _regexes(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a valid regular expression ({exc})") from None
        return patterns

    @model_validator(mode="after")
    def _io_needs_int8(self):
        if self.io is not IOType.FLOAT32 and self.mode is not QuantMode.INT8:
            raise ValueError(f"io {self.io.value} needs mode int8 (only full-integer models have integer "
                             f"inputs and outputs)")
        if (self.float_ops or self.max_drop is not None) and self.mode is not QuantMode.INT8:
            raise ValueError(f"float_ops and max_drop keep layers in float in a full-int8 model, so they need "
                             f"mode int8, not {self.mode.value}")
        if self.max_float_ops is not None and self.max_drop is None:
            raise ValueError("max_float_ops limits accuracy control, which needs max_drop")
        if self.fallback != "none" and self.max_drop is None:
            raise ValueError("fallback is what accuracy control tries last, so it needs max_drop")
        return self._promote_rules()

    def _promote_rules(self):
        self._int4_rules()
        if self.promote != sorted(set(self.promote), key=["int8", "int16x8", "float"].index):
            raise ValueError(f"promote must list each precision once, lowest first, not {self.promote} "
                             f"(int8, then int16x8, then float)")
        if "int8" in self.promote and self.weights != "int4":
            raise ValueError("promote int8 raises a layer from int4 to int8, so it needs weights int4")
        if self.promote != ["float"] and self.max_drop is None:
            raise ValueError("promote says what accuracy control raises layers to, so it needs max_drop")
        if "int16x8" in self.promote and self.io is IOType.UINT8:
            raise ValueError("promote int16x8 makes models with float32 or int8 input and output, not uint8")
        return self

    def _int4_rules(self) -> None:
        if self.sparse and self.mode not in (QuantMode.FLOAT32, QuantMode.FLOAT16):
            raise ValueError(f"sparse stores float weights for XNNPACK's sparse float kernels; mode "
                             f"{self.mode.value} runs dense kernels: use mode float32 or float16")
        if self.weights == "int4" and self.mode not in (QuantMode.INT8, QuantMode.INT16X8):
            raise ValueError(f"weights int4 needs mode int8 or int16x8 (int4 weights beside integer activations), "
                             f"not {self.mode.value}")
        if self.block_size is not None:
            if self.block_size < 32 or self.block_size & (self.block_size - 1):
                raise ValueError(f"block_size must be a power of two >= 32, not {self.block_size}")
            if self.weights != "int4":
                raise ValueError("block_size sets the int4 blocks, so it needs weights int4")
            raise ValueError("block_size: LiteRT Quantizer makes blockwise int4 weights only with float "
                             "activations (dynamic range, FULLY_CONNECTED); with int8 activations the int4 "
                             "weights are per channel: leave block_size out")
        if self.weights == "int4" and "promote" not in self.model_fields_set and self.max_drop is not None:
            self.promote = ["int8", "float"]

    @property
    def int4(self) -> bool:
        """Whether the model gets int4 weights (made with LiteRT Quantizer, like per-layer precision)."""
        return self.weights == "int4"

    @property
    def mixed(self) -> bool:
        """Whether some layers may stay float (float_ops or accuracy control)."""
        return bool(self.float_ops) or self.max_drop is not None

    @property
    def in_worker(self) -> bool:
        """Whether the converter's worker process converts (plain modes); per-layer precision and int4
        convert in this process."""
        return not (self.mixed or self.int4)


class QuantizeConfig(QuantizeParams):
    """A library call of ``quantize``: the params plus the model, calibration data and output."""

    model: Path
    output: Path
    calibration: DataSpec | None = None
    val: DataSpec | None = None
    metric: Metric = Metric.ACCURACY
    trust_model: bool = False
    keep_unmet: bool = False   # a pipeline keeps the best model when accuracy control misses and lets its gates judge

    @model_validator(mode="after")
    def _rules(self):
        if self.mode.needs_calibration and self.calibration is None:
            raise ValueError(f"--mode {self.mode.value} needs --calibration DATA (representative inputs)")
        if self.max_drop is not None and self.val is None:
            raise ValueError("--max-drop needs --val DATA (labelled data to measure the drop on)")
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
    mixed: MixedPrecision | None = None
    float_ops: list[str] = []  # int8 mode: operators the converter left computing in float
    int4_ops: list[str] = []   # weights int4: operators whose weights are int4 (``OP#index``)
    int8_weight_ops: list[str] = []  # weights int4: operators with weights that stayed int8


def weight_ops_by_dtype(flatbuffer: bytes, path: Path) -> dict[str, list[str]]:
    """``{dtype: ["OP#index", ...]}`` of the operators that hold constant weights (bias and scalars aside:
    only constants of two or more dimensions count), read from the file's tensor types."""
    from edgepack.inspection.tflite_graph import parse_graph, schema_module

    schema = schema_module()
    if schema is None:
        return {}
    _, graph = parse_graph(schema, flatbuffer, path)
    found: dict[str, list[str]] = {}
    for op in graph.operators:
        weights = [graph.tensors[i] for i in op.inputs if i >= 0 and graph.tensors[i].is_constant
                   and len(graph.tensors[i].shape) >= 2]
        for dtype in sorted({t.dtype for t in weights}):
            found.setdefault(dtype, []).append(f"{op.name}#{op.index}")
    return found


def float_ops_of(flatbuffer: bytes, path: Path) -> list[str]:
    """``OP#index`` of each operator that computes in float (QUANTIZE/DEQUANTIZE excepted)."""
    from edgepack.inspection.tflite_graph import op_type, parse_graph, schema_module

    schema = schema_module()
    if schema is None:
        return []
    _, graph = parse_graph(schema, flatbuffer, path)
    return [f"{op.name}#{op.index}" for op in graph.operators if op.name not in ("QUANTIZE", "DEQUANTIZE")
            and op_type(op, graph) in ("float32", "float16", "hybrid")]


def _calibration(config: QuantizeConfig, loaded: LoadedModel) -> np.ndarray | dict | None:
    """The calibration rows drawn from the data (only those rows are read): an array, or a dict of
    arrays by input name for a model with several inputs."""
    if config.calibration is None:
        return None
    if loaded.input_count != 1 and (config.mixed or config.int4):
        raise ModelError(f"{config.model} has {loaded.input_count} inputs; float_ops, accuracy control and int4 "
                         f"weights support single-input models",
                         hint="quantize without --float-ops, --max-drop and --weights int4")
    from edgepack.loading.inputs import calibration_rows

    return calibration_rows(config.calibration, loaded, config.samples, config.seed, model_name=str(config.model))


def _write(path: Path, flatbuffer: bytes, config: QuantizeConfig, loaded: LoadedModel, samples: int | None,
           mixed: MixedPrecision | None) -> TfliteArtifact:
    write_bytes_atomic(path, flatbuffer)
    artifact_sha = sha256_file(path)
    floats = float_ops_of(flatbuffer, path) if config.mode is QuantMode.INT8 else []
    by_dtype = weight_ops_by_dtype(flatbuffer, path) if config.int4 else {}
    sidecar = write_sidecar(path, {
        "step": "quantize", "config": config.model_dump(mode="json"), "source_sha256": loaded.info.sha256,
        "output_sha256": artifact_sha, "calibration_samples": samples, "float_ops": floats,
        "int4_ops": by_dtype.get("int4", []), "int8_weight_ops": by_dtype.get("int8", []),
        "mixed_precision": None if mixed is None else mixed.model_dump(mode="json")})
    return TfliteArtifact(path=path, size_bytes=len(flatbuffer), sha256=artifact_sha, mode=config.mode, io=config.io,
                          source=config.model, source_sha256=loaded.info.sha256, calibration_samples=samples,
                          config_path=sidecar, mixed=mixed, float_ops=floats, int4_ops=by_dtype.get("int4", []),
                          int8_weight_ops=by_dtype.get("int8", []))


def failed_model_path(output: Path) -> Path:
    """Where the best model goes when accuracy control misses its target: ``OUT.failed.tflite``."""
    return output.with_name(output.stem + ".failed.tflite")


def quantize(config: QuantizeConfig, *, say=lambda message: None) -> TfliteArtifact:
    """Convert ``config.model`` into ``config.output`` and write the resolved config beside it.

    With ``float_ops`` the matching layers stay float; with ``max_drop`` accuracy control keeps the
    most harmful layers float until the drop on ``val`` holds. When it cannot, the best model is
    written to ``OUT.failed.tflite`` (with its record) and GateFailed (exit 7) is raised.
    """
    check_writable_target(config.output)
    if config.in_worker:
        from edgepack.quantization.conversion_worker import start_worker

        start_worker()  # TensorFlow loads in the converter's process while this one loads the model
    loaded = load_model(config.model, trust_model=config.trust_model)
    if config.static_batch is None:
        from edgepack.quantization.conversion_worker import recurrent_layers

        if recurrent_layers(loaded):  # LSTM/GRU become builtin TFLite ops only with a fixed batch
            config = config.model_copy(update={"static_batch": True})
    calibration = _calibration(config, loaded)
    mixed = None
    if not config.in_worker:
        from edgepack.quantization.mixed import quantize_mixed

        flatbuffer, mixed = quantize_mixed(loaded, config, calibration, metric=config.metric, say=say)
        if mixed.control is not None and not mixed.control.met and config.fallback == "qat":
            from edgepack.steps._qat_fallback import qat_fallback

            flatbuffer, mixed = qat_fallback(config, loaded, flatbuffer, mixed, say=say)
    else:
        from edgepack.quantization.conversion_worker import convert_in_worker

        flatbuffer = convert_in_worker(loaded, config, calibration, trust_model=config.trust_model)
    samples = None if calibration is None else rows_in(calibration)
    if mixed is not None and mixed.control is not None and not mixed.control.met and not config.keep_unmet:
        failed = _write(failed_model_path(config.output), flatbuffer, config, loaded, samples, mixed)
        raise GateFailed(f"accuracy control could not bring the drop under {config.max_drop:g}: {mixed.summary}",
                         hint=f"the best model found is {failed.path} (record in {failed.config_path.name}); "
                              f"allow more float layers (--max-float-ops) or a larger --max-drop")
    artifact = _write(config.output, flatbuffer, config, loaded, samples, mixed)
    if config.int4:
        _say_int4(artifact, say)
    if artifact.float_ops and mixed is None:
        say(f"warning: int8 left {len(artifact.float_ops)} operator(s) computing in float: "
            f"{', '.join(artifact.float_ops[:8])}{' ...' if len(artifact.float_ops) > 8 else ''} (the converter has "
            f"no int8 kernel for them; they run in float between DEQUANTIZE and QUANTIZE)")
    return artifact


def _say_int4(artifact: TfliteArtifact, say) -> None:
    kept = artifact.int8_weight_ops
    say(f"int4 weights on {len(artifact.int4_ops)} operator(s); int8 weights kept on {len(kept)}: "
        f"{', '.join(kept[:8]) or 'none'}{' ...' if len(kept) > 8 else ''} (no int4 kernel, --int4-ops, or raised by "
        f"accuracy control)")
    cost = artifact.mixed.int4_cost if artifact.mixed is not None else None
    if cost is not None:
        slower = " (--int4-ops fc keeps convolutions at int8 weights)" if cost.int4_ms > cost.int8_ms * 1.1 else ""
        say(cost.summary + slower)


class QuantizeStep(Step):
    """Conversion to .tflite, quantized as ``mode`` says (int8 and int16x8 calibrate on data.train)."""

    name = "quantize"
    params = QuantizeParams
    consumes = ModelKind.KERAS
    produces = ModelKind.TFLITE
    summary = "conversion to .tflite: float32, float16, dynamic, int8, int16x8"

    def prepare(self, params: QuantizeParams) -> None:
        if params.in_worker:
            from edgepack.quantization.conversion_worker import start_worker

            start_worker()

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
        if params.max_drop is not None and not setting.has_val:
            problems.append(Problem(key=("max_drop",), message="quantize max_drop (accuracy control) needs data.val "
                                    "to measure the drop on", hint="add data.val to the recipe (or --val)"))
        if setting.accelerator == "edgetpu" and params.static_batch is False:
            problems.append(Problem(key=("static_batch",), message=f"device {device.name} is an Edge TPU, which "
                                    f"needs static shapes", hint="leave static_batch unset or set it to true"))
        return problems

    def resolve(self, params: QuantizeParams, setting) -> QuantizeParams:
        if params.static_batch is not None:
            return params
        return params.model_copy(update={"static_batch": setting.accelerator in STATIC_BATCH_ACCELERATORS})

    def label(self, params: QuantizeParams) -> str:
        extra = " + accuracy control" if params.max_drop is not None else " + float layers" if params.float_ops else ""
        weights = " (int4 weights)" if params.int4 else " (sparse)" if params.sparse else ""
        return f"{params.mode.value} .tflite{weights}{extra}"

    def run(self, ctx, source: ModelArtifact, params: QuantizeParams) -> ModelArtifact:
        calibration = ctx.train if params.mode.needs_calibration else None
        val = ctx.val if params.max_drop is not None else None
        if calibration is not None:
            ctx.say(f"  quantize: calibrating on up to {params.samples} rows of {calibration.source}")

        def make(output: Path):
            return quantize(QuantizeConfig(model=source.path, output=output, calibration=calibration, val=val,
                                           metric=ctx.setting.metric, trust_model=ctx.trust_model, keep_unmet=True,
                                           **params.model_dump()), say=ctx.say)

        return produce(self, ctx, source, params, ".tflite", make, data=[calibration, val])
