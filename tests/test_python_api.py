"""The Python API, as a notebook user calls it: no Click, the same steps and errors as the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT

NOTEBOOK = """
import json, sys
import numpy as np
import edgepack
from ai_edge_litert.interpreter import Interpreter

digits = json.loads(sys.argv[1])
work = sys.argv[2]
tflite = edgepack.quantize(digits["model"], f"{work}/m.tflite", mode="int8", io="int8",
                           calibration=digits["train"], samples=100)
report = edgepack.evaluate(tflite.path, data=digits["val"], reference=digits["model"])

# the accuracy measured here, from the .tflite, independently of edgepack's report
val = np.load(digits["val"])
interpreter = Interpreter(model_path=str(tflite.path))
interpreter.allocate_tensors()
inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
scale, zero = inp["quantization"]
hits = 0
for x, y in zip(val["x"], val["y"]):
    q = np.clip(np.round(x / scale) + zero, -128, 127).astype(np.int8)[None]
    interpreter.set_tensor(inp["index"], q)
    interpreter.invoke()
    hits += int(np.argmax(interpreter.get_tensor(out["index"])[0]) == int(y))

with open(f"{work}/recipe.yaml", "w") as f:
    f.write(f"name: nb\\ndevice: host-cpu\\nmodel: {digits['model']}\\ndata: {{train: {digits['train']}, "
            f"val: {digits['val']}}}\\nsteps:\\n  - quantize: {{mode: float16}}\\n  - profile: {{runs: 5, "
            f"min_seconds: 0.05, warmup_seconds: 0}}\\ngates: {{max_accuracy_drop: 1}}\\noutput: {work}/dist/nb\\n")
result = edgepack.run_recipe(f"{work}/recipe.yaml")
try:
    edgepack.prune(digits["model"], data=digits["train"], output=f"{work}/p.keras", structure="2:4", sparsity=0.7)
    error = None
except edgepack.errors.ConfigError as exc:
    error = [exc.exit_code, str(exc)]
print(json.dumps({"mine": hits / len(val["y"]), "theirs": report.tflite.value, "drop": report.drop,
                  "passed": result.passed, "bundle": result.bundle, "error": error,
                  "click": "click" in sys.modules, "params": sorted(edgepack.list_steps())}))
"""


def test_a_notebook_quantizes_evaluates_and_runs_a_recipe_without_click(digits, tmp_path):
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(NOTEBOOK), json.dumps(
        {k: str(v) for k, v in digits.items() if k in ("model", "train", "val")}), str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert abs(out["mine"] - out["theirs"]) < 1e-9
    assert out["drop"] is not None and out["passed"] is True and (tmp_path / "dist" / "nb" / "model.tflite").exists()
    assert out["error"][0] == 2 and "2:4" in out["error"][1] and "sparsity" in out["error"][1]
    assert out["click"] is False, "the library must not need Click"
    assert out["params"] == ["cluster", "evaluate", "profile", "prune", "qat", "quantize", "sensitivity"]


def test_import_edgepack_is_light():
    code = "import sys, edgepack; print(sorted(m for m in ('tensorflow', 'keras', 'click', 'numpy') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.stdout.strip() == "[]", result.stderr


@pytest.mark.parametrize("name, params", [("quantize", "QuantizeParams"), ("prune", "PruneParams"),
                                          ("cluster", "ClusterParams"), ("qat", "QatParams"),
                                          ("sensitivity", "SensitivityParams"), ("evaluate", "EvaluateParams")])
def test_every_params_field_is_a_named_keyword_with_its_default_and_help(name, params):
    """A notebook user sees each option: in the signature (with the model's default) and in help()."""
    import inspect as inspect_module

    import edgepack

    function, model = getattr(edgepack, name), getattr(edgepack, params)
    signature = inspect_module.signature(function)
    assert not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    for field_name, field in model.model_fields.items():
        assert field_name in signature.parameters, field_name
        assert signature.parameters[field_name].default == field.get_default(call_default_factory=True)
        assert f"    {field_name} (default" in function.__doc__
    assert signature.return_annotation not in (inspect_module.Signature.empty, None)


def test_the_api_is_complete_and_rejects_an_unknown_keyword(tmp_path):
    import edgepack
    from edgepack.errors import ConfigError

    for name in ("quantize", "prune", "cluster", "qat", "sensitivity", "evaluate", "profile", "inspect", "verify",
                 "run_recipe", "tune"):
        assert callable(getattr(edgepack, name)) and getattr(edgepack, name).__doc__, name
    from edgepack.errors import ModelError

    with pytest.raises(ConfigError, match="sparsty"):
        edgepack.prune(tmp_path / "m.keras", data="train.npz", output=tmp_path / "o.keras", sparsty=0.5)
    with pytest.raises(ModelError, match="no SHA256SUMS"):
        edgepack.verify(tmp_path)
