"""``edgepack quantize`` and ``edgepack convert``."""

from __future__ import annotations

from pathlib import Path

import click

from edgepack.cli.options import (build_config, data_key_options, data_spec, json_option, preprocess_option,
                                  trust_model_option)
from edgepack.cli.output import console, emit, human_bytes, key_value_table
from edgepack.cli.params import given, params_options
from edgepack.evaluation.metrics import Metric
from edgepack.steps.quantize import QuantizeParams


def _render(artifact) -> None:
    rows = [("output", artifact.path), ("mode", artifact.mode.value), ("size", human_bytes(artifact.size_bytes)),
            ("sha256", artifact.sha256), ("config", artifact.config_path)]
    if artifact.mode.value == "int8":
        rows.insert(2, ("io", artifact.io.value))
    if artifact.calibration_samples:
        rows.append(("calibration samples", artifact.calibration_samples))
    if artifact.int4_ops:
        rows.append(("int4 weights", f"{len(artifact.int4_ops)} operators; int8 weights on "
                                     f"{', '.join(artifact.int8_weight_ops) or 'none'}"))
        if artifact.mixed is not None and artifact.mixed.int4_cost is not None:
            rows.append(("int4 against int8", artifact.mixed.int4_cost.summary))
    if artifact.mixed is not None:
        rows.append(("float layers", artifact.mixed.summary))
        for step in artifact.mixed.control.trace if artifact.mixed.control else []:
            rung = f" to {step.precision}" if step.kept_float and step.precision != "float" else ""
            rows.append(("  trace", f"+{', '.join(step.kept_float) or '(none)'}{rung}: drop {step.drop:.2f}"))
    console().print(key_value_table(f"Converted {artifact.source}", rows))


def _run(model, output, calibration, x_key, y_key, trust_code, trust_model, as_json, val=None, preprocess=None,
         **values):
    from edgepack.steps.quantize import QuantizeConfig, quantize

    config = build_config(QuantizeConfig, model=model, output=output, trust_model=trust_model,
                          calibration=data_spec(calibration, x_key, y_key, trust_code, preprocess),
                          val=data_spec(val, x_key, y_key, trust_code, preprocess), **given(values))
    emit(quantize(config, say=lambda message: click.echo(message, err=True)), as_json, _render)


@click.command("quantize")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="The .tflite file to write.")
@click.option("--calibration", metavar="DATA", help="Representative data for int8 and int16x8.")
@click.option("--val", metavar="DATA", help="Labelled data that accuracy control (--max-drop) measures the drop on.")
@click.option("--metric", type=click.Choice([m.value for m in Metric]), help="Metric of accuracy control.  "
              "[default: accuracy]")
@params_options(QuantizeParams)
@data_key_options
@preprocess_option
@trust_model_option
@json_option
def quantize_command(model, output, calibration, val, x_key, y_key, trust_code, preprocess, trust_model, as_json,
                     **values):
    """Convert MODEL (.keras, .h5, SavedModel) to a .tflite, quantized as --mode says.

    With --mode int8, --float-ops REGEX keeps matching layers in float, and --val DATA --max-drop X
    keeps the most harmful layers in float until the drop holds (exit 7, with the best model written
    as OUT.failed.tflite, when it cannot)."""
    _run(model, output, calibration, x_key, y_key, trust_code, trust_model, as_json, val=val, preprocess=preprocess,
         **values)


@click.command("convert")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="The .tflite file to write.")
@params_options(QuantizeParams, exclude=("mode", "io", "samples", "seed", "float_ops", "max_drop", "max_float_ops",
                                          "ranking_samples", "promote", "weights", "int4_ops", "block_size"))
@trust_model_option
@json_option
def convert_command(model, output, trust_model, as_json, **values):
    """Convert MODEL to a float32 .tflite (same as quantize --mode float32)."""
    _run(model, output, None, "x", "y", False, trust_model, as_json, mode="float32", **values)


COMMANDS = [quantize_command, convert_command]
