"""``edgepack cluster``."""

from __future__ import annotations

import click

from edgepack.cli.commands._compress import compress_options, run_step


@click.command("cluster")
@compress_options(epochs_default=1, lr_default=1e-4)
@click.option("--clusters", type=int, default=16, show_default=True,
              help="Distinct values per clustered kernel (at least 2).")
@click.option("--init", type=click.Choice(["kmeans++", "linear", "density", "random"]), default="kmeans++",
              show_default=True, help="How the cluster centroids start.")
@click.option("--preserve-sparsity", is_flag=True, help="Keep the zeros of a pruned model zero.")
def cluster_command(as_json, x_key, y_key, trust_code, data, val, trust_model, **values):
    """Cluster MODEL's weights with fine-tuning on DATA; writes a stripped model."""
    from edgepack.steps.cluster import ClusterConfig, cluster

    run_step(ClusterConfig, cluster, as_json=as_json, x_key=x_key, y_key=y_key, trust_code=trust_code, data=data,
             val=val, trust_model=trust_model, **values)


COMMANDS = [cluster_command]
