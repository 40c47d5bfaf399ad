"""``edgepack quantize`` and ``edgepack convert``."""

from __future__ import annotations

from pathlib import Path

import click

from edgepack.cli.options import build_config, data_key_options, data_spec, json_option, trust_model_option
from edgepack.cli.output import console, emit, human_bytes, key_value_table
from edgepack.modes import IOType, QuantMode

MODES = [mode.value for mode in QuantMode]
IO_TYPES = [io.value for io in IOType]


def _render(artifact) -> None:
    rows = [("output", artifact.path), ("mode", artifact.mode.value), ("size", human_bytes(artifact.size_bytes)),
            ("sha256", artifact.sha256), ("config", artifact.config_path)]
    if artifact.mode.value == "int8":
        rows.insert(2, ("io", artifact.io.value))
    if artifact.calibration_samples:
        rows.append(("calibration samples", artifact.calibration_samples))
    console().print(key_value_table(f"Converted {artifact.source}", rows))


def _run(model, output, mode, io, calibration, samples, x_key, y_key, trust_code, trust_model, as_json,
         static_batch=False):
    from edgepack.steps.quantize import QuantizeConfig, quantize

    config = build_config(QuantizeConfig, model=model, output=output, mode=mode, io=io, samples=samples,
                          calibration=data_spec(calibration, x_key, y_key, trust_code), trust_model=trust_model,
                          static_batch=static_batch)
    emit(quantize(config), as_json, _render)


@click.command("quantize")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="The .tflite file to write.")
@click.option("--mode", type=click.Choice(MODES), default="float32", show_default=True, help="Conversion mode.")
@click.option("--io", type=click.Choice(IO_TYPES), default="float32", show_default=True,
              help="Input/output type of an int8 model.")
@click.option("--calibration", metavar="DATA", help="Representative data for int8 and int16x8.")
@click.option("--samples", type=int, default=200, show_default=True, help="Calibration samples drawn from DATA.")
@click.option("--static-batch", is_flag=True,
              help="Fix the batch size at 1 so every shape is static (the Edge TPU needs this).")
@data_key_options
@trust_model_option
@json_option
def quantize_command(model, output, mode, io, calibration, samples, static_batch, x_key, y_key, trust_code,
                     trust_model, as_json):
    """Convert MODEL (.keras, .h5, SavedModel) to a .tflite, quantized as --mode says."""
    _run(model, output, mode, io, calibration, samples, x_key, y_key, trust_code, trust_model, as_json,
         static_batch)


@click.command("convert")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="The .tflite file to write.")
@trust_model_option
@json_option
def convert_command(model, output, trust_model, as_json):
    """Convert MODEL to a float32 .tflite (same as quantize --mode float32)."""
    _run(model, output, "float32", "float32", None, 200, "x", "y", False, trust_model, as_json)


COMMANDS = [quantize_command, convert_command]
