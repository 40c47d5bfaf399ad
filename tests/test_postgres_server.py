"""The throwaway PostgreSQL server of tests/postgres_server.py, as Optuna's RDB storage for several workers."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import optuna

from postgres_server import postgres_url  # noqa: F401  (a pytest fixture)

WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import optuna

    url, worker, barrier = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=url, study_name="s", load_if_exists=True,
                                directions=["minimize", "minimize"])
    # Both workers hold the study before either runs a trial, so their trials interleave.
    (barrier / worker).touch()
    deadline = time.monotonic() + 120
    while len(list(barrier.iterdir())) < 2:
        if time.monotonic() > deadline:
            sys.exit("the other worker never opened the study")
        time.sleep(0.02)

    def objective(trial):
        trial.set_user_attr("worker", worker)
        x = trial.suggest_float("x", 0.0, 1.0)
        time.sleep(0.05)
        return x, 1.0 - x

    study.optimize(objective, n_trials=5)
""")


def test_two_worker_processes_share_one_postgresql_study_with_unique_trial_numbers(postgres_url, tmp_path):
    # Create Optuna's tables first: two clients creating them at once on an empty database can
    # collide (RDBStorage runs CREATE TABLE / the version rows without retrying).
    optuna.storages.RDBStorage(postgres_url).engine.dispose()
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, postgres_url, worker, str(barrier)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for worker in ("w0", "w1")]
    try:
        errors = [worker.communicate(timeout=300)[1] for worker in workers]
    finally:
        for worker in workers:  # never leave a worker behind, even on a timeout or a failure
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for worker, err in zip(workers, errors):
        assert worker.returncode == 0, err[-3000:]

    trials = optuna.load_study(study_name="s", storage=postgres_url).get_trials(deepcopy=False)
    assert len(trials) == 10
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 10
    assert sorted(t.number for t in trials) == list(range(10))
    by_worker = {w: sum(t.user_attrs["worker"] == w for t in trials) for w in ("w0", "w1")}
    assert by_worker == {"w0": 5, "w1": 5}
