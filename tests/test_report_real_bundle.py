"""The report of a real bundle (prune 0.6 → int8, measured here), opened in headless Chromium: the
per-layer table has one row per Keras layer with the sparsity the test reads from the .tflite's own
weights, and the latency histogram is drawn from the timed runs kept in report.json."""

from __future__ import annotations

import json

import numpy as np
import pytest

from test_report_html import CHROMIUM, Dom, FLAGS  # noqa: F401

RECIPE = """\
name: layers
device: host-cpu
model: {model}
data: {{train: {train}, val: {val}}}
steps:
  - prune: {{sparsity: 0.6, epochs: 1}}
  - quantize: {{mode: int8}}
  - profile: {{runs: 30, min_seconds: 0.2}}
output: {output}
"""


@pytest.fixture(scope="module")
def bundle(run, digits, tmp_path_factory):
    folder = tmp_path_factory.mktemp("layers")
    recipe = folder / "layers.yaml"
    recipe.write_text(RECIPE.format(model=digits["model"], train=digits["train"], val=digits["val"],
                                    output=folder / "dist" / "{name}"))
    result = run("run", recipe)
    assert result.exit_code == 0, result.stderr
    return folder / "dist" / "layers"


def tflite_weight_sparsity(path) -> dict[int, float]:
    """Zeros in each CONV_2D / FULLY_CONNECTED weight tensor of the .tflite, keyed by element count."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    found = {}
    for op in interpreter._get_ops_details():
        if op["op_name"] in ("CONV_2D", "FULLY_CONNECTED"):
            weights = interpreter.get_tensor(op["inputs"][1])
            assert weights.size not in found, "weight tensors are told apart by their size in this model"
            found[weights.size] = float(np.mean(weights == 0))
    return found


def test_the_per_layer_table_has_each_layer_with_the_sparsity_of_its_tflite_weights(bundle, digits):
    import keras

    report = json.loads((bundle / "report.json").read_text())
    model = keras.saving.load_model(digits["model"])
    rows = {row["name"]: row for row in report["layers"]}
    assert [r["name"] for r in report["layers"] if r["name"] != "(converter)"] == [layer.name for layer in model.layers]
    measured = tflite_weight_sparsity(bundle / "model.tflite")
    for layer in model.layers:
        if getattr(layer, "kernel", None) is None:
            continue
        assert rows[layer.name]["sparsity"] == pytest.approx(measured[int(np.prod(layer.kernel.shape))], abs=0.01)
        assert [op["op"] for op in rows[layer.name]["ops"]] in (["CONV_2D"], ["FULLY_CONNECTED"]), layer.name
        assert all(op["type"] == "int8" for op in rows[layer.name]["ops"])
    dom = Dom(_dump(bundle))
    table_rows = [e.attrs["data-layer"] for e in dom.find("tr") if "data-layer" in e.attrs]
    assert table_rows == [r["name"] for r in report["layers"]]


def test_the_latency_histogram_of_a_real_bundle_counts_its_timed_runs(bundle):
    report = json.loads((bundle / "report.json").read_text())
    samples = report["latency"]["latency_ms"]["samples_ms"]
    assert len(samples) >= 30
    dom = Dom(_dump(bundle))
    bars = [e for e in dom.find("rect", "latency") if e.attrs.get("class") == "bin"]
    assert sum(int(b.attrs["data-count"]) for b in bars) == len(samples)
    assert "samples_ms" not in (bundle / "manifest.json").read_text()


def _dump(bundle) -> str:
    import subprocess

    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={bundle.parent / 'chrome'}", "--dump-dom",
                           (bundle / "report.html").as_uri()], capture_output=True, text=True, timeout=120,
                          check=True).stdout
