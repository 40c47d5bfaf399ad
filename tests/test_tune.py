"""``edgepack tune``: a real Optuna study (SQLite) over a recipe, its tuned recipe, resume and Ctrl-C."""

from __future__ import annotations

import json
import re
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, assert_one_line_error

RECIPE = """\
name: t
device: host-cpu
model: {model}
data: {{train: {train}, val: {val}}}
steps:
  - prune: {{sparsity: 0.7, epochs: 1}}
  - quantize: {{mode: int8, io: int8}}
  - profile: {{where: estimate}}
gates: {{max_accuracy_drop: 1.5{extra_gate}}}
output: {output}
tune: {{sparsity: [0.6, 0.85], epochs: 1, clusters: [16]{extra_tune}}}
"""


def write_recipe(folder: Path, digits: dict, *, extra_gate: str = "", extra_tune: str = "") -> Path:
    path = folder / "t.yaml"
    path.write_text(RECIPE.format(model=digits["model"], train=digits["train"], val=digits["val"],
                                  output=folder / "dist" / "{name}", extra_gate=extra_gate, extra_tune=extra_tune))
    return path


def completed(db: Path) -> int:
    """Finished trials, read with sqlite3 (a second Optuna client could race the child creating the schema)."""
    import sqlite3

    try:
        with sqlite3.connect(db, timeout=10) as connection:
            return connection.execute("SELECT count(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')").fetchone()[0]
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


def test_tune_writes_a_recipe_whose_bundle_passes_its_gates_again_from_a_clean_folder(run, digits, tmp_path):
    recipe = write_recipe(tmp_path, digits, extra_tune=", allocate: [uniform]")  # trial 1, the corner, stays quick
    result = run("tune", recipe, "--trials", "2", "-o", tmp_path / "tuned.yaml", "--json")
    assert result.exit_code == 0, result.stderr[-2000:]
    study = json.loads(result.stdout)
    assert len(study["trials"]) == 2 and study["best"] is not None and study["best"] in study["pareto"]
    best = next(t for t in study["trials"] if t["number"] == study["best"])
    assert best["feasible"] and best["drop"] <= 1.5
    building = result.stderr[result.stderr.index("building its bundle"):]  # from the best trial's own models
    assert "reusing the output of an identical earlier run" in building and "epoch 1/" not in building, building
    clean = tmp_path / "clean"
    clean.mkdir()
    again = run("run", tmp_path / "tuned.yaml", "-o", clean / "bundle", "--json", cwd=clean)
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["passed"] is True
    tuned = (tmp_path / "tuned.yaml").read_text()
    assert "tune:" not in tuned and "quantize:" in tuned
    page = (tmp_path / "tuned.html").read_text()
    assert study["page"] == str(tmp_path / "tuned.html") and len(re.findall(r"<circle[^>]*data-trial=", page)) == 2


def test_ctrl_c_keeps_the_study_and_a_rerun_continues_it(run, digits, tmp_path):
    """Conversion-only trials (QUICK_RECIPE): what is tested is the study, not the steps. The rerun is in
    this process (what it needs to show is the stored study continued, not a second start-up)."""
    recipe = tmp_path / "quick.yaml"
    recipe.write_text(QUICK_RECIPE.format(model=digits["model"], train=digits["train"], val=digits["val"],
                                          output=tmp_path / "dist" / "{name}"))
    db = tmp_path / "quick.tune.db"
    child = subprocess.Popen([sys.executable, "-m", "edgepack", "tune", str(recipe), "--trials", "500"], cwd=tmp_path,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not (db.exists() and completed(db) >= 1):
        time.sleep(0.2)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 130, stderr[-2000:]
    kept = completed(db)
    assert kept >= 1
    again = run("tune", recipe, "--trials", "1", cwd=tmp_path)
    assert again.exit_code in (0, 7), again.stderr[-2000:]
    assert completed(db) == kept + 1


def test_gates_no_trial_meets_are_exit_7_naming_the_closest_trials(run, digits, tmp_path):
    recipe = write_recipe(tmp_path, digits, extra_gate=", max_size_kb: 1")
    assert_one_line_error(run("tune", recipe, "--trials", "1"), 7, "no trial of study t passes the gates",
                          "trial 0", progress=True)


@pytest.mark.parametrize("extra_tune, fragment", [(", sparsity: [0.9, 0.5]", "low <= high"),
                                                  (", clusters: []", "clusters"),
                                                  (", space: {prune.sparsity: [0.5, 1.2]}", "less than 1"),
                                                  (", space: {cluster.clusters: [1, 8]}", "cluster.clusters"),
                                                  (", space: {prune.learning_rate: [0.001, 0.01]}", "not a searched field"),
                                                  (", steps: [], accuracy_control: [false], space: {quantize.weights: [int8]}", "empty"),
                                                  (", qat: [true], modes: [float16]", "needs int8")])
def test_an_empty_or_contradictory_search_space_is_exit_2(run, digits, tmp_path, extra_tune, fragment):
    recipe = write_recipe(tmp_path, digits, extra_tune=extra_tune.replace(", sparsity: [0.6, 0.85]", ""))
    recipe.write_text(recipe.read_text().replace("sparsity: [0.6, 0.85], ", "") if "sparsity" in extra_tune
                      else recipe.read_text())
    assert_one_line_error(run("recipes", "validate", recipe), 2, fragment)
    assert_one_line_error(run("tune", recipe, "--trials", "1"), 2, fragment)


def test_an_unreachable_storage_is_one_clear_line(run, digits, tmp_path):
    recipe = write_recipe(tmp_path, digits)
    result = run("tune", recipe, "--trials", "1", "--storage", "postgresql://edgepack:secret@127.0.0.1:9/nothing")
    message = assert_one_line_error(result, 6, "cannot open the study storage", progress=True)
    assert "secret" not in message


@pytest.mark.parametrize("order, expected", [("prune-cluster", ["prune", "cluster", "quantize", "profile"]),
                                             ("cluster-prune", ["cluster", "prune", "quantize", "profile"])])
def test_a_trial_orders_its_steps_as_the_search_chose(digits, tmp_path, order, expected):
    import optuna

    from edgepack.recipes.loader import load_recipe
    from edgepack.tuning.study import suggest_steps

    recipe = load_recipe(write_recipe(tmp_path, digits, extra_tune=", orders: [prune-cluster, cluster-prune]"))
    space = recipe.recipe.tune
    trial = optuna.trial.FixedTrial({"quantize.weights": "int8", "use_prune": True, "use_cluster": True, "prune.distill": False,
                                     "cluster.distill": False, "prune.sparsity": 0.7, "prune.allocate": "uniform",
                                     "order": order, "cluster.clusters": 16, "cluster.allocate": "sensitivity",
                                     "accuracy_control": False, "qat": False})
    steps = suggest_steps(trial, recipe.recipe, space)
    assert [next(iter(entry)) for entry in steps] == expected
    cluster = next(entry["cluster"] for entry in steps if "cluster" in entry)
    assert cluster["preserve_sparsity"] is (order == "prune-cluster") and cluster["allocate"] == "sensitivity"


def test_a_trial_with_accuracy_control_may_promote_layers_to_int16x8(digits, tmp_path):
    import optuna

    from edgepack.recipes.loader import load_recipe
    from edgepack.tuning.study import suggest_steps
    from edgepack.tuning.trials import TrialSummary

    recipe = load_recipe(write_recipe(tmp_path, digits))
    trial = optuna.trial.FixedTrial({"quantize.weights": "int8", "use_prune": False, "use_cluster": False, "accuracy_control": True,
                                     "promote": "int16x8", "qat": False})
    steps = suggest_steps(trial, recipe.recipe, recipe.recipe.tune)
    quantize = next(entry["quantize"] for entry in steps if "quantize" in entry)
    assert quantize["max_drop"] == 1.5 and quantize["promote"] == ["int16x8", "float"]
    assert "promote int16x8,float" in TrialSummary(number=0, state="COMPLETE", steps=steps).settings()


QUICK_RECIPE = """\
name: quick
device: host-cpu
model: {model}
data: {{train: {train}, val: {val}}}
steps:
  - quantize: {{mode: dynamic}}
  - profile: {{where: estimate}}
gates: {{max_accuracy_drop: 1.5}}
output: {output}
tune: {{steps: [], modes: [dynamic, float16]}}
"""


def test_a_timeout_alone_runs_trials_until_the_time_is_up(run, digits, tmp_path):
    """Without --trials the study is not stopped at the default 20: two conversions, cached after the
    first trial of each, make trials fast enough to pass 20 well inside the time."""
    recipe = tmp_path / "quick.yaml"
    recipe.write_text(QUICK_RECIPE.format(model=digits["model"], train=digits["train"], val=digits["val"],
                                          output=tmp_path / "dist" / "{name}"))
    started = time.monotonic()
    result = run("tune", recipe, "--timeout", "10", "--json")
    assert result.exit_code == 0, result.stderr[-2000:]
    study = json.loads(result.stdout)
    assert len(study["trials"]) > 20, (len(study["trials"]), time.monotonic() - started)
    assert study["stop"] == {"trials": None, "timeout": 10.0} and study["stopped_by"] == "timeout"
    assert "trials until 10 s have passed (no trial limit)" in result.stderr
    import sqlite3

    with sqlite3.connect(tmp_path / "quick.tune.db") as connection:
        assert connection.execute("SELECT count(*) FROM trials").fetchone()[0] == len(study["trials"])


RELATIVE_RECIPE = """\
name: reg
device: host-cpu
model: {model}
metric: mse
data: {{train: {train}, val: {val}}}
steps:
  - quantize: {{mode: dynamic}}
  - profile: {{where: estimate}}
gates: {{max_accuracy_drop: {gate}, relative: true}}
output: {output}
tune: {{steps: [], modes: [dynamic, float16, int8]}}
"""


def test_tune_and_run_judge_a_relative_gate_alike(run, regression, tmp_path):
    """One judge: a regression recipe whose gate is relative (percent of the reference MSE) is tuned,
    and each trial's verdict and drop equal what ``run`` gives for that trial's own recipe."""
    recipe = tmp_path / "reg.yaml"
    recipe.write_text(RELATIVE_RECIPE.format(model=regression["model"], train=regression["train"],
                                             val=regression["val"], output=tmp_path / "dist" / "{name}", gate=0.5))
    tuned = run("tune", recipe, "--trials", "6", "-o", tmp_path / "tuned.yaml", "--json")
    assert tuned.exit_code in (0, 7), tuned.stderr[-2000:]
    trials = {json.dumps(t["steps"], sort_keys=True): t for t in json.loads(tuned.stdout or "{}").get("trials", [])
              if t["state"] == "COMPLETE"} if tuned.exit_code == 0 else {}
    if tuned.exit_code == 7:  # no trial passes: read the study itself
        import optuna

        from edgepack.tuning.trials import summary_of

        study = optuna.load_study(study_name="reg", storage=f"sqlite:///{tmp_path / 'reg.tune.db'}")
        trials = {json.dumps(r.steps, sort_keys=True): r.model_dump() for r in map(summary_of, study.trials)
                  if r.state == "COMPLETE"}
    assert len(trials) >= 2
    verdicts = set()
    for index, trial in enumerate(trials.values()):
        again = tmp_path / f"trial{index}.yaml"
        data = yaml.safe_load(recipe.read_text())
        data.pop("tune")
        data["steps"] = trial["steps"]
        again.write_text(yaml.safe_dump(data))
        result = run("run", again, "-o", tmp_path / f"bundle{index}", "--json")
        assert result.exit_code in (0, 7), result.stderr[-2000:]
        ran = json.loads(result.stdout)
        assert ran["passed"] == trial["feasible"], (trial, ran["gates"])
        assert ran["drop"] == pytest.approx(trial["drop"], rel=1e-9)
        assert ran["drop_unit"] == "percent of reference"
        verdicts.add(ran["passed"])
    assert verdicts == {True, False}, "the gate should separate the trials (pick another threshold)"


def test_a_step_declared_in_one_place_is_searched_and_its_domain_overridden(digits, tmp_path):
    """A step defined here, with one field declaring a search domain, is tunable with no other edit:
    its field is drawn in its domain, a recipe's tune: space narrows it by key path, and a value the
    field itself refuses is a one-line error naming the key."""
    code = textwrap.dedent(f"""
        import optuna
        from pydantic import Field
        from edgepack.params import searched
        from edgepack.steps.base import ModelKind, Step, StepParams

        class GlowParams(StepParams):
            strength: float = Field(default=0.5, ge=0, le=1, json_schema_extra=searched(low=0.1, high=0.9))

        class Glow(Step):
            name = "glow"
            params = GlowParams
            consumes = produces = ModelKind.TFLITE
            measures = True

        from edgepack.recipes.loader import load_recipe
        from edgepack.tuning.study import suggest_steps
        from edgepack.tuning.trials import TrialSummary
        from edgepack.errors import ConfigError

        path = {str(tmp_path / "glow.yaml")!r}
        head = ("name: g\\ndevice: host-cpu\\nmodel: {digits['model']}\\ndata: {{train: {digits['train']}, "
                "val: {digits['val']}}}\\nsteps:\\n  - quantize: {{mode: dynamic}}\\n  - glow: {{}}\\n")
        open(path, "w").write(head + "tune: {{steps: [], modes: [dynamic, float16]}}\\n")
        loaded = load_recipe(path)
        study = optuna.create_study()
        drawn = []
        for _ in range(8):
            steps = suggest_steps(study.ask(), loaded.recipe, loaded.recipe.tune)
            drawn.append(next(e["glow"]["strength"] for e in steps if "glow" in e))
        assert all(0.1 <= v <= 0.9 for v in drawn) and len(set(drawn)) > 1, drawn
        assert "glow" in TrialSummary(number=0, state="COMPLETE", steps=steps).settings()
        open(path, "w").write(head + "tune: {{steps: [], modes: [dynamic, float16], space: {{glow.strength: [0.2, 0.3]}}}}\\n")
        loaded = load_recipe(path)
        steps = suggest_steps(optuna.create_study().ask(), loaded.recipe, loaded.recipe.tune)
        assert 0.2 <= next(e["glow"]["strength"] for e in steps if "glow" in e) <= 0.3
        open(path, "w").write(head + "tune: {{steps: [], modes: [dynamic, float16], space: {{glow.strength: [0.2, 3]}}}}\\n")
        try:
            load_recipe(path)
        except ConfigError as exc:
            assert "glow.strength" in str(exc) and "less than or equal to 1" in str(exc), str(exc)
        else:
            raise AssertionError("a strength of 3 was accepted")
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.stdout.strip().endswith("ok"), result.stderr[-3000:]


def test_a_new_study_starts_from_the_recipe_as_written(digits, tmp_path):
    """Trial 0 of a new study is the recipe's own steps (values brought inside the searched domains),
    so the search starts from what the user wrote."""
    import optuna

    from edgepack.recipes.loader import load_recipe
    from edgepack.tuning.study import recipe_trial, suggest_steps

    loaded = load_recipe(write_recipe(tmp_path, digits))
    params = recipe_trial(loaded.recipe, loaded.recipe.tune)
    assert params["use_prune"] is True and params["use_cluster"] is False
    assert params["prune.sparsity"] == 0.7 and params["prune.allocate"] == "uniform"
    assert params["qat"] is False and params["accuracy_control"] is False
    study = optuna.create_study()
    study.enqueue_trial(params)
    steps = suggest_steps(study.ask(), loaded.recipe, loaded.recipe.tune)
    assert [next(iter(e)) for e in steps] == ["prune", "quantize", "profile"]
    assert steps[0]["prune"]["sparsity"] == 0.7


FAILING_STEP = """
import contextlib, io, json, sys
from pydantic import Field
from edgepack.errors import ModelError
from edgepack.params import searched
from edgepack.steps.base import ModelKind, Step, StepParams

class GlowParams(StepParams):
    strength: float = Field(default=0.5, ge=0, le=1, json_schema_extra=searched(low=0.0, high=1.0))
    limit: float = 0.5

class Glow(Step):
    name = "glow"
    params = GlowParams
    consumes = produces = ModelKind.TFLITE
    measures = True

    def run(self, ctx, source, params):
        if params.strength > params.limit:
            raise ModelError(f"glow {params.strength} is too strong for this model")
        return source

from edgepack.cli import main
done = []
for recipe in sys.argv[1:]:  # one study per recipe, in one process
    sys.argv = ["edgepack", "tune", recipe, "--trials", "8", "--json"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
    done.append({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
print(json.dumps(done))
"""


def test_a_trial_that_fails_is_recorded_and_three_in_a_row_stop_the_study(digits, tmp_path):
    """A configuration a step refuses fails its trial (state FAIL, the message as its note) and the
    study goes on (limit 0.5); when three trials in a row fail (limit -1) the error is not the trials'
    own, and it is raised. Both studies run in one process, which defines the step."""
    recipes = []
    for name, limit in (("glow", 0.5), ("never", -1.0)):
        recipe = tmp_path / f"{name}.yaml"
        recipe.write_text(f"name: {name}\ndevice: host-cpu\nmodel: {digits['model']}\n"
                          f"data: {{train: {digits['train']}, val: {digits['val']}}}\n"
                          f"steps:\n  - quantize: {{mode: dynamic}}\n  - glow: {{limit: {limit}}}\n"
                          f"  - profile: {{where: estimate}}\n"
                          f"gates: {{max_accuracy_drop: 1.5}}\noutput: {tmp_path / 'dist' / '{name}'}\n"
                          f"tune: {{steps: [], modes: [dynamic, float16]}}\n")
        recipes.append(str(recipe))
    script = tmp_path / "glow_tune.py"
    script.write_text(FAILING_STEP)
    done = subprocess.run([sys.executable, str(script), *recipes], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    goes_on, stops = json.loads(done.stdout.strip().splitlines()[-1])
    import sqlite3

    def states(name: str) -> list[str]:
        with sqlite3.connect(tmp_path / f"{name}.tune.db") as connection:
            return [row[0] for row in connection.execute("SELECT state FROM trials ORDER BY number")]

    assert goes_on["code"] == 0, goes_on["stderr"][-3000:]
    study = json.loads(goes_on["stdout"])
    failed = [t for t in study["trials"] if t["state"] == "FAIL"]
    assert failed and all(t["note"].startswith("failed: ") and "too strong" in t["note"] for t in failed)
    assert len(study["trials"]) == 8 and study["best"] is not None and "FAIL" in states("glow")
    assert stops["code"] == 4, stops["stderr"][-3000:]
    assert states("never") == ["FAIL"] * 3
    assert stops["stderr"].strip().splitlines()[-1].startswith("edgepack: error: glow ")


def test_a_latency_objective_searches_channel_pruning(digits, tmp_path):
    """With latency among the objectives a trial may prune channels: it then searches the MACs kept and the
    allocation (latency allocation included), never the unstructured sparsity."""
    import optuna

    from edgepack.recipes.loader import load_recipe
    from edgepack.tuning.study import recipe_trial, suggest_steps

    loaded = load_recipe(write_recipe(tmp_path, digits, extra_tune=", objectives: [latency, drop]"))
    space = loaded.recipe.tune
    trial = optuna.trial.FixedTrial({"quantize.weights": "int8", "use_prune": True, "use_cluster": False, "prune.structure": "channels",
                                     "prune.target_macs": 0.4, "prune.channel_allocate": "latency",
                                     "prune.distill": True, "accuracy_control": False, "qat": False})
    prune = suggest_steps(trial, loaded.recipe, space)[0]["prune"]
    assert prune["structure"] == "channels" and prune["target_macs"] == 0.4 and prune["allocate"] == "latency"
    assert "prune.sparsity" not in trial.params
    unstructured = optuna.trial.FixedTrial({"quantize.weights": "int8", "use_prune": True, "use_cluster": False, "prune.structure": "unstructured",
                                            "prune.sparsity": 0.8, "prune.allocate": "uniform", "prune.distill": False,
                                            "accuracy_control": False, "qat": False})
    prune = suggest_steps(unstructured, loaded.recipe, space)[0]["prune"]
    assert prune["structure"] == "unstructured" and prune["sparsity"] == 0.8 and prune.get("target_macs") is None
    assert recipe_trial(loaded.recipe, space)["prune.structure"] == "unstructured"


def test_a_size_objective_keeps_the_recipes_structure(digits, tmp_path):
    import optuna

    from edgepack.recipes.loader import load_recipe
    from edgepack.tuning.study import suggest_steps

    loaded = load_recipe(write_recipe(tmp_path, digits))
    trial = optuna.trial.FixedTrial({"quantize.weights": "int8", "use_prune": True, "use_cluster": False, "prune.sparsity": 0.7,
                                     "prune.allocate": "uniform", "prune.distill": False,
                                     "accuracy_control": False, "qat": False})
    prune = suggest_steps(trial, loaded.recipe, loaded.recipe.tune)[0]["prune"]
    assert prune["structure"] == "unstructured" and "prune.structure" not in trial.params


def test_a_recipe_without_prune_still_searches_the_sparsity_of_an_added_prune(digits, tmp_path):
    import optuna

    from edgepack.recipes.loader import load_recipe
    from edgepack.tuning.study import suggest_steps

    path = write_recipe(tmp_path, digits)
    path.write_text(path.read_text().replace("  - prune: {sparsity: 0.7, epochs: 1}\n", ""))
    loaded = load_recipe(path)
    trial = optuna.trial.FixedTrial({"quantize.weights": "int8", "use_prune": True, "use_cluster": False, "prune.sparsity": 0.77,
                                     "prune.allocate": "uniform", "prune.distill": False,
                                     "accuracy_control": False, "qat": False})
    prune = suggest_steps(trial, loaded.recipe, loaded.recipe.tune)[0]["prune"]
    assert prune["sparsity"] == 0.77


FLASH_RECIPE = """\
name: flash
device: host-cpu
model: {model}
data: {{train: {train}, val: {val}}}
steps:
  - quantize: {{mode: int8}}
  - profile: {{where: estimate}}
gates: {{max_accuracy_drop: 1.5}}
output: {output}
tune: {{objectives: [flash, drop], steps: [], accuracy_control: [false, true], optional: false}}
"""


def test_a_flash_objective_minimises_the_tflite_bytes_and_tries_int4(run, digits, tmp_path):
    recipe = tmp_path / "flash.yaml"
    recipe.write_text(FLASH_RECIPE.format(model=digits["model"], train=digits["train"], val=digits["val"],
                                          output=tmp_path / "dist" / "{name}"))
    result = run("tune", recipe, "--trials", "6", "-o", tmp_path / "tuned.yaml", "--json")
    assert result.exit_code == 0, result.stderr[-2000:]
    study = json.loads(result.stdout)
    assert study["objectives"] == ["flash", "drop"]
    done = [t for t in study["trials"] if t["state"] == "COMPLETE"]
    assert all(t["flash_kb"] and t["ram_kb"] for t in done)
    weights = {next(e["quantize"] for e in t["steps"] if "quantize" in e).get("weights", "int8") for t in done}
    assert weights == {"int8", "int4"}, [(t["state"], t["note"], t["steps"][-1]) for t in study["trials"]]
    best = next(t for t in study["trials"] if t["number"] == study["best"])
    assert best["flash_kb"] == min(t["flash_kb"] for t in done if t["feasible"])
    clean = tmp_path / "clean"
    again = run("run", tmp_path / "tuned.yaml", "-o", clean, "--json")
    assert again.exit_code == 0, again.stderr[-2000:]
    assert (clean / "model.tflite").stat().st_size / 1024 == pytest.approx(best["flash_kb"])


def test_a_tune_section_without_objectives_takes_the_device_profiles(digits, tmp_path):
    from edgepack.recipes.loader import load_recipe
    from edgepack.tuning.study import tune_space

    recipe = write_recipe(tmp_path, digits)
    recipe.write_text(recipe.read_text().replace("device: host-cpu", "device: raspberry-pi-4"))
    assert tune_space(load_recipe(recipe)).objectives == ["latency", "drop"]
    assert tune_space(load_recipe(recipe)).structure_choices() == ["unstructured", "channels"]
    text = recipe.read_text()
    recipe.write_text(text.replace("epochs: 1,", "epochs: 1, objectives: [flash, drop],"))
    assert tune_space(load_recipe(recipe)).objectives == ["flash", "drop"], "the recipe's own win"
    recipe.write_text(text.replace("device: raspberry-pi-4", "device: host-cpu"))
    assert tune_space(load_recipe(recipe)).objectives == ["size", "drop"], "a profile without objectives"


def test_a_float_cpu_recipe_searches_xnnpack_pruning_stored_sparse(digits, tmp_path):
    """A recipe that converts to float32 for a CPU device, tuned for latency: XNNPACK's structure joins the
    search, its trial prunes uniformly at 0.75 or more and converts with the weights stored sparse."""
    import optuna

    from edgepack.recipes.loader import load_recipe
    from edgepack.recipes.plan import plan_steps
    from edgepack.steps.base import registry  # noqa: F401  (the steps register on import)
    from edgepack.tuning.study import float_cpu_target, recipe_trial, suggest_steps, tune_space

    recipe = write_recipe(tmp_path, digits, extra_tune=", objectives: [latency, drop]")
    recipe.write_text(recipe.read_text().replace("quantize: {mode: int8, io: int8}", "quantize: {mode: float32}"))
    loaded = load_recipe(recipe)
    space = tune_space(loaded)
    assert float_cpu_target(loaded.recipe, loaded.device)
    assert space.structure_choices(True) == ["unstructured", "channels", "xnnpack"]
    assert space.structure_choices(False) == ["unstructured", "channels"]
    trial = optuna.trial.FixedTrial({"use_prune": True, "use_cluster": False, "prune.structure": "xnnpack",
                                     "prune.distill": False})
    steps = suggest_steps(trial, loaded.recipe, space, float_cpu=True)
    prune = steps[0]["prune"]
    quantize = next(e["quantize"] for e in steps if "quantize" in e)
    assert prune["structure"] == "xnnpack" and prune["allocate"] == "uniform" and prune["sparsity"] >= 0.75
    assert quantize["mode"] == "float32" and quantize["sparse"] is True
    from edgepack.recipes.schema import Recipe

    trial_recipe = Recipe.model_validate({**loaded.recipe.model_dump(mode="json", exclude={"tune"}), "steps": steps})
    _, problems = plan_steps(trial_recipe.steps, loaded.setting)
    assert not problems, problems
    assert recipe_trial(loaded.recipe, space, True)["prune.structure"] == "unstructured"


def test_a_new_study_tries_the_compressing_corner_second(digits, tmp_path):
    """Size or flash as an objective: the trial after the recipe's own prunes and clusters with every searched
    field at its domain's corner (narrowed by the recipe's tune: section), so ~20 trials reach the compressing
    end of the space; a latency objective gets no such trial."""
    from edgepack.recipes.loader import load_recipe
    from edgepack.tuning.study import corner_trial, recipe_trial, tune_space

    recipe = write_recipe(tmp_path, digits)
    loaded = load_recipe(recipe)
    corner = corner_trial(loaded.recipe, tune_space(loaded))
    assert corner == {"use_prune": True, "use_cluster": True, "prune.sparsity": 0.85, "prune.allocate": "sensitivity",
                      "prune.distill": False, "cluster.allocate": "uniform", "cluster.distill": False}
    assert corner != recipe_trial(loaded.recipe, tune_space(loaded))
    recipe.write_text(recipe.read_text().replace("epochs: 1, clusters: [16]", "clusters: [8, 16]"))
    corner = corner_trial(load_recipe(recipe).recipe, tune_space(load_recipe(recipe)))
    assert (corner["prune.epochs"], corner["cluster.epochs"], corner["cluster.clusters"]) == (8, 4, 8)
    recipe.write_text(recipe.read_text().replace("clusters: [8, 16]", "clusters: [8, 16], objectives: [latency, drop]"))
    assert corner_trial(load_recipe(recipe).recipe, tune_space(load_recipe(recipe))) is None


def test_a_latency_objective_tries_the_fast_corner(digits, tmp_path):
    """Latency as an objective: a new study also tries channels removed at each searched field's fast corner
    (a deep MACs budget, uniform, distilled, the longest fine-tuning, int8 weights), without clustering; the
    recipe's tune: section narrows it; a space that cannot prune channels gets no such trial."""
    from edgepack.recipes.loader import load_recipe
    from edgepack.tuning.study import fast_corner_trial, tune_space

    recipe = write_recipe(tmp_path, digits, extra_tune=", objectives: [latency, drop]")
    recipe.write_text(recipe.read_text().replace("epochs: 1, ", ""))
    loaded = load_recipe(recipe)
    assert fast_corner_trial(loaded.recipe, tune_space(loaded)) == {
        "use_prune": True, "use_cluster": False, "prune.structure": "channels", "prune.target_macs": 0.35,
        "prune.channel_allocate": "uniform", "prune.epochs": 8, "prune.distill": True, "quantize.weights": "int8"}
    recipe.write_text(recipe.read_text().replace("objectives:", "space: {prune.target_macs: [0.5, 0.8]}, "
                                                 "distill: [false], objectives:"))
    narrowed = fast_corner_trial(load_recipe(recipe).recipe, tune_space(load_recipe(recipe)))
    assert narrowed["prune.target_macs"] == 0.5 and "prune.distill" not in narrowed  # left to the sampler
    recipe.write_text(recipe.read_text().replace("objectives:", "structures: [unstructured], objectives:"))
    assert fast_corner_trial(load_recipe(recipe).recipe, tune_space(load_recipe(recipe))) is None
    recipe.write_text(recipe.read_text().replace("objectives: [latency, drop]", "objectives: [size, drop]"))
    assert fast_corner_trial(load_recipe(recipe).recipe, tune_space(load_recipe(recipe))) is None


def test_a_relative_gate_reaches_accuracy_control_in_the_metrics_own_unit(regression, tmp_path):
    """Accuracy control judges drops in the metric's unit (here an MSE increase): a trial that turns it on under
    a relative gate (0.5% of the reference MSE) asks it for 0.5% of the reference, not for 0.5."""
    import optuna

    from edgepack.recipes.loader import load_recipe
    from edgepack.tuning.study import suggest_steps, tune_space

    recipe = tmp_path / "reg.yaml"
    recipe.write_text(RELATIVE_RECIPE.format(model=regression["model"], train=regression["train"],
                                             val=regression["val"], output=tmp_path / "dist" / "{name}", gate=0.5))
    loaded = load_recipe(recipe)
    trial = optuna.trial.FixedTrial({"mode": "int8", "qat": False, "accuracy_control": True, "promote": "float",
                                     "quantize.weights": "int8"})
    steps = suggest_steps(trial, loaded.recipe, tune_space(loaded), reference=0.04)
    assert steps[0]["quantize"]["max_drop"] == pytest.approx(0.0002)
    assert "max_drop" not in suggest_steps(trial, loaded.recipe, tune_space(loaded))[0]["quantize"]


def test_a_study_measures_each_distinct_model_once(tflite_models, tmp_path):
    """The trials of a study share their latencies as they share their scores: a model measured once is not
    measured again (a measured profile step costs seconds per trial); without a shared store it is."""
    from edgepack.steps.artifacts import ModelArtifact
    from edgepack.steps.base import ModelKind, registry
    from edgepack.steps.context import StepContext
    from edgepack.steps.profile import ProfileParams

    step, params = registry()["profile"](), ProfileParams(where="local", runs=5, min_seconds=0.05, warmup_seconds=0)
    lines, latencies = [], {}
    context = StepContext(work=tmp_path, say=lines.append, latencies=latencies)
    found = [step.run(context, ModelArtifact.of_file(tflite_models[name], ModelKind.TFLITE, label=name), params).latency
             for name in ("int8", "float32", "int8")]
    assert found[2] is found[0] and found[1] is not found[0] and len(latencies) == 2
    assert sum("reusing the measurement" in line for line in lines) == 1
    alone = StepContext(work=tmp_path, say=lines.append)
    again = step.run(alone, ModelArtifact.of_file(tflite_models["int8"], ModelKind.TFLITE, label="int8"), params)
    assert again.latency is not found[0]
