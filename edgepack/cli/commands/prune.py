"""``edgepack prune``."""

from __future__ import annotations

import click

from edgepack.cli.commands._compress import compress_options, run_step


@click.command("prune")
@compress_options(epochs_default=2, lr_default=1e-3)
@click.option("--sparsity", type=float, default=0.5, show_default=True,
              help="Final fraction of zero weights in each pruned kernel, in [0, 1).")
@click.option("--schedule", type=click.Choice(["polynomial", "constant"]), default="polynomial", show_default=True,
              help="Ramp sparsity up gradually, or prune to --sparsity at once.")
@click.option("--structure", type=click.Choice(["unstructured", "2:4"]), default="unstructured", show_default=True,
              help="2:4 zeroes 2 of every 4 consecutive weights (Dense and Conv2D).")
def prune_command(as_json, x_key, y_key, trust_code, data, val, trust_model, **values):
    """Prune MODEL with prune-aware fine-tuning on DATA; writes a stripped model."""
    from edgepack.steps.prune import PruneConfig, prune

    run_step(PruneConfig, prune, as_json=as_json, x_key=x_key, y_key=y_key, trust_code=trust_code, data=data,
             val=val, trust_model=trust_model, **values)


COMMANDS = [prune_command]
