"""``edgepack run RECIPE`` and ``edgepack verify BUNDLE``."""

from __future__ import annotations

from pathlib import Path

import click

from edgepack.cli.options import build_config, json_option, trust_model_option
from edgepack.cli.output import console, emit, key_value_table


def _render_run(result) -> None:
    from edgepack.report.render import key_figures

    out = console()
    out.print(key_value_table(f"{result.name} → {result.bundle}", key_figures(result)))
    for gate in result.gates:
        value = "-" if gate.value is None else f"{gate.value:.3f}"
        note = f" ({gate.note})" if gate.note else ""
        out.print(f"  {'PASS' if gate.passed else 'FAIL'}  {gate.gate}: {value} (max {gate.threshold} {gate.unit}){note}")


def _stderr_progress(message: str) -> None:
    click.echo(message, err=True)


@click.command("run")
@click.argument("recipe")
@click.option("--model", type=click.Path(path_type=Path), help="Use this Keras model instead of the recipe's.")
@click.option("--train", metavar="DATA", help="Training/calibration data instead of the recipe's.")
@click.option("--val", metavar="DATA", help="Validation data instead of the recipe's.")
@click.option("--device", help="A device name from devices/ or a device profile path.")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="The bundle folder to write.")
@click.option("--estimate", is_flag=True, help="Estimate latency from the device profile instead of measuring.")
@click.option("--trust-code", is_flag=True, help="Allow data given as package.module:function.")
@trust_model_option
@json_option
def run_command(recipe, model, train, val, device, output, estimate, trust_code, trust_model, as_json):
    """Run RECIPE (a file, or a name from recipes/) end to end and write a checked bundle."""
    from edgepack.compress.progress import StderrProgress
    from edgepack.recipes.execute import RunOptions, run_recipe

    options = build_config(RunOptions, recipe=recipe, model=model, train=train, val=val, device=device,
                           output=output, estimate=estimate, trust_model=trust_model, trust_code=trust_code)
    result = run_recipe(options, progress=_stderr_progress, training_progress=StderrProgress())
    emit(result, as_json, _render_run)
    result.raise_for_gates()


@click.command("verify")
@click.argument("bundle", type=click.Path(path_type=Path))
@json_option
def verify_command(bundle, as_json):
    """Check BUNDLE's checksums and manifest."""
    from edgepack.bundle.checksums import verify_bundle
    from edgepack.errors import ModelError

    result = verify_bundle(bundle)
    emit(result, as_json, lambda r: console().print(
        f"{r.bundle}: {'OK' if r.ok else 'DAMAGED'} ({r.files} files checked)"))
    if not result.ok:
        raise ModelError(f"bundle {bundle} is damaged: {result.problems[0]}"
                         + (f" (and {len(result.problems) - 1} more)" if len(result.problems) > 1 else ""),
                         hint="rebuild it with 'edgepack run'")


COMMANDS = [run_command, verify_command]
