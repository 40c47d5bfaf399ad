"""What ``inspect`` finds, as typed models: a .tflite's operators, tensors and I/O, its Edge TPU, GPU
and XNNPACK-sparse readiness and fix-it list, and a Keras model's layers. ``--json`` prints exactly these."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer

from edgepack.runtime.interpreter import RuntimeInfo


class OpBlock(BaseModel):
    """One operator an accelerator does not take, and why."""

    index: int
    op: str
    reason: str


class EdgeTpuReadiness(BaseModel):
    """How the Edge TPU compiler is predicted to treat the main subgraph."""

    ready: bool
    reasons: list[str] = Field(default_factory=list, description="One line each, with what to do.")
    ops_total: int | None = None
    ops_mappable: int | None = Field(None, description="Operators before the predicted cut.")
    first_unsupported: OpBlock | None = None
    source: str


class GpuReadiness(BaseModel):
    """Which operators the GPU delegate is predicted to take (its largest run of supported operators)."""

    fully_delegated: bool
    ops_total: int
    ops_on_gpu: int
    cpu_ops: list[OpBlock] = Field(default_factory=list)
    source: str


class FixIt(BaseModel):
    """One operator that leaves an accelerator, where it comes from, and what to change."""

    target: Literal["edgetpu", "gpu"]
    index: int
    op: str
    layer: str | None = None   # the Keras layer, read from the operator's tensor names
    reason: str
    fix: str


class SparseCondition(BaseModel):
    condition: str
    holds: bool
    detail: str


class SparseReadiness(BaseModel):
    """Whether XNNPACK runs the model with its sparse float kernels, and the first condition that fails."""

    ready: bool
    failed: str | None = None
    conditions: list[SparseCondition]
    zero_fraction: float
    where: str
    source: str

    def failed_detail(self) -> str | None:
        """The detail of the first condition that fails (None when every one holds)."""
        return next((row.detail for row in self.conditions if row.condition == self.failed), None)


class TensorIO(BaseModel):
    """One input or output tensor of a .tflite."""

    name: str
    shape: list[int]
    shape_signature: list[int]
    dtype: str
    scale: float | None = None
    zero_point: int | None = None


class OpEntry(BaseModel):
    index: int
    op: str
    type: str
    outputs: list[str]


class DeviceFigures(BaseModel):
    """One model's cost on the device. ``None`` means not known for this model (the notes say why).

    ``flash_bytes``: bytes the device stores and maps (the .tflite file; for a Keras model, its float32
    weights, and ``flash_estimated`` is then true). ``download_bytes``: gzip -9 of the file.
    ``arena_bytes``: the tensor arena the LiteRT interpreter plans (activations and kernel scratch, no
    delegate). ``peak_memory_mb``: the measuring process's peak resident memory while it ran the model
    (``profile``, measured only). ``macs``: multiply-accumulates of one inference.
    ``latency_estimated_ms``: the recipe's device profile's estimate; ``latency_measured_ms``: the
    measured p50 and ``latency_where`` (local or remote).
    """

    flash_bytes: int | None = None
    flash_estimated: bool = False
    download_bytes: int | None = None
    arena_bytes: int | None = None
    peak_memory_mb: float | None = None
    macs: int | None = None
    latency_estimated_ms: float | None = None
    latency_device: str | None = None
    latency_measured_ms: float | None = None
    latency_where: str | None = None
    notes: list[str] = Field(default_factory=list)

    @property
    def ram_bytes(self) -> int | None:
        """The RAM figure gates and objectives use: the tensor arena."""
        return self.arena_bytes


class TfliteInspection(BaseModel):
    """``inspect`` of a .tflite (no TensorFlow). The fields the schema reader gives are None where only
    tflite-runtime is installed (``notes`` says so)."""

    model_config = ConfigDict(protected_namespaces=())

    kind: Literal["tflite"] = "tflite"
    path: str
    size_bytes: int
    gzip_size_bytes: int
    sha256: str
    runtime: RuntimeInfo
    inputs: list[TensorIO]
    outputs: list[TensorIO]
    schema_version: int | None = None
    description: str | None = None
    min_runtime_version: str | None = None
    subgraphs: int | None = None
    operator_count: int | None = None
    operators: dict[str, int] | None = None
    tensor_count: int
    tensor_dtypes: dict[str, int]
    full_integer: bool
    float_tensor_count: int
    quantization: str | None = None
    edgetpu: EdgeTpuReadiness
    gpu: GpuReadiness | None = None
    fixes: list[FixIt] = Field(default_factory=list)
    xnnpack_sparse: SparseReadiness | None = None
    ops: list[OpEntry] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    accelerator: str | None = Field(None, description="The --device's accelerator (its fix-it list is shown).")
    device_figures: DeviceFigures | None = Field(None, description="What the device pays (footprint.tflite_figures),"
                                                                   " filled by the API when asked.")


class KerasLayerRow(BaseModel):
    name: str
    class_name: str = Field(alias="class", serialization_alias="class")
    output_shape: list | None = None
    params: int
    macs: int
    sparsity: float | None = None
    distinct_values: int | None = None
    macs_per_time_step: bool = False
    calls: int = 1

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    @model_serializer(mode="wrap")
    def _only_what_applies(self, handler):  # the flags appear only on the layers they describe
        data = handler(self)
        if not self.macs_per_time_step:
            data.pop("macs_per_time_step", None)
        if self.calls == 1:
            data.pop("calls", None)
        return data


class Signature(BaseModel):
    inputs: dict[str, list | None]
    outputs: dict[str, list | None]


class KerasInspection(BaseModel):
    """``inspect`` of a Keras model file or SavedModel folder (``layers`` empty for a plain SavedModel)."""

    kind: Literal["keras"] = "keras"
    path: str
    format: str
    flavor: str
    keras_version: str | None = None
    sha256: str
    name: str | None = None
    inputs: list = Field(default_factory=list)
    outputs: list = Field(default_factory=list)
    params: int = 0
    trainable_params: int | None = None
    macs: int | None = Field(None, description="None for a plain SavedModel (no layers to count).")
    macs_note: str | None = None
    float32_size_bytes: int
    layers: list[KerasLayerRow] = Field(default_factory=list)
    signatures: dict[str, Signature] | None = None
    note: str | None = None

    @model_serializer(mode="wrap")
    def _only_what_applies(self, handler):  # a plain SavedModel has no name, MACs or trainable split
        data = handler(self)
        for key in ("name", "trainable_params", "macs", "macs_note", "signatures", "note"):
            if getattr(self, key) is None:
                data.pop(key, None)
        return data
