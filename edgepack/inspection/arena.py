"""The tensor arena a .tflite needs: the bytes the interpreter plans for activations and kernel scratch.

Measured, not modelled: the LiteRT interpreter plans the arena with its own allocator, then each
tensor's buffer address is read back (the Python interpreter has no arena API). The arena is the span
from the lowest to the highest byte of the non-constant tensors, kernel temporaries (im2col) included.
It runs every operator on the runtime's built-in kernels, without the default XNNPACK delegate: the
plan a runtime without that delegate makes (and XNNPACK keeps its own workspace outside the arena).
The runtime's persistent allocations (per-channel multipliers and the like) are not in it.

The runtime runs in a child process (``python -m edgepack.inspection.arena MODEL``) with a time
limit: reading tensor buffers back can crash a runtime, and a crash must not take edgepack with it.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

HOW = "tensor arena planned by the LiteRT interpreter (built-in kernels, no delegate)"
ALIGNMENT = 64  # the arena aligns each tensor to this many bytes (TFLite's kDefaultTensorAlignment)
TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Arena:
    """``bytes`` the arena spans (None when the runtime could not plan it: ``note`` says why);
    ``tensors`` how many tensors it holds, ``scratch`` how many of them are kernel temporaries."""

    bytes: int | None
    tensors: int = 0
    scratch: int = 0
    note: str = HOW


_MEASURED: dict[str, Arena] = {}  # by the file's sha256: the plan depends on the bytes and this runtime only
_MEASURED_MAX = 256


def tensor_arena(path: str | Path, *, timeout: float = TIMEOUT_S) -> Arena:
    """The arena the interpreter allocates for the .tflite at ``path``, measured in a child process
    (once per distinct file content in this process: a study's trials often convert to the same bytes)."""
    import hashlib

    from edgepack.util.child_process import run_child

    try:
        key = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:  # the child says what is wrong with the file
        key = None
    if key in _MEASURED:
        return _MEASURED[key]
    child = run_child([sys.executable, "-m", "edgepack.inspection.arena", str(path)], timeout=timeout)
    if child.timed_out:  # neither is remembered: a loaded machine may plan it in time on the next try
        return Arena(None, note=f"not measured: planning the arena took over {timeout:.0f} s")
    if child.returncode != 0:
        last = (child.stderr.strip().splitlines() or [f"exit status {child.returncode}"])[-1]
        return Arena(None, note=f"not measured: the runtime stopped ({last})")
    arena = Arena(**json.loads(child.stdout.strip().splitlines()[-1]))
    if key is None:
        return arena
    if len(_MEASURED) >= _MEASURED_MAX:
        _MEASURED.pop(next(iter(_MEASURED)))
    _MEASURED[key] = arena
    return arena


def measure(path: Path) -> Arena:
    """The arena, measured in this process (the child's side of :func:`tensor_arena`).

    One inference on zeros runs first: the interpreter plans what follows a tensor whose shape is
    known only while running (a RESHAPE fed by SHAPE) during the first inference, not before.
    Shape arithmetic (int32/int64/bool results) is left out of the span: the runtime keeps what it can
    compute ahead in a separate persistent block. Should the tensors still not lie in one block (a
    tensor the runtime allocates on its own), the sum of their bytes is given instead, and said so.
    """
    import numpy as np

    from edgepack.errors import EdgepackError
    from edgepack.inspection.tflite_graph import parse_graph, schema_module
    from edgepack.runtime.interpreter import make_interpreter, read_model_bytes

    try:
        data = read_model_bytes(path)
        _, graph = parse_graph(schema_module(), data, path)
        interpreter, _ = make_interpreter(data, where=str(path), allow_tensorflow=False, delegates=False)
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
        interpreter.invoke()
    except (EdgepackError, ValueError, RuntimeError) as exc:
        message = exc.message if isinstance(exc, EdgepackError) else str(exc).strip().splitlines()[0]
        return Arena(None, note=f"not measured: {message}")
    spans = _planned_spans(interpreter, graph)
    if not spans:
        return Arena(0)
    scratch = sum(index >= len(graph.tensors) for index, _, _ in spans)
    blocks = _blocks(spans)
    main = max(blocks, key=lambda block: sum(end - start for _, start, end in block))
    extent = max(end for _, _, end in main) - min(start for _, start, _ in main)
    outside = [span for block in blocks if block is not main for span in block]
    if not outside:
        return Arena(extent, len(spans), scratch)
    return Arena(extent + sum(end - start for _, start, end in outside), len(spans), scratch,
                 note=f"{HOW}; {len(outside)} tensor(s) the runtime allocated outside the arena counted by their bytes")


def _blocks(spans: list[tuple[int, int, int]]) -> list[list[tuple[int, int, int]]]:
    """The spans grouped into the blocks of memory they lie in, by address. The arena planner puts each
    tensor in the best-fitting free gap below the arena's end, so an address range no tensor ever holds
    is smaller than every arena tensor above it: a tensor above a larger gap was allocated on its own
    (a kernel temporary the runtime resizes, a persistent buffer), wherever the allocator put it."""
    ordered = sorted(spans, key=lambda span: span[1])
    blocks, end = [[ordered[0]]], ordered[0][2]
    for span in ordered[1:]:
        gap = span[1] - end
        if gap > ALIGNMENT and gap >= span[2] - span[1]:
            blocks.append([span])
            end = span[2]
        else:
            blocks[-1].append(span)
            end = max(end, span[2])
    return blocks


def _planned_spans(interpreter, graph) -> list[tuple[int, int, int]]:
    """``(tensor index, first byte address, end address)`` of every arena tensor with a buffer."""
    import numpy as np

    shape_dtypes = {np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.bool_)}
    raw = interpreter._interpreter
    spans = []
    for index in range(raw.NumTensors(0)):
        if index < len(graph.tensors) and graph.tensors[index].is_constant:
            continue
        try:
            raw.TensorSize(index, 0)  # a temporary without a shape has no buffer; reading it would crash
            view = interpreter.tensor(index)()
        except (ValueError, RuntimeError):  # no shape, or no buffer (a tensor no operator uses)
            continue
        if view.nbytes == 0 or (index < len(graph.tensors) and view.dtype in shape_dtypes):
            continue
        start = view.__array_interface__["data"][0]
        spans.append((index, start, start + view.nbytes))
    return spans


if __name__ == "__main__":
    arena = measure(Path(sys.argv[1]))
    print(json.dumps({"bytes": arena.bytes, "tensors": arena.tensors, "scratch": arena.scratch, "note": arena.note}))
