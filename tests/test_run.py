"""``edgepack run``: a recipe end to end into a bundle, gates, and the faults around it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, assert_one_line_error, without_steps

RECIPE = """\
name: e2e
device: host-cpu
model: {model}
data:
  train: {train}
  val: {val}
steps:
  - prune: {{sparsity: 0.5, epochs: 1}}
  - cluster: {{clusters: 16, preserve_sparsity: true, epochs: 1}}
  - quantize: {{mode: int8, io: int8, samples: 100}}
gates:
  max_accuracy_drop: 2.0
  max_size_kb: {max_size_kb}
output: {output}
"""


def write_recipe(folder: Path, digits: dict, *, max_size_kb: float = 512, output: str = "dist/{name}") -> Path:
    path = folder / "e2e.yaml"
    path.write_text(RECIPE.format(model=digits["model"], train=digits["train"], val=digits["val"],
                                  max_size_kb=max_size_kb, output=output))
    return path


def tree(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, digits):
    """One real run of the e2e recipe (prune, cluster, int8, local profile) shared by the checks below."""
    from click.testing import CliRunner

    from edgepack.cli import cli

    folder = tmp_path_factory.mktemp("run")
    recipe = write_recipe(folder, digits, output=str(folder / "dist" / "{name}"))
    result = CliRunner().invoke(cli, ["run", str(recipe), "--json"])
    assert result.exit_code == 0, result.stderr
    return {"folder": folder, "recipe": recipe, "dir": folder / "dist" / "e2e", "result": json.loads(result.stdout)}


def test_the_bundle_has_exactly_the_contract_layout(bundle):
    names = sorted(p.name for p in bundle["dir"].iterdir())
    assert names == ["SHA256SUMS", "explorer", "manifest.json", "model.tflite", "recipe.resolved.yaml",
                     "report.html", "report.json", "report.md"]
    assert sorted(p.name for p in bundle["dir"].parent.iterdir()) == ["e2e"], "no staging folders left"


def test_the_report_links_the_model_explorer_node_data_in_the_bundle(bundle):
    import re

    from test_explore import check_with_model_explorer

    html = (bundle["dir"] / "report.html").read_text()
    links = re.findall(r'<a href="(explorer/[^"]+)"', html)
    assert {"explorer/precision.json", "explorer/edgetpu.json", "explorer/gpu.json"} <= set(links)
    assert all((bundle["dir"] / link).is_file() for link in links)
    assert "model-explorer model.tflite --node_data_paths=" in (bundle["dir"] / "report.md").read_text()
    checked = check_with_model_explorer(bundle["dir"] / "model.tflite", [str(bundle["dir"] / p) for p in links])
    assert all(facts["keys"] == facts["ops"] for facts in checked.values())


def test_sha256sum_and_verify_accept_the_bundle(run, bundle):
    subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=bundle["dir"], check=True)
    assert run("verify", bundle["dir"]).exit_code == 0


def test_manifest_names_versions_io_and_verdicts(bundle):
    manifest = json.loads((bundle["dir"] / "manifest.json").read_text())
    assert manifest["provenance"]["libraries"]["tensorflow"].startswith("2.")
    assert manifest["model"]["inputs"][0]["dtype"] == "int8" and manifest["model"]["inputs"][0]["scale"] > 0
    assert manifest["source_model"]["sha256"] and manifest["device"]["name"] == "host-cpu"
    assert {g["gate"] for g in manifest["gates"]} == {"max_accuracy_drop", "max_size_kb"}
    assert manifest["passed"] is True


def test_report_shows_the_drop_and_the_measured_latency(bundle):
    result = bundle["result"]
    assert result["drop"] is not None and result["drop"] <= 2.0
    assert result["latency"]["estimated"] is False and result["latency"]["latency_ms"]["p50"] > 0
    html = (bundle["dir"] / "report.html").read_text()
    assert "percentage points" in html and "measured" in html
    assert [s["name"] for s in result["stages"]][0] == "float (Keras)" and len(result["stages"]) == 4


def test_resolved_recipe_has_every_default_and_reruns(bundle):
    import yaml

    resolved = yaml.safe_load((bundle["dir"] / "recipe.resolved.yaml").read_text())
    assert resolved["steps"][0]["prune"]["schedule"] == "polynomial"
    assert resolved["steps"][2]["quantize"]["samples"] == 100
    assert Path(resolved["model"]).is_absolute()
    from edgepack.recipes.loader import load_recipe

    assert load_recipe(bundle["dir"] / "recipe.resolved.yaml").recipe.name == "e2e"


def test_a_failed_gate_exits_7_keeps_its_report_and_leaves_the_good_bundle_alone(run, bundle, digits, tmp_path):
    """The failing recipe only quantizes (what is tested is the gate and the folders, not the steps)."""
    before = tree(bundle["dir"])
    recipe = write_recipe(tmp_path, digits, max_size_kb=1, output=str(bundle["dir"]))
    without_steps(recipe, "prune", "cluster")
    assert_one_line_error(run("run", recipe), 7, "max_size_kb", progress=True)
    assert tree(bundle["dir"]) == before
    failed = bundle["dir"].with_name("e2e.failed")
    assert (failed / "report.html").exists() and json.loads((failed / "report.json").read_text())["passed"] is False


def test_an_unwritable_output_is_exit_8_before_any_work(run, digits, tmp_path):
    (tmp_path / "file").write_text("x")
    recipe = write_recipe(tmp_path, digits, output=str(tmp_path / "file" / "dist"))
    started = time.perf_counter()
    assert_one_line_error(run("run", recipe), 8, "cannot write the bundle")
    assert time.perf_counter() - started < 5, "the output must be checked before training"


def test_ctrl_c_exits_130_and_leaves_no_temporary_folders(digits, tmp_path):
    work_tmp = tmp_path / "tmp"
    work_tmp.mkdir()
    recipe = write_recipe(tmp_path, digits, output=str(tmp_path / "dist" / "{name}"))
    recipe.write_text(recipe.read_text().replace("epochs: 1}", "epochs: 50}"))
    env = {**os.environ, "TMPDIR": str(work_tmp)}
    child = subprocess.Popen([sys.executable, "-m", "edgepack", "run", str(recipe)], cwd=tmp_path, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not any((tmp_path / "dist").glob(".e2e.staging-*")):
        time.sleep(0.2)
    time.sleep(3)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "edgepack: error: interrupted"
    assert list((tmp_path / "dist").iterdir()) == []
    assert list(work_tmp.iterdir()) == []


SHIPPED = {p.stem: p for folder in (ROOT / "edgepack" / "recipes" / "builtin", ROOT / "recipes")
           for p in folder.glob("*.yaml")}


def one_epoch_copy(source: Path, folder: Path) -> Path | str:
    """The recipe as shipped with every step's ``epochs`` set to 1 (steps, options and gates unchanged), or
    its name (run as a user names it) when no step trains."""
    import yaml

    doc = yaml.safe_load(source.read_text())
    training = [params for step in doc["steps"] for params in step.values()
                if isinstance(params, dict) and "epochs" in params]
    if not training:
        return source.stem
    for params in training:
        params["epochs"] = 1
    path = folder / source.name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.mark.parametrize("recipe", sorted(SHIPPED))
def test_every_shipped_recipe_runs_end_to_end_with_estimates(run, digits, tmp_path, recipe):
    """Every step of every shipped recipe runs and its gates pass on the digits CNN. One epoch per
    training step: how far longer training goes is each step's own tests' concern, and the gates pass
    either way (drops of 0.44 points or less against 1.5 allowed, measured)."""
    result = run("run", one_epoch_copy(SHIPPED[recipe], tmp_path), "--model", digits["model"], "--train",
                 digits["train"], "--val", digits["val"], "--estimate", "-o", tmp_path / recipe, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["latency"]["estimated"] is True and report["latency"]["estimate_source"]
    assert (tmp_path / recipe / "model.tflite").exists()
    progress = result.stderr.splitlines()  # plain lines under each step line (stderr is not a terminal here)
    assert "  profile: estimating from the device profile" in progress and "\x1b[" not in result.stderr
    calibrated = any(mode in stage["name"] for stage in report["stages"] for mode in ("int8", "int16x8"))
    assert any(line.startswith("  quantize: calibrating on up to") for line in progress) == calibrated


def test_resolved_recipe_records_every_training_parameter(bundle):
    import yaml

    resolved = yaml.safe_load((bundle["dir"] / "recipe.resolved.yaml").read_text())
    names = [next(iter(entry)) for entry in resolved["steps"]]
    assert names == ["prune", "cluster", "quantize", "evaluate", "profile"]
    for entry in resolved["steps"][:2]:
        params = next(iter(entry.values()))
        assert {"learning_rate", "seed", "distribute", "batch_size", "epochs"} <= set(params), params
    assert resolved["steps"][2]["quantize"]["static_batch"] is False and resolved["steps"][4]["profile"]["where"] == "local"
    manifest = json.loads((bundle["dir"] / "manifest.json").read_text())
    assert manifest["steps"] == resolved["steps"]


def test_manifest_names_the_source_model_relative_to_the_recipe_not_by_absolute_path(bundle, digits):
    manifest = json.loads((bundle["dir"] / "manifest.json").read_text())
    source = manifest["source_model"]["path"]
    assert not Path(source).is_absolute()
    assert (bundle["recipe"].parent / source).resolve() == Path(digits["model"]).resolve()
    assert str(bundle["folder"]) not in json.dumps(manifest["source_model"])


QUANTIZE_ONLY = """\
name: q
device: host-cpu
model: {model}
data: {{train: {train}, val: {val}}}
steps:
  - quantize: {{mode: int8, io: int8, samples: 50}}
  - profile: {{runs: 5, min_seconds: 0.05, warmup_seconds: 0}}
"""


def test_rerunning_the_resolved_recipe_of_a_quantize_only_bundle_gives_the_same_model(run, digits, tmp_path):
    from edgepack.util.files import sha256_file

    recipe = tmp_path / "q.yaml"
    recipe.write_text(QUANTIZE_ONLY.format(**{k: digits[k] for k in ("model", "train", "val")}))
    assert run("run", recipe, "-o", tmp_path / "first").exit_code == 0
    again = run("run", tmp_path / "first" / "recipe.resolved.yaml", "-o", tmp_path / "second")
    assert again.exit_code == 0, again.stderr
    assert sha256_file(tmp_path / "first" / "model.tflite") == sha256_file(tmp_path / "second" / "model.tflite")
    assert (tmp_path / "first" / "recipe.resolved.yaml").read_text().replace("first", "second") == \
        (tmp_path / "second" / "recipe.resolved.yaml").read_text()


def test_no_file_of_the_bundle_names_the_work_or_staging_folders(bundle):
    for name in ("report.json", "manifest.json", "report.md", "report.html", "recipe.resolved.yaml"):
        text = (bundle["dir"] / name).read_text()
        for fragment in ("edgepack-run-", "edgepack-work-", ".staging-"):
            assert fragment not in text, (name, fragment)
