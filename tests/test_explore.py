"""``edgepack explore``: Model Explorer node-data files, checked with the real Model Explorer package (its
node-data classes and its own TFLite adapter's graph), in a child process so its native libraries stay
out of this one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import assert_one_line_error

CHECK = r"""
import json, sys
from model_explorer.builtin_tflite_flatbuffer_adapter import BuiltinTfliteFlatbufferAdapter
from model_explorer.node_data_builder import GraphNodeData, ModelNodeData, NodeDataResult, ThresholdItem

model, files = sys.argv[1], sys.argv[2:]
graphs = BuiltinTfliteFlatbufferAdapter().convert(model, {})["graphCollections"][0].graphs
found = {}
for path in files:
    document = json.load(open(path))
    data = ModelNodeData(graphsData={gid: GraphNodeData(
        results={key: NodeDataResult(**value) for key, value in graph["results"].items()},
        thresholds=[ThresholdItem(**item) for item in graph["thresholds"]]) for gid, graph in document.items()})
    json.loads(data.to_json_string())
    for gid, graph in data.graphsData.items():
        nodes = next(g for g in graphs if g["id"] == gid)["nodes"]
        ops = [n["id"] for n in nodes if n["label"] not in ("GraphInputs", "GraphOutputs", "pseudo_const")]
        found[path] = {"graph": gid, "keys": sorted(graph.results), "ops": sorted(ops),
                       "node_ids": sorted(n["id"] for n in nodes)}
print(json.dumps(found))
"""


def check_with_model_explorer(model: Path, files: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-c", CHECK, str(model), *files], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", ["int8", "float32"])
def test_every_node_data_key_is_a_node_of_model_explorers_graph(run, tflite_models, tmp_path, name):
    model = tflite_models[name]
    result = run("explore", model, "--device", "raspberry-pi-4", "-o", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.stderr
    files = json.loads(result.stdout)["files"]
    assert set(files) == {"precision", "edgetpu", "gpu", "latency"}
    checked = check_with_model_explorer(Path(model), list(files.values()))
    for path, facts in checked.items():
        assert set(facts["keys"]) <= set(facts["node_ids"]), path
        assert facts["keys"] == facts["ops"], f"{path}: every operator has a value"


def test_precision_reads_the_operators_arithmetic(run, tflite_models, tmp_path):
    from edgepack.inspection.tflite_model import inspect_tflite

    for name, bits in (("float32", {32}), ("int8_io", {8, 32})):
        result = run("explore", tflite_models[name], "-o", tmp_path / name, "--json")
        values = json.loads(Path(json.loads(result.stdout)["files"]["precision"]).read_text())
        got = {int(k): v["value"] for k, v in next(iter(values.values()))["results"].items()}
        ops = inspect_tflite(tflite_models[name]).model_dump()["ops"]
        assert set(got.values()) <= bits
        for op in ops:  # shape arithmetic (int32) counts 32; every compute op of int8 is 8
            assert got[op["index"]] == {"int8": 8, "float32": 32, "int32": 32}[op["type"]], op


def test_a_bundle_is_explored_beside_it_with_its_device_and_stays_verifiable(run, tmp_path, digits):
    bundle = tmp_path / "dist" / "b"
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: b\ndevice: raspberry-pi-4\nmodel: {digits['model']}\ndata: {{train: {digits['train']}}}\n"
                      f"steps:\n  - quantize: {{mode: int8, io: int8, samples: 50}}\n  - profile: {{where: estimate}}\n"
                      f"output: {bundle}\n")
    assert run("run", recipe).exit_code == 0
    result = run("explore", "--bundle", bundle, "--json")
    assert result.exit_code == 0, result.stderr
    files = json.loads(result.stdout)["files"]
    assert "latency" in files and all(Path(p).parent == tmp_path / "dist" / "b.explorer" for p in files.values())
    assert run("verify", bundle).exit_code == 0
    edgetpu = json.loads(Path(files["edgetpu"]).read_text())
    assert set(next(iter(edgetpu.values()))["results"][k]["value"] for k in ("0", "1")) <= {0, 1}


def test_neither_or_both_inputs_exit_2(run, tflite_models, tmp_path):
    assert_one_line_error(run("explore"), 2, "--bundle")
    assert_one_line_error(run("explore", tflite_models["int8"], "--bundle", tmp_path), 2, "not both")
