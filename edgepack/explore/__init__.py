"""``edgepack explore``: Model Explorer node-data files for a .tflite (precision, placement, time per op)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from edgepack.devices.schema import DeviceProfile
from edgepack.inspection.fixes import fix_list
from edgepack.inspection.result import FixIt
from edgepack.quantization.mixed import MixedPrecision


class Exploration(BaseModel):
    """What ``explore`` wrote: one node-data file per overlay, the graph id they key, the fallbacks."""

    model: str
    graph_id: str
    files: dict[str, str]
    fallbacks: list[FixIt]
    command: str


def graph_id(model) -> str:
    """The id Model Explorer's TFLite adapter gives the main graph: its name, else its signature key,
    else ``main``."""
    from edgepack.inspection.tflite_graph import as_text

    name = as_text(model.subgraphs[0].name)
    if name:
        return name
    keys = [as_text(s.signatureKey) for s in (model.signatureDefs or []) if s.subgraphIndex == 0]
    return keys[0] if keys and keys[0] else "main"


class Decisions(BaseModel):
    """What a sensitivity or accuracy-control result says per Keras layer, and which operators each layer
    became (``op_layers``: a bundle's report knows; else read from the operators' tensor names)."""

    int8_errors: dict[str, float] | None = None    # per layer, from a sensitivity result
    mixed_precision: MixedPrecision | None = None  # accuracy control's choices, from a report
    op_layers: dict[int, str] | None = None


def _op_layers(graph, decisions: Decisions) -> dict[int, str]:
    if decisions.op_layers is not None:
        return decisions.op_layers
    from edgepack.inspection.fixes import keras_layer

    names = set(decisions.int8_errors or {})
    names |= set(decisions.mixed_precision.float_layers if decisions.mixed_precision else [])
    found = {op.index: keras_layer(op, graph) for op in graph.operators}
    return {index: layer for index, layer in found.items() if layer in names}


def _decision_overlays(graph, decisions: Decisions | None) -> list:
    from edgepack.explore import overlays

    if decisions is None:
        return []
    op_layers = _op_layers(graph, decisions)
    layers = []
    if decisions.int8_errors:
        layers.append(overlays.int8_error(op_layers, decisions.int8_errors))
    if decisions.mixed_precision and decisions.mixed_precision.control:
        layers.append(overlays.control_decisions(op_layers, decisions.mixed_precision))
    return layers


def explore(path: str | Path, output: str | Path, device: DeviceProfile | None = None,
            decisions: Decisions | None = None) -> Exploration:
    """Write ``output/<overlay>.json`` for the .tflite at ``path``: precision, Edge TPU and GPU placement,
    the estimated time per operator when ``device`` has estimate figures, and the int8 error and accuracy
    control's choice per operator when ``decisions`` has them."""
    from edgepack.explore import overlays
    from edgepack.inspection.gpu import gpu_readiness
    from edgepack.inspection.tflite_graph import parse_graph, schema_module
    from edgepack.runtime.interpreter import make_interpreter, read_model_bytes
    from edgepack.util.files import write_bytes_atomic

    path, output = Path(path), Path(output)
    data = read_model_bytes(path)
    make_interpreter(data, where=str(path), allocate=False, allow_tensorflow=False)  # the verifier runs
    model, graph = parse_graph(schema_module(), data, path)
    gpu = gpu_readiness(graph)
    layers = [overlays.precision(graph), overlays.edgetpu_placement(graph), overlays.gpu_placement(graph, gpu)]
    if device is not None and device.estimate is not None:
        from edgepack.latency.estimate import estimate_latency
        from edgepack.latency.op_counts import model_work

        layers.append(overlays.estimated_time(estimate_latency(model_work(path, data), device)))
    layers += _decision_overlays(graph, decisions)
    gid = graph_id(model)
    output.mkdir(parents=True, exist_ok=True)
    files = {}
    for overlay in layers:
        target = output / f"{overlay.name}.json"
        write_bytes_atomic(target, json.dumps(overlay.node_data(gid), indent=1).encode())
        files[overlay.name] = str(target)
    fallbacks = fix_list(graph, gpu)
    command = f"model-explorer {path} --node_data_paths={','.join(files.values())}"
    return Exploration(model=str(path), graph_id=gid, files=files, fallbacks=fallbacks, command=command)
