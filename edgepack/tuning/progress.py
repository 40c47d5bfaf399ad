"""How a running study reports itself: a live table on a terminal, one line per trial in a pipe."""

from __future__ import annotations

import sys
import time
from typing import Callable, Protocol

from edgepack.tuning.limits import StopRule
from edgepack.recipes.tune_section import TuneSection
from edgepack.tuning.trials import TrialSummary, best_trial

Say = Callable[[str], None]


class TuneProgress(Protocol):
    """What ``tune_recipe`` reports to while the study runs."""

    def begin(self, study: str, earlier: int, stop: StopRule, space: TuneSection) -> None: ...

    def trial(self, row: TrialSummary) -> None: ...

    def end(self) -> None: ...


def trial_line(row: TrialSummary) -> str:
    """One trial in one line: its state, figures and settings."""
    if row.state != "COMPLETE":
        return f"trial {row.number}: {row.state.lower()}" + (f" ({row.note})" if row.note else "")
    drop = "-" if row.drop is None else f"{row.drop:.2f}"
    latency = "" if row.latency_ms is None else f", latency {row.latency_ms:.3f} ms"
    device = "" if row.flash_kb is None else f", flash {row.flash_kb:.1f} KB"
    device += "" if row.ram_kb is None else f", RAM {row.ram_kb:.1f} KB"
    return (f"trial {row.number}: size {row.size_kb:.1f} KB gzip{device}, drop {drop}{latency}, "
            f"{'passes' if row.feasible else 'fails'} the gates; {row.settings()}")


class TrialLines:
    """For a pipe or a log file: one line per finished trial through ``say``."""

    def __init__(self, say: Say):
        self.say = say

    def begin(self, study: str, earlier: int, stop: StopRule, space: TuneSection) -> None:
        return None

    def trial(self, row: TrialSummary) -> None:
        self.say(trial_line(row))

    def end(self) -> None:
        return None


class LiveTable:
    """For a terminal: a table on stderr, redrawn in place, with trials done and left, the best trial
    so far, the time left, and the latest trials."""

    RECENT = 8

    def __init__(self, stream=None, *, terminal: bool | None = None):
        from rich.console import Console

        self.console = Console(file=stream or sys.stderr, highlight=False, force_terminal=terminal)
        self.space, self.rows, self.live = TuneSection(), [], None
        self.study, self.earlier, self.stop, self.started = "", 0, StopRule(trials=0), time.monotonic()

    def begin(self, study: str, earlier: int, stop: StopRule, space: TuneSection) -> None:
        from rich.live import Live

        self.study, self.earlier, self.stop, self.space = study, earlier, stop, space
        self.started = time.monotonic()
        self.live = Live(get_renderable=self._table, console=self.console, refresh_per_second=1, transient=False)
        self.live.start()

    def trial(self, row: TrialSummary) -> None:
        self.rows.append(row)
        if self.live is not None:
            self.live.refresh()

    def end(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def _time_left(self, elapsed: float) -> str:
        trials, timeout = self.stop.trials, self.stop.timeout
        by_trials = elapsed / len(self.rows) * (trials - len(self.rows)) if self.rows and trials is not None else None
        by_timeout = None if timeout is None else max(0.0, timeout - elapsed)
        known = [t for t in (by_trials, by_timeout) if t is not None]
        return f"~{min(known):.0f} s" if known else "-"

    def _table(self):
        from rich.table import Table

        elapsed = time.monotonic() - self.started
        best = best_trial(self.rows, self.space)
        done = f"{len(self.rows)} of {self.stop.trials}" if self.stop.trials is not None else f"{len(self.rows)}"
        title = (f"study {self.study}: {done} trials done ({self.earlier} earlier), {elapsed:.0f} s, time left "
                 f"{self._time_left(elapsed)}; limit: {self.stop.describe()}; best so far: "
                 + ("none passes yet" if best is None else trial_line(best).split(";")[0]))
        table = Table("trial", "state", "gzip KB", "flash KB", "RAM KB", "drop", "latency ms", "gates", "settings",
                      title=title, title_justify="left")
        for row in self.rows[-self.RECENT:]:
            table.add_row(str(row.number), row.state, _figure(row.size_kb, 1), _figure(row.flash_kb, 1),
                          _figure(row.ram_kb, 1), _figure(row.drop, 2), _figure(row.latency_ms, 3),
                          "pass" if row.feasible else "fail", row.settings())
        return table


def _figure(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
