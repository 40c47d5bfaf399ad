"""The base install (no extra) runs what a device needs without TensorFlow; building names the extra.

`.venv-base/` is a real `pip install -e .` of edgepack without extras, made by scripts/test-deps.sh
(`make test` and CI run it): its packages come from the package index, not from the test environment.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import ROOT, assert_one_line_error, interpreter_accuracy

BASE = ROOT / ".venv-base"
TENSORFLOW_DISTRIBUTIONS = {"tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-macos",
                            "tensorflow-aarch64", "tf-nightly", "tf-nightly-cpu"}

pytestmark = pytest.mark.skipif(
    not (BASE / "bin" / "edgepack").exists() and not os.environ.get("CI"),
    reason=".venv-base is missing: run scripts/test-deps.sh (make test does)")


def _base(*args, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run([str(BASE / "bin" / "edgepack"), *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env)
    return SimpleNamespace(exit_code=done.returncode, stdout=done.stdout, stderr=done.stderr)


def _distributions(python) -> set[str]:
    code = ("import importlib.metadata as m; "
            "print('\\n'.join(d.metadata['Name'].lower().replace('_', '-') for d in m.distributions()))")
    return set(subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.split())


def test_tensorflow_is_absent_from_the_base_install():
    names = _distributions(BASE / "bin" / "python")
    assert not names & (TENSORFLOW_DISTRIBUTIONS | {"tf-keras", "keras", "tensorflow-model-optimization"}), names
    assert {"edgepack", "ai-edge-litert"} <= names
    done = subprocess.run([str(BASE / "bin" / "python"), "-c", "import tensorflow"], capture_output=True, text=True)
    assert done.returncode != 0 and "No module named 'tensorflow'" in done.stderr


def test_one_tensorflow_distribution_in_the_build_environment():
    import sys

    names = _distributions(sys.executable)
    assert len(names & TENSORFLOW_DISTRIBUTIONS) == 1, sorted(names & TENSORFLOW_DISTRIBUTIONS)
    assert importlib.metadata.version("tensorflow").startswith("2.21")


def test_inspect_evaluate_profile_explore_verify_of_a_tflite_without_tensorflow(tflite_models, digits, tmp_path):
    model = tflite_models["int8"]
    inspected = _base("inspect", model, "--device", "raspberry-pi-4", "--json", cwd=tmp_path)
    assert inspected.exit_code == 0, inspected.stderr
    figures = json.loads(inspected.stdout)
    assert figures["device_figures"]["flash_bytes"] == model.stat().st_size

    evaluated = _base("evaluate", model, "--data", digits["val"], "--json", cwd=tmp_path)
    assert evaluated.exit_code == 0, evaluated.stderr
    val = np.load(digits["val"])
    accuracy = json.loads(evaluated.stdout)["tflite"]["value"]
    assert accuracy == pytest.approx(interpreter_accuracy(model, val["x"], val["y"]), abs=1e-9)

    profiled = _base("profile", model, "--runs", "5", "--warmup", "1", "--min-seconds", "0.1",
                     "--warmup-seconds", "0.05", "--json", cwd=tmp_path)
    assert profiled.exit_code == 0, profiled.stderr
    assert json.loads(profiled.stdout)["latency_ms"]["p50"] > 0

    explored = _base("explore", model, "-o", tmp_path / "x", "--json", cwd=tmp_path)
    assert explored.exit_code == 0 and (tmp_path / "x" / "precision.json").is_file(), explored.stderr

    devices = _base("devices", "list", "--json", cwd=tmp_path)
    assert devices.exit_code == 0 and "raspberry-pi-4" in {d["name"] for d in json.loads(devices.stdout)}

    from edgepack.bundle.checksums import write_sha256sums
    from edgepack.util.files import sha256_file

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "model.tflite").write_bytes(model.read_bytes())
    (bundle / "manifest.json").write_text(json.dumps({"name": "b", "model": {"sha256": sha256_file(model)}}))
    write_sha256sums(bundle)
    verified = _base("verify", bundle, "--json", cwd=tmp_path)
    assert verified.exit_code == 0 and json.loads(verified.stdout)["ok"] is True, verified.stderr


@pytest.mark.parametrize("command, what", [
    (["prune", "{model}", "--sparsity", "0.5", "--data", "{train}", "-o", "p.keras"], "TensorFlow"),
    (["quantize", "{model}", "--mode", "int8", "--calibration", "{train}", "-o", "q.tflite"], "TensorFlow"),
    (["tune", "raspberry-pi-4-int8", "--trials", "1"], "Optuna"),
])
def test_building_without_the_extra_is_exit_2_naming_it(digits, command, what):
    folder = digits["model"].parent  # model.keras, train.npz and val.npz, as the shipped recipes expect
    before = sorted(folder.iterdir())
    args = [part.format(model=digits["model"], train=digits["train"]) for part in command]
    result = _base(*args, cwd=folder)
    assert_one_line_error(result, 2, f"{args[0]} needs {what}", "pip install 'edgepack[cpu]'", "'edgepack[gpu]'")
    assert sorted(folder.iterdir()) == before
