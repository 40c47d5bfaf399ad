"""What a running study shows: a live table on a terminal, one line per trial in a pipe, and the
settings each trial chose, written compactly (no TensorFlow here)."""

from __future__ import annotations

import io
import re

from edgepack.tuning.limits import StopRule
from edgepack.tuning.progress import LiveTable, TrialLines, trial_line
from edgepack.recipes.tune_section import TuneSection
from edgepack.tuning.trials import TrialSummary, best_trial

PASSING = TrialSummary(number=0, state="COMPLETE", size_kb=5.2, drop=0.4, feasible=True,
                       steps=[{"prune": {"sparsity": 0.91, "allocate": "sensitivity", "distill": False}},
                              {"cluster": {"clusters": 8}}, {"quantize": {"mode": "int8", "io": "int8"}},
                              {"profile": {"where": "estimate"}}])
SMALLER_FAILING = TrialSummary(number=1, state="COMPLETE", size_kb=3.1, drop=4.0, feasible=False,
                               steps=[{"qat": {"io": "float32", "epochs": 1}}])
PRUNED = TrialSummary(number=2, state="PRUNED", note="stopped early: prune 0.97 already loses 9.00 (gate 1)")


def test_a_trial_line_names_its_figures_the_gates_and_its_settings():
    assert trial_line(PASSING) == ("trial 0: size 5.2 KB gzip, drop 0.40, passes the gates; "
                                   "prune 0.91 sensitivity · cluster 8 · quantize int8 io int8")
    assert trial_line(SMALLER_FAILING).endswith("fails the gates; qat io float32 epochs 1")
    assert trial_line(PRUNED) == "trial 2: pruned (stopped early: prune 0.97 already loses 9.00 (gate 1))"


def test_the_best_trial_is_the_smallest_that_passes_the_gates():
    assert best_trial([PASSING, SMALLER_FAILING, PRUNED], TuneSection()) is PASSING
    assert best_trial([SMALLER_FAILING, PRUNED], TuneSection()) is None


def test_in_a_pipe_each_finished_trial_is_one_line():
    lines = []
    progress = TrialLines(lines.append)
    progress.begin("s", 0, StopRule(trials=3), TuneSection())
    for row in (PASSING, SMALLER_FAILING, PRUNED):
        progress.trial(row)
    progress.end()
    assert lines == [trial_line(r) for r in (PASSING, SMALLER_FAILING, PRUNED)]


def test_on_a_terminal_the_live_table_shows_trials_done_and_left_the_best_so_far_and_time_left():
    screen = io.StringIO()
    table = LiveTable(stream=screen, terminal=True)  # a terminal, as the CLI picks when stderr is a tty
    table.begin("digits", 4, StopRule(trials=10, timeout=600), TuneSection())
    for row in (PASSING, SMALLER_FAILING, PRUNED):
        table.trial(row)
    table.end()
    assert "\x1b[" in screen.getvalue(), "drawn with terminal control codes, in place"
    drawn = " ".join(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue()).split())
    assert "study digits: 3 of 10 trials done (4 earlier)" in drawn
    assert "best so far: trial 0: size 5.2 KB gzip, drop 0.40, passes the gates" in drawn
    assert "time left ~" in drawn and "qat io" in drawn
    assert "limit: 10 more trial(s) or 600 s, whichever comes first" in drawn


def test_with_a_timeout_alone_the_live_table_counts_trials_without_a_total():
    screen = io.StringIO()
    table = LiveTable(stream=screen, terminal=True)
    table.begin("digits", 0, StopRule(timeout=600), TuneSection())
    table.trial(PASSING)
    table.end()
    drawn = " ".join(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue()).split())
    assert "study digits: 1 trials done (0 earlier)" in drawn
    assert "limit: trials until 600 s have passed (no trial limit)" in drawn


def test_the_limits_follow_the_options_given():
    from edgepack.tuning.study import TuneOptions

    def rule(**given):
        return TuneOptions(recipe="r.yaml", **given).stop_rule()

    assert rule() == StopRule(trials=20, timeout=None)
    assert rule(timeout=600) == StopRule(trials=None, timeout=600)
    assert rule(trials=5) == StopRule(trials=5, timeout=None)
    assert rule(trials=5, timeout=600) == StopRule(trials=5, timeout=600)
