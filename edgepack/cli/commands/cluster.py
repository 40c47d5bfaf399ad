"""``edgepack cluster``: options generated from the step's params (edgepack.steps.cluster)."""

from __future__ import annotations

import click

from edgepack.cli.commands._compress import compress_options, run_step
from edgepack.steps.cluster import ClusterParams


@click.command("cluster")
@compress_options(ClusterParams)
def cluster_command(as_json, x_key, y_key, trust_code, data, val, trust_model, **values):
    """Cluster MODEL's weights with fine-tuning on DATA; writes a stripped model."""
    from edgepack.steps.cluster import ClusterConfig, cluster

    run_step(ClusterConfig, cluster, as_json=as_json, x_key=x_key, y_key=y_key, trust_code=trust_code, data=data,
             val=val, trust_model=trust_model, **values)


COMMANDS = [cluster_command]
