"""Run a .tflite model over a whole data set: batched where the model allows, quantized I/O handled."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgepack.errors import DataError
from edgepack.runtime.interpreter import RuntimeInfo, make_interpreter, read_model_bytes


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

    def __init__(self, path: str | Path, *, threads: int | None = None, runtime: str = "auto"):
        self.path = Path(path)
        self.model_bytes = read_model_bytes(self.path)
        self.interpreter, self.runtime = make_interpreter(
            self.model_bytes, threads=threads, runtime=runtime, where=str(self.path))
        self.runtime: RuntimeInfo
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1:
            raise DataError(f"{self.path} has {len(inputs)} inputs; edgepack evaluates single-input models")
        self.input = inputs[0]
        self.output = self.interpreter.get_output_details()[0]
        self.batch_size = 1

    @property
    def input_shape(self) -> tuple:
        """Input shape with -1 where the model accepts any size (batch first)."""
        signature = self.input.get("shape_signature")
        shape = signature if signature is not None and len(signature) else self.input["shape"]
        return tuple(int(d) for d in shape)

    def _try_batch(self, batch_size: int) -> int:
        if batch_size <= 1 or self.input_shape[0] != -1:
            return 1
        shape = [batch_size, *self.input["shape"][1:]]
        try:
            self.interpreter.resize_tensor_input(self.input["index"], shape, strict=True)
            self.interpreter.allocate_tensors()
            probe = np.zeros(shape, dtype=self.input["dtype"])
            self.interpreter.set_tensor(self.input["index"], probe)
            self.interpreter.invoke()
            if self.interpreter.get_tensor(self.output["index"]).shape[0] == batch_size:
                return batch_size
        except (ValueError, RuntimeError):
            pass
        self.interpreter.resize_tensor_input(self.input["index"], [1, *self.input["shape"][1:]])
        self.interpreter.allocate_tensors()
        return 1

    def predict(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Outputs for every row of ``x`` (float inputs; quantized here when the model needs it)."""
        self.batch_size = self._try_batch(min(batch_size, len(x)))
        batch, index_in, index_out = self.batch_size, self.input["index"], self.output["index"]
        xq = quantize_input(x, self.input)
        outputs = []
        for start in range(0, len(xq), batch):
            chunk = xq[start:start + batch]
            if len(chunk) < batch:
                chunk = np.concatenate([chunk, np.zeros((batch - len(chunk), *chunk.shape[1:]), chunk.dtype)])
            self.interpreter.set_tensor(index_in, chunk)
            self.interpreter.invoke()
            outputs.append(self.interpreter.get_tensor(index_out)[: len(xq) - start])
        return dequantize_output(np.concatenate(outputs), self.output)
