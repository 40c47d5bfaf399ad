"""What the device pays: flash, RAM (tensor arena), MACs and latency per stage, in the bundle, ``inspect``
and the gates ``max_flash_kb`` / ``max_ram_kb`` / ``max_size_kb`` (gzip). Figures are checked against
what this file computes itself from the artifacts."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_one_line_error, without_steps

RECIPE = """\
name: figures
device: host-cpu
model: {model}
data: {{train: {train}, val: {val}}}
steps:
  - prune: {{sparsity: 0.5, epochs: 1}}
  - quantize: {{mode: int8, samples: 100}}
  - profile: {{where: local, runs: 20, min_seconds: 0.1}}
gates:
  max_accuracy_drop: 5
  {gates}
output: {output}
"""


def write_recipe(folder: Path, digits: dict, gates: str, output: Path) -> Path:
    path = folder / "figures.yaml"
    path.write_text(RECIPE.format(model=digits["model"], train=digits["train"], val=digits["val"], gates=gates,
                                  output=output))
    return path


def own_arena_estimate(path: Path) -> int:
    """Bytes of the tensors alive at once at the busiest operator, from the operators' order alone (no
    planner): a graph input lives from the start, every other tensor from the operator that writes it to
    the last that reads it (outputs to the end); kernel scratch tensors (the interpreter's tensors beyond
    the file's) each live during one operator, so the largest one is added."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_path=str(path),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    interpreter.invoke()
    ops = interpreter._get_ops_details()
    size = {d["index"]: int(np.prod(d["shape"])) * np.dtype(d["dtype"]).itemsize
            for d in interpreter.get_tensor_details()}
    graph_inputs = {d["index"] for d in interpreter.get_input_details()}
    graph_outputs = {d["index"] for d in interpreter.get_output_details()}
    written = {int(t): step for step, op in enumerate(ops) for t in op["outputs"]}
    first = {t: 0 for t in graph_inputs} | written
    last = {}
    for step, op in enumerate(ops):
        for t in op["inputs"]:
            if int(t) in first:
                last[int(t)] = step
    last |= {t: len(ops) - 1 for t in graph_outputs}
    peak = max(sum(size[t] for t in first if first[t] <= step <= last.get(t, first[t])) for step in range(len(ops)))
    file_tensors = max(max(int(t) for t in (*op["inputs"], *op["outputs"])) for op in ops) + 1
    scratch = [size[i] for i in size if i >= file_tensors]
    return peak + max(scratch, default=0)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, digits):
    from click.testing import CliRunner

    from edgepack.cli import cli

    folder = tmp_path_factory.mktemp("figures")
    recipe = write_recipe(folder, digits, "max_flash_kb: 1000\n  max_ram_kb: 1000\n  max_macs: 10000000\n"
                                          "  max_size_kb: 1000", folder / "dist")
    result = CliRunner().invoke(cli, ["run", str(recipe), "--json"])
    assert result.exit_code == 0, result.stderr
    return {"folder": folder, "dir": folder / "dist", "result": json.loads(result.stdout)}


def test_every_stage_carries_flash_ram_macs_and_latency(bundle, digits):
    import keras

    report = json.loads((bundle["dir"] / "report.json").read_text())
    stages = report["stages"]
    assert [s["name"] for s in stages] == ["float (Keras)", "prune 0.5", "int8 .tflite"]
    model = keras.saving.load_model(digits["model"])
    float_bytes = sum(int(np.prod(w.shape)) * 4 for w in model.weights)
    for keras_stage in stages[:2]:  # pruning zeroes weights but keeps every one: flash does not move
        figures = keras_stage["device"]
        assert figures["flash_estimated"] and figures["flash_bytes"] == float_bytes
        assert figures["arena_bytes"] is None and figures["macs"] > 0
    final = stages[-1]["device"]
    tflite = bundle["dir"] / "model.tflite"
    data = tflite.read_bytes()
    assert final["flash_bytes"] == len(data) == tflite.stat().st_size and not final["flash_estimated"]
    assert final["download_bytes"] == len(gzip.compress(data, 9, mtime=0))
    assert final["latency_estimated_ms"] > 0 and final["latency_device"] == "host-cpu"
    assert final["latency_measured_ms"] > 0 and final["latency_where"] == "local"
    assert final["peak_memory_mb"] > 0
    assert final["macs"] == stages[0]["device"]["macs"], "int8 changes no MAC of this model"
    assert report["figures"] == final


def test_ram_is_within_20_percent_of_the_tests_own_measure(bundle, tflite_models):
    from edgepack.footprint.figures import tflite_figures

    final = bundle["result"]["figures"]
    own = own_arena_estimate(bundle["dir"] / "model.tflite")
    assert abs(final["arena_bytes"] - own) <= 0.2 * own, (final["arena_bytes"], own)
    for name in ("float32", "int8_io", "int16x8"):
        measured = tflite_figures(tflite_models[name]).arena_bytes
        own = own_arena_estimate(tflite_models[name])
        assert abs(measured - own) <= 0.2 * own, (name, measured, own)


def test_gates_on_flash_ram_and_download_are_judged_on_the_file(bundle):
    gates = {g["gate"]: g for g in bundle["result"]["gates"]}
    data = (bundle["dir"] / "model.tflite").read_bytes()
    assert gates["max_flash_kb"]["value"] == pytest.approx(len(data) / 1024)
    assert gates["max_size_kb"]["value"] == pytest.approx(len(gzip.compress(data, 9, mtime=0)) / 1024)
    assert gates["max_ram_kb"]["value"] == pytest.approx(bundle["result"]["figures"]["arena_bytes"] / 1024)
    assert all(g["passed"] for g in gates.values())


@pytest.mark.parametrize("gate", ["max_flash_kb: 1", "max_ram_kb: 1"])
def test_a_device_gate_that_fails_exits_7_in_one_line(run, tmp_path, digits, gate):
    recipe = write_recipe(tmp_path, digits, gate, tmp_path / "dist")
    without_steps(recipe, "prune", "profile")  # gates on the file need only the file
    message = assert_one_line_error(run("run", recipe), 7, gate.split(":")[0], progress=True)
    assert "KB" in message and not (tmp_path / "dist").exists()


def test_recipes_validate_refuses_a_negative_device_gate(run, tmp_path, digits):
    recipe = write_recipe(tmp_path, digits, "max_ram_kb: -1", tmp_path / "dist")
    assert_one_line_error(run("recipes", "validate", recipe), 2, "max_ram_kb")


def test_html_and_markdown_show_what_the_device_pays(bundle):
    html = (bundle["dir"] / "report.html").read_text()
    for chart in ("device-flash", "device-ram", "device-latency"):
        assert f'id="{chart}"' in html
    assert "gzip (download)" in html and "tensor arena" in html
    markdown = (bundle["dir"] / "report.md").read_text()
    assert "## What the device pays" in markdown and "float32 weights, estimated" in markdown


def test_inspect_gives_the_figures_and_estimates_on_a_device(run, tflite_models):
    path = tflite_models["int8"]
    result = run("inspect", path, "--json", "--device", "raspberry-pi-4")
    assert result.exit_code == 0, result.stderr
    figures = json.loads(result.stdout)["device_figures"]
    assert figures["flash_bytes"] == Path(path).stat().st_size
    assert figures["arena_bytes"] > 0 and figures["macs"] > 0
    assert figures["latency_estimated_ms"] > 0 and figures["latency_device"] == "raspberry-pi-4"
    shown = run("inspect", path)
    assert shown.exit_code == 0 and "tensor arena" in shown.stdout and "flash" in shown.stdout


def test_a_model_the_runtime_cannot_plan_gets_no_arena_and_the_reason(tmp_path, tflite_models):
    from edgepack.inspection.arena import tensor_arena

    broken = tmp_path / "truncated.tflite"
    broken.write_bytes(Path(tflite_models["int8"]).read_bytes()[:2000])
    arena = tensor_arena(broken)
    assert arena.bytes is None and arena.note.startswith("not measured:")


def test_the_arena_of_one_file_content_is_measured_once_per_process(tmp_path, tflite_models, monkeypatch):
    """A study's trials often convert to the same bytes: the child process runs once per content,
    whatever the file is called (a file the runtime refuses too: the same bytes are refused again)."""
    import edgepack.util.child_process as child_process
    from edgepack.inspection import arena as arena_module

    started = []
    real = child_process.run_child
    monkeypatch.setattr(child_process, "run_child", lambda command, **kw: started.append(command) or real(command, **kw))
    monkeypatch.setattr(arena_module, "_MEASURED", {})
    copy = tmp_path / "same-bytes.tflite"
    copy.write_bytes(Path(tflite_models["int8"]).read_bytes())
    first = arena_module.tensor_arena(tflite_models["int8"])
    assert arena_module.tensor_arena(copy) == first and first.bytes and len(started) == 1
    other = arena_module.tensor_arena(tflite_models["float32"])
    assert len(started) == 2 and other.bytes != first.bytes
    broken = tmp_path / "truncated.tflite"
    broken.write_bytes(copy.read_bytes()[:2000])
    assert arena_module.tensor_arena(broken).bytes is None and arena_module.tensor_arena(broken).bytes is None
    assert len(started) == 3


def test_a_device_profiles_ram_limit_gates_a_recipe_that_sets_none(run, tmp_path, digits):
    from conftest import ROOT

    profile = (ROOT / "edgepack" / "devices" / "builtin" / "host-cpu.yaml").read_text()
    device = tmp_path / "small.yaml"
    device.write_text(profile.replace("name: host-cpu", "name: small-ram") + "ram_kb: 1\n")
    recipe = write_recipe(tmp_path, digits, "max_size_kb: 1000", tmp_path / "dist")
    recipe.write_text(recipe.read_text().replace("device: host-cpu", f"device: {device}"))
    without_steps(recipe, "prune", "profile")  # gates on the file need only the file
    message = assert_one_line_error(run("run", recipe), 7, "max_ram_kb", progress=True)
    assert "1.0 KB tensor arena" in message


def test_a_tensor_the_runtime_allocates_on_its_own_counts_its_bytes_not_its_distance():
    """MobileNetV2's int8 .tflite once measured 772 KB, 787 KB or 242 KB of arena in different processes
    (175 KB planned): a 16-byte kernel temporary the runtime allocates outside the arena lay wherever
    malloc put it, and the span from the arena to it was counted. A gap no arena tensor could leave (larger
    than the tensor above it) now starts a block of its own, counted by its bytes."""
    from edgepack.inspection.arena import _blocks

    arena = [(0, 1000, 1000 + 27648), (1, 1000 + 27648, 1000 + 27648 + 110592), (2, 1000, 1000 + 9216),
             (3, 200_000, 200_000 + 65536)]  # a 61 KB gap below a 64 KB tensor: the planner's
    far = (4, 900_000, 900_016)
    blocks = _blocks([far, *arena])
    assert [sorted(i for i, _, _ in block) for block in blocks] == [[0, 1, 2, 3], [4]]
    assert _blocks(arena) == [sorted(arena, key=lambda span: span[1])]
