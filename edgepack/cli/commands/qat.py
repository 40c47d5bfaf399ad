"""``edgepack qat``: options generated from the step's params (edgepack.steps.qat)."""

from __future__ import annotations

from pathlib import Path

import click

from edgepack.cli.options import build_config, data_key_options, data_spec, json_option, trust_model_option
from edgepack.cli.output import console, emit, human_bytes, key_value_table
from edgepack.cli.params import given, params_options
from edgepack.steps.qat import QatParams


def _render(artifact) -> None:
    rows = [("output", f"{artifact.path} (int8, io {artifact.io.value}, {human_bytes(artifact.size_bytes)})"),
            ("preserved", artifact.preserve),
            ("training", f"{artifact.steps} steps, {artifact.train_samples} samples, {artifact.seconds:.1f} s"),
            ("sha256", artifact.sha256), ("config", artifact.config_path)]
    if artifact.metrics:
        rows.append(("val accuracy", f"{artifact.metrics['tflite'] * 100:.2f}% ({artifact.metrics['samples']} samples)"))
    if artifact.batchnorm is not None and artifact.batchnorm.layers:
        from edgepack.cli.commands._compress import batchnorm_row

        rows.append(("batchnorm", batchnorm_row(artifact.batchnorm)))
    console().print(key_value_table(f"Quantization-aware training of {artifact.source}", rows))


@click.command("qat")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--data", metavar="DATA", required=True, help="Training data for fine-tuning.")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="The int8 .tflite to write.")
@click.option("--val", metavar="DATA", help="Validation data: accuracy of the .tflite.")
@params_options(QatParams)
@data_key_options
@trust_model_option
@json_option
def qat_command(model, data, output, val, x_key, y_key, trust_code, trust_model, as_json, **values):
    """Quantization-aware training of MODEL on DATA (sparsity- and cluster-preserving where the
    model is pruned or clustered), written as a full-int8 .tflite."""
    from edgepack.compress.progress import StderrProgress
    from edgepack.steps.qat import QatConfig, qat

    config = build_config(QatConfig, model=model, data=data_spec(data, x_key, y_key, trust_code), output=output,
                          val=data_spec(val, x_key, y_key, trust_code), trust_model=trust_model, **given(values))
    emit(qat(config, progress=StderrProgress()), as_json, _render)


COMMANDS = [qat_command]
