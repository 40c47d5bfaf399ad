"""Two `edgepack tune` workers, as on two machines (each its own checkout of the recipe), share one
study in a real PostgreSQL server on 127.0.0.1: no trial lost or run twice, one merged Pareto front."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import optuna

from conftest import ROOT
from postgres_server import postgres_url  # noqa: F401  (a pytest fixture)
from test_tune import QUICK_RECIPE

TRIALS_EACH = 1


def test_two_workers_share_one_postgresql_study_without_losing_or_repeating_a_trial(postgres_url, digits, tmp_path):
    workers = []
    for machine in ("a", "b"):
        folder = tmp_path / machine
        folder.mkdir()
        recipe = folder / "quick.yaml"  # conversion-only trials: what is tested is the shared study
        recipe.write_text(QUICK_RECIPE.format(model=digits["model"], train=digits["train"], val=digits["val"],
                                              output=folder / "dist" / "{name}"))
        # Both start at once on an empty database: Optuna's tables are created by whichever wins.
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "edgepack", "tune", str(recipe), "--storage", postgres_url,
             "--trials", str(TRIALS_EACH), "-o", str(folder / "tuned.yaml"), "--json"],
            cwd=folder, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    results = []
    for worker in workers:
        stdout, stderr = worker.communicate(timeout=600)
        assert worker.returncode in (0, 7), stderr[-3000:]
        if worker.returncode == 0:
            results.append(json.loads(stdout))
    study = optuna.load_study(study_name="quick", storage=postgres_url)
    numbers = sorted(t.number for t in study.trials)
    assert numbers == list(range(2 * TRIALS_EACH)), "every trial once, none lost"
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials)
    by_worker = {}
    for t in study.trials:
        by_worker.setdefault(t.user_attrs["worker"], []).append(t.number)
    assert sorted(len(v) for v in by_worker.values()) == [TRIALS_EACH, TRIALS_EACH], by_worker
    front = sorted(t.number for t in study.best_trials)
    for result in results:  # the worker that finished last saw every trial finished
        if [t["state"] for t in result["trials"]].count("RUNNING") == 0 and len(result["trials"]) == 2 * TRIALS_EACH:
            assert result["pareto"] == front, "the front a worker reports is the merged study's"
