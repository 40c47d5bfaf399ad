"""``edgepack sensitivity``: options generated from the step's params (edgepack.steps.sensitivity)."""

from __future__ import annotations

from pathlib import Path

import click

from edgepack.cli.options import build_config, data_key_options, data_spec, json_option, trust_model_option
from edgepack.cli.output import console, emit
from edgepack.cli.params import given, params_options
from edgepack.evaluation.metrics import Metric
from edgepack.steps.sensitivity import SensitivityParams


def _figure(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def _render(result) -> None:
    from rich.table import Table

    out = console()
    head = f"{result.metric.value} of the float model {result.reference:.4f} on {result.samples} samples"
    if result.int8_drop is not None:
        head += f"; full int8 drop {result.int8_drop:.2f} {result.drop_unit}"
    out.print(head)
    table = Table("rank", "layer", "class", "int8 error", "drop if float", "prune 50/80/90%", "cluster 8/16/32",
                  title=f"per-layer sensitivity (drops in {result.drop_unit}; int8 error = RMSE / quantization step)",
                  title_justify="left")
    by_name = {layer.layer: layer for layer in result.layers}
    for rank, name in enumerate(result.ranking, start=1):
        layer = by_name[name]
        table.add_row(str(rank), name, layer.class_name, _figure(layer.int8_error), _figure(layer.int8_drop_if_float),
                      "/".join(f"{v:.1f}" for v in layer.prune_drop.values()) or "-",
                      "/".join(f"{v:.1f}" for v in layer.cluster_drop.values()) or "-")
    out.print(table)


@click.command("sensitivity")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--calibration", metavar="DATA", help="Representative data for the int8 calibration.")
@click.option("--data", metavar="DATA", required=True, help="Labelled data the metric is measured on.")
@click.option("--metric", type=click.Choice([m.value for m in Metric]), help="Metric.  [default: accuracy]")
@params_options(SensitivityParams)
@data_key_options
@trust_model_option
@json_option
def sensitivity_command(model, calibration, data, metric, x_key, y_key, trust_code, trust_model, as_json, **values):
    """Per-layer sensitivity of MODEL: int8 error and the metric with each layer kept float, and the
    metric drop when each layer alone is pruned or clustered (no fine-tuning)."""
    from edgepack.steps.sensitivity import SensitivityConfig, sensitivity

    config = build_config(SensitivityConfig, model=model, calibration=data_spec(calibration, x_key, y_key, trust_code),
                          data=data_spec(data, x_key, y_key, trust_code), trust_model=trust_model,
                          **given(dict(values, metric=metric)))
    emit(sensitivity(config), as_json, _render)


COMMANDS = [sensitivity_command]
