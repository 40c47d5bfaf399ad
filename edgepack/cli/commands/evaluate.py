"""``edgepack evaluate``."""

from __future__ import annotations

from pathlib import Path

import click

from edgepack.cli.options import (build_config, data_key_options, data_spec, json_option, preprocess_option,
                                  trust_model_option)
from edgepack.cli.output import console, emit, key_value_table
from edgepack.cli.params import given, params_options
from edgepack.evaluation.metrics import Metric
from edgepack.evaluation.params import EvaluateParams


def _fmt(metric, value: float) -> str:
    return f"{value * 100:.2f}%" if metric.higher_is_better else f"{value:.6g}"


def _preprocess_text(preprocess) -> str:
    parts = [f"family {preprocess.family}"] if preprocess.family else []
    parts += ["BGR"] if preprocess.bgr else []
    if (preprocess.scale, preprocess.offset) != (1, 0):
        parts.append(f"x*{preprocess.scale:.6g}{preprocess.offset:+.6g}")
    parts += [f"mean {preprocess.mean}"] if preprocess.mean else []
    parts += [f"std {preprocess.std}"] if preprocess.std else []
    return ", ".join(parts) or "none"


def _render(result) -> None:
    rows = [("data", f"{result.data} ({result.samples} samples)" + (f", output {result.output}" if result.output else "")),
            ("tflite", f"{_fmt(result.metric, result.tflite.value)}  {result.tflite.model}"),
            ("runtime", f"{result.runtime.name} {result.runtime.version}, batch {result.batch_size}")]
    if result.preprocess is not None:
        rows.insert(1, ("preprocess", _preprocess_text(result.preprocess)))
    if result.reference is not None:
        rows.append(("reference", f"{_fmt(result.metric, result.reference.value)}  {result.reference.model}"))
        unit = "%" if result.relative else f" {result.drop_unit}"
        rows.append(("drop", f"{result.drop:.3f}{unit}"))
    if result.passed is not None:
        rows.append(("gate", f"{'PASS' if result.passed else 'FAIL'} (max drop {result.max_drop})"))
    console().print(key_value_table(f"{result.metric.value}", rows))


@click.command("evaluate")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--data", "data", metavar="DATA", required=True,
              help="Validation data (.npz, .npy, image folder, module:function).")
@click.option("--reference", type=click.Path(path_type=Path), help="The Keras model to compare against.")
@click.option("--metric", type=click.Choice([m.value for m in Metric]), help="The metric computed.  [default: accuracy]")
@click.option("--max-drop", type=float, help="Fail (exit 7) when reference minus tflite exceeds this.")
@click.option("--relative", is_flag=True, help="--max-drop is a percentage of the reference value.")
@click.option("--output", "output_name", metavar="NAME", help="The output the metric is computed on, by name (needed "
              "when the model has several; targets from the .npz array y_NAME if present, else --y-key).")
@params_options(EvaluateParams)
@data_key_options
@preprocess_option
@trust_model_option
@json_option
def evaluate_command(model, data, reference, metric, max_drop, relative, batch_size, threads, output_name, x_key,
                     y_key, trust_code, preprocess, trust_model, as_json):
    """Run MODEL (.tflite) on DATA with the LiteRT interpreter, a batch at a time; compare with --reference.
    A model with several inputs reads an .npz with one array per input name."""
    from edgepack.evaluation.evaluate import EvaluateConfig, evaluate

    config = build_config(EvaluateConfig, model=model, data=data_spec(data, x_key, y_key, trust_code, preprocess),
                          reference=reference, max_drop=max_drop, relative=relative, trust_model=trust_model,
                          output=output_name, **given({"metric": metric, "batch_size": batch_size, "threads": threads}))
    result = evaluate(config)
    emit(result, as_json, _render)
    result.raise_for_gate()


COMMANDS = [evaluate_command]
