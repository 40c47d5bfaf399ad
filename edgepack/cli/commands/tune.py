"""``edgepack tune RECIPE``."""

from __future__ import annotations

from pathlib import Path

import click

from edgepack.cli.options import build_config, json_option, trust_model_option
from edgepack.cli.output import console, emit


def _render(result) -> None:
    from rich.table import Table

    table = Table("trial", "state", "gzip KB", "drop", "latency ms", "gates", "steps", title_justify="left",
                  title=f"study {result.study} ({result.storage}); Pareto front: {result.pareto}")
    for row in result.trials:
        steps = row.settings()
        table.add_row(str(row.number) + (" *" if row.number == result.best else ""), row.state,
                      "-" if row.size_kb is None else f"{row.size_kb:.1f}", "-" if row.drop is None else f"{row.drop:.2f}",
                      "-" if row.latency_ms is None else f"{row.latency_ms:.3f}", "pass" if row.feasible else "fail", steps)
    out = console()
    out.print(table)
    out.print(f"limit: {result.stop.describe()}; ended by its {'trial count' if result.stopped_by == 'trials' else 'time'}")
    out.print(f"tuned recipe: {result.tuned_recipe}\nbundle: {result.bundle}\nstudy page: {result.page}")


@click.command("tune")
@click.argument("recipe")
@click.option("--trials", type=int, help="Trials to run (in addition to earlier ones); default 20 unless "
              "--timeout is given. With both, whichever limit comes first.")
@click.option("--timeout", type=float, help="Stop starting trials after this many seconds; alone, trials are "
              "unbounded until then.")
@click.option("--storage", metavar="URL", help="Study database (default sqlite:///RECIPE.tune.db; "
              "postgresql://... lets several machines share one study).")
@click.option("--study", metavar="NAME", help="Study name (default: the recipe's name).")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="The tuned recipe to write "
              "(default RECIPE.tuned.yaml).")
@click.option("--trust-code", is_flag=True, help="Allow data given as package.module:function.")
@trust_model_option
@json_option
def tune_command(recipe, trials, timeout, storage, study, output, trust_code, trust_model, as_json):
    """Search RECIPE's space (its tune: section, or around its steps) for configurations that pass its
    gates, minimising size and/or latency and drop; write the best as a plain recipe and build it."""
    from edgepack.tuning.study import TuneOptions, tune_recipe

    options = build_config(TuneOptions, recipe=recipe, trials=trials, timeout=timeout, storage=storage, study=study,
                           output=output, trust_model=trust_model, trust_code=trust_code)
    say = lambda message: click.echo(message, err=True)  # noqa: E731
    emit(tune_recipe(options, say=say, progress=_progress(say)), as_json, _render)


def _progress(say):
    """A live table when stderr is a terminal, one line per trial otherwise."""
    import sys

    from edgepack.tuning.progress import LiveTable, TrialLines

    return LiveTable() if sys.stderr.isatty() else TrialLines(say)


COMMANDS = [tune_command]
