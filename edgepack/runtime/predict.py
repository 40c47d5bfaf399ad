"""Run a .tflite model over a whole data set: batched where the model allows, quantized I/O handled."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dataclasses import dataclass

from edgepack.errors import ConfigError, DataError
from edgepack.runtime.interpreter import RuntimeInfo, make_interpreter, read_model_bytes

SIGNATURE = "serving_default"


@dataclass(frozen=True)
class OutputChoice:
    """Which model output a metric is computed on: a name (a Keras output name, or a .tflite signature
    output key) and, when a Keras model is known, that output's position among its outputs."""

    name: str | None = None
    index: int | None = None


def pick_signature_output(keys: list[str], choice: OutputChoice | None, where: str) -> str:
    """The signature output key for ``choice``. The converter names a Keras 3 model's outputs
    ``output_<i>`` in the Keras order and a tf_keras model's by layer name; the tensors themselves
    come in another order, so outputs are never paired by position."""
    if len(keys) == 1 and (choice is None or choice.index == 0 or choice.name in (None, keys[0])):
        return keys[0]  # one output each side (a tf_keras Sequential names its output after the model)
    if choice is None or (choice.name is None and choice.index is None):
        raise ConfigError(f"{where} has {len(keys)} outputs ({', '.join(keys)}); choose the one the metric is "
                          f"computed on", hint="give --output NAME (recipe: data.output)")
    if choice.name in keys:
        return choice.name
    if choice.index is not None and f"output_{choice.index}" in keys:
        return f"output_{choice.index}"
    raise ConfigError(f"{where} has no output {choice.name!r}; its outputs are {', '.join(keys)}",
                      hint="give --output with one of those names")


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    """Turn float data into the input tensor's dtype, using its scale and zero point if quantized."""
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if dtype.kind in "iu" and scale:
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)
    return x.astype(dtype, copy=False)


def dequantize_output(y: np.ndarray, detail: dict) -> np.ndarray:
    """Turn a quantized output tensor back into float32 values."""
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if np.dtype(detail["dtype"]).kind in "iu" and scale:
        return (y.astype(np.float32) - zero_point) * scale
    return y.astype(np.float32, copy=False)


class TflitePredictor:
    """A .tflite model ready to predict; ``runtime`` names what runs it."""

    def __init__(self, path: str | Path, *, threads: int | None = None, runtime: str = "auto",
                 output: OutputChoice | None = None):
        self.path = Path(path)
        self.model_bytes = read_model_bytes(self.path)
        self.interpreter, self.runtime = make_interpreter(
            self.model_bytes, threads=threads, runtime=runtime, where=str(self.path))
        self.runtime: RuntimeInfo
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1:
            raise DataError(f"{self.path} has {len(inputs)} inputs ({', '.join(d['name'] for d in inputs)}); "
                            f"edgepack evaluates and calibrates single-input models only",
                            hint="evaluate such a model with your own script; multi-input data is not supported yet")
        self.input = inputs[0]
        self.output_key, self.output = self._output(output)
        self.batch_size = 1
        # A fused LSTM/RNN keeps its state in variable tensors between invocations: each batch starts fresh.
        self._stateful = hasattr(self.interpreter, "reset_all_variables")

    def _output(self, choice: OutputChoice | None) -> tuple[str, dict]:
        """The chosen output's signature key and tensor details (matched by name, never by position)."""
        details = self.interpreter.get_output_details()
        signatures = self.interpreter.get_signature_list() if hasattr(self.interpreter, "get_signature_list") else {}
        if SIGNATURE not in signatures:
            if len(details) == 1:
                return details[0]["name"], details[0]
            names = [d["name"] for d in details]
            raise ConfigError(f"{self.path} has {len(details)} outputs and no signature naming them "
                              f"({', '.join(names)})", hint="convert the model again with edgepack or TensorFlow 2.7+")
        by_key = self.interpreter.get_signature_runner(SIGNATURE).get_output_details()
        key = pick_signature_output(list(by_key), choice, str(self.path))
        index = by_key[key]["index"]
        return key, next(d for d in details if d["index"] == index)

    @property
    def input_shape(self) -> tuple:
        """Input shape with -1 where the model accepts any size (batch first)."""
        signature = self.input.get("shape_signature")
        shape = signature if signature is not None and len(signature) else self.input["shape"]
        return tuple(int(d) for d in shape)

    def _free_dims(self) -> bool:
        return any(d == -1 for d in self.input_shape[1:])

    def _resize(self, batch: int, row_shape: tuple) -> None:
        self.interpreter.resize_tensor_input(self.input["index"], [batch, *row_shape], strict=True)
        self.interpreter.allocate_tensors()

    def _try_batch(self, batch_size: int, row_shape: tuple | None = None) -> int:
        """The batch to run (``batch_size`` where the model allows it, else 1), with the input sized to
        ``row_shape`` when the model accepts any size (-1 after the batch in its signature)."""
        row_shape = tuple(row_shape) if row_shape is not None and self._free_dims() else \
            tuple(self.input["shape"][1:])
        if batch_size <= 1 or self.input_shape[0] != -1:
            if row_shape != tuple(self.input["shape"][1:]):
                self._resize(1, row_shape)
            return 1
        shape = [batch_size, *row_shape]
        try:
            self._resize(batch_size, row_shape)
            probe = np.zeros(shape, dtype=self.input["dtype"])
            self.interpreter.set_tensor(self.input["index"], probe)
            self.interpreter.invoke()
            if self.interpreter.get_tensor(self.output["index"]).shape[0] == batch_size:
                return batch_size
        except (ValueError, RuntimeError):
            pass
        self._resize(1, row_shape)
        return 1

    def single_latency_ms(self, row: np.ndarray, runs: int = 30) -> float:
        """Median milliseconds of one single-row invoke (after a warm-up), on this machine."""
        import time

        self.batch_size = self._try_batch(1, row.shape)
        value = quantize_input(row[None], self.input)
        self.interpreter.set_tensor(self.input["index"], value)
        self.interpreter.invoke()
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            self.interpreter.invoke()
            times.append(time.perf_counter() - started)
        return float(np.median(times) * 1000)

    def predict(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Outputs for every row of ``x`` (float inputs; quantized here when the model needs it)."""
        self.batch_size = self._try_batch(min(batch_size, len(x)), x.shape[1:])
        batch, index_in, index_out = self.batch_size, self.input["index"], self.output["index"]
        xq = quantize_input(x, self.input)
        outputs = []
        for start in range(0, len(xq), batch):
            chunk = xq[start:start + batch]
            if len(chunk) < batch:
                chunk = np.concatenate([chunk, np.zeros((batch - len(chunk), *chunk.shape[1:]), chunk.dtype)])
            self.interpreter.set_tensor(index_in, chunk)
            if self._stateful:
                self.interpreter.reset_all_variables()
            self.interpreter.invoke()
            outputs.append(self.interpreter.get_tensor(index_out)[: len(xq) - start])
        return dequantize_output(np.concatenate(outputs), self.output)
