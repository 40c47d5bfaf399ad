"""Run a .tflite model over a data set, a batch at a time: batched where the model allows, quantized
I/O handled, several inputs fed by signature name (never by position)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgepack.errors import ConfigError, DataError, ModelError
from edgepack.loading.outputs import OutputChoice
from edgepack.runtime.interpreter import RuntimeInfo, make_interpreter, read_model_bytes, rejected
from edgepack.util.quiet import captured_native_output

SIGNATURE = "serving_default"


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


def reshape_refused(exc: BaseException) -> bool:
    """True for the error a delegate (XNNPACK) raises when it cannot re-plan a prepared graph at a new size."""
    text = str(exc)
    return "failed to reshape" in text or "failed to prepare" in text


class TflitePredictor:
    """A .tflite model ready to predict; ``runtime`` names what runs it. ``inputs`` maps each
    signature input name to its tensor; ``predict`` takes an array (one input) or a dict of arrays
    by input name, and may be called once per batch of a stream (the interpreter is sized once)."""

    def __init__(self, path: str | Path, *, threads: int | None = None, runtime: str = "auto",
                 output: OutputChoice | None = None):
        self.path = Path(path)
        self.model_bytes = read_model_bytes(self.path)
        self._threads = threads
        self.interpreter, self.runtime = make_interpreter(
            self.model_bytes, threads=threads, runtime=runtime, where=str(self.path), allocate=False)
        self.runtime: RuntimeInfo
        self.inputs = self._inputs()
        self.input = next(iter(self.inputs.values()))
        self.output_key, self.output = self._output(output)
        self.batch_size = 1
        self._placeholder = {name: tuple(int(d) for d in detail["shape"]) for name, detail in self.inputs.items()}
        self._current = dict(self._placeholder)
        self._allocate_at_placeholder()
        self._prepared: tuple | None = None
        # A fused LSTM/RNN keeps its state in variable tensors between invocations: each batch starts fresh.
        self._stateful = hasattr(self.interpreter, "reset_all_variables")

    def _signatures(self) -> dict:
        return self.interpreter.get_signature_list() if hasattr(self.interpreter, "get_signature_list") else {}

    def _inputs(self) -> dict[str, dict]:
        """Input tensor details by signature input name, in the signature's order."""
        details = self.interpreter.get_input_details()
        if SIGNATURE in self._signatures():
            by_index = {detail["index"]: detail for detail in details}
            by_key = self.interpreter.get_signature_runner(SIGNATURE).get_input_details()
            return {key: by_index[value["index"]] for key, value in by_key.items()}
        if len(details) == 1:
            return {details[0]["name"]: details[0]}
        raise ModelError(f"{self.path} has {len(details)} inputs and no signature naming them "
                         f"({', '.join(d['name'] for d in details)}), so data cannot be matched to them by name",
                         hint="convert the model again with edgepack or TensorFlow 2.7+")

    def _output(self, choice: OutputChoice | None) -> tuple[str, dict]:
        """The chosen output's signature key and tensor details (matched by name, never by position)."""
        details = self.interpreter.get_output_details()
        if SIGNATURE not in self._signatures():
            if len(details) == 1:
                return details[0]["name"], details[0]
            names = [d["name"] for d in details]
            raise ConfigError(f"{self.path} has {len(details)} outputs and no signature naming them "
                              f"({', '.join(names)})", hint="convert the model again with edgepack or TensorFlow 2.7+")
        by_key = self.interpreter.get_signature_runner(SIGNATURE).get_output_details()
        key = pick_signature_output(list(by_key), choice, str(self.path))
        index = by_key[key]["index"]
        return key, next(d for d in details if d["index"] == index)

    @staticmethod
    def _signature_shape(detail: dict) -> tuple:
        signature = detail.get("shape_signature")
        shape = signature if signature is not None and len(signature) else detail["shape"]
        return tuple(int(d) for d in shape)

    @property
    def input_shape(self) -> tuple:
        """The first input's shape with -1 where the model accepts any size (batch first)."""
        return self._signature_shape(self.input)

    @property
    def input_specs(self) -> list:
        """Each input by signature name, with None where any size goes, and the dtype data is given
        in (float32, quantized here when the model needs it; integer inputs such as token ids keep theirs)."""
        from edgepack.loading.data import InputSpec

        specs = []
        for name, detail in self.inputs.items():
            dtype = np.dtype(detail["dtype"])
            plain_integer = dtype.kind in "iu" and not detail.get("quantization", (0.0, 0))[0]
            specs.append(InputSpec(name, tuple(None if d == -1 else d for d in self._signature_shape(detail)),
                                   dtype.name if plain_integer else "float32"))
        return specs

    def _column(self, x, name: str) -> np.ndarray:
        if isinstance(x, dict):
            if set(x) != set(self.inputs):
                raise DataError(f"the data has inputs {', '.join(x)} but {self.path} has inputs "
                                f"{', '.join(self.inputs)}", hint="name the arrays after the model's inputs")
            return x[name]
        if len(self.inputs) != 1:
            raise DataError(f"{self.path} has inputs {', '.join(self.inputs)}; one array cannot feed them",
                            hint="give an .npz with one array per input name")
        return x

    def _rows_wanted(self, row_shapes: dict | None) -> dict[str, tuple]:
        """Each input's row shape: the data's where the model accepts any size, else the model's."""
        wanted = {}
        for name, detail in self.inputs.items():
            free = any(d == -1 for d in self._signature_shape(detail)[1:])
            given = row_shapes.get(name) if row_shapes else None
            current = self._current.get(name, self._placeholder[name])
            wanted[name] = tuple(given) if given is not None and free else tuple(current[1:])
        return wanted

    def _size_to(self, batch: int, rows: dict[str, tuple]) -> None:
        if self._current and all(self._current[name] == (batch, *rows[name]) for name in self.inputs):
            return
        try:
            self._resize_and_allocate(batch, rows)
        except RuntimeError as exc:
            if not reshape_refused(exc):
                raise
            # XNNPACK cannot re-plan some graphs once prepared (UpSampling and TransposeConv at a free size);
            # a fresh interpreter sized before its first allocation can run them at that size.
            self.interpreter, _ = make_interpreter(self.model_bytes, threads=self._threads, runtime=self.runtime.name,
                                                   where=str(self.path), allocate=False)
            self._resize_and_allocate(batch, rows)

    def _allocate_at_placeholder(self) -> None:
        """Allocate at the model's own input shapes; a free size (-1) stands at 1 there, which some graphs
        cannot run at (a stride-2 convolution then a pooling leaves nothing): those are sized to the data
        before their first allocation."""
        try:
            with captured_native_output():
                self.interpreter.allocate_tensors()
        except RuntimeError as exc:
            free = any(d == -1 for detail in self.inputs.values() for d in self._signature_shape(detail)[1:])
            if not (free and reshape_refused(exc)):
                raise rejected(exc, str(self.path), f"{self.runtime.name} {self.runtime.version}") from None
            self._current = {}

    def _resize_and_allocate(self, batch: int, rows: dict[str, tuple]) -> None:
        for name, detail in self.inputs.items():
            self.interpreter.resize_tensor_input(detail["index"], [batch, *rows[name]], strict=True)
            self._current[name] = (batch, *rows[name])
        self.interpreter.allocate_tensors()

    def _try_batch(self, batch_size: int, row_shapes: dict | tuple | None = None) -> int:
        """The batch to run (``batch_size`` where the model allows it, else its fixed batch), with the
        inputs sized to the data's rows where the model accepts any size (-1 after the batch)."""
        if isinstance(row_shapes, tuple):
            row_shapes = {next(iter(self.inputs)): row_shapes}
        rows = self._rows_wanted(row_shapes)
        fixed = [self._signature_shape(d)[0] for d in self.inputs.values() if self._signature_shape(d)[0] != -1]
        if fixed or batch_size <= 1:
            batch = fixed[0] if fixed else 1
            self._size_to(batch, rows)
            return batch
        try:
            self._size_to(batch_size, rows)
            for name, detail in self.inputs.items():
                self.interpreter.set_tensor(detail["index"], np.zeros((batch_size, *rows[name]), detail["dtype"]))
            self.interpreter.invoke()
            if self.interpreter.get_tensor(self.output["index"]).shape[0] == batch_size:
                return batch_size
        except (ValueError, RuntimeError):
            pass
        self._size_to(1, rows)
        return 1

    def single_latency_ms(self, row, runs: int = 30) -> float:
        """Median milliseconds of one single-row invoke (after a warm-up), on this machine; ``row`` is
        one row of the input (or a dict of rows by input name)."""
        import time

        rows = {name: self._column(row, name) for name in self.inputs}
        self._prepared = None
        self.batch_size = self._try_batch(1, {name: value.shape for name, value in rows.items()})
        for name, detail in self.inputs.items():
            self.interpreter.set_tensor(detail["index"], quantize_input(rows[name][None], detail))
        self.interpreter.invoke()
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            self.interpreter.invoke()
            times.append(time.perf_counter() - started)
        return float(np.median(times) * 1000)

    def predict(self, x, batch_size: int = 64) -> np.ndarray:
        """Outputs for every row of ``x`` (float inputs, quantized here when the model needs it): an
        array for a one-input model, a dict of arrays by signature input name otherwise."""
        columns = {name: self._column(x, name) for name in self.inputs}
        count = len(next(iter(columns.values())))
        row_shapes = {name: tuple(value.shape[1:]) for name, value in columns.items()}
        key = (batch_size, tuple(sorted(row_shapes.items())))
        if self._prepared != key:
            self.batch_size = self._try_batch(min(batch_size, count), row_shapes)
            self._prepared = key
        batch, interpreter, index_out = self.batch_size, self.interpreter, self.output["index"]
        feeds = [(detail["index"], quantize_input(columns[name], detail)) for name, detail in self.inputs.items()]
        outputs = []
        for start in range(0, count, batch):
            for index_in, values in feeds:
                chunk = values[start:start + batch]
                if len(chunk) < batch:
                    chunk = np.concatenate([chunk, np.zeros((batch - len(chunk), *chunk.shape[1:]), chunk.dtype)])
                interpreter.set_tensor(index_in, chunk)
            if self._stateful:
                interpreter.reset_all_variables()
            interpreter.invoke()
            outputs.append(interpreter.get_tensor(index_out)[: count - start])
        return dequantize_output(np.concatenate(outputs), self.output)
