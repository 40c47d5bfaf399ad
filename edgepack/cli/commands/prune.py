"""``edgepack prune``: options generated from the step's params (edgepack.steps.prune)."""

from __future__ import annotations

import click

from edgepack.cli.commands._compress import compress_options, run_step
from edgepack.steps.prune import PruneParams


@click.command("prune")
@compress_options(PruneParams)
@click.option("--device", metavar="NAME", help="Device profile (name or .yaml) whose cost model --target-latency "
              "and --allocate latency use (structure channels).")
def prune_command(as_json, x_key, y_key, trust_code, data, val, trust_model, **values):
    """Prune MODEL with prune-aware fine-tuning on DATA; writes a stripped model."""
    from edgepack.steps.prune import PruneConfig, prune

    run_step(PruneConfig, prune, as_json=as_json, x_key=x_key, y_key=y_key, trust_code=trust_code, data=data,
             val=val, trust_model=trust_model, **values)


COMMANDS = [prune_command]
