"""``edgepack explore``."""

from __future__ import annotations

from pathlib import Path

import click

from edgepack.cli.options import json_option
from edgepack.cli.output import console, emit, key_value_table


def _render(result) -> None:
    rows = [("model", result.model), ("graph", result.graph_id),
            *[(f"{name} overlay", path) for name, path in result.files.items()],
            ("open with", result.command)]
    rows += [(f"{f.target} fallback", f"operator {f.index} {f.op}" + (f" (layer {f.layer})" if f.layer else "")
              + f": {f.reason} — {f.fix}") for f in result.fallbacks]
    console().print(key_value_table("Model Explorer node data", rows))


@click.command("explore")
@click.argument("model", type=click.Path(path_type=Path), required=False)
@click.option("--bundle", type=click.Path(path_type=Path), help="A bundle folder: its model.tflite, and its "
              "device for the time per operator.")
@click.option("--device", metavar="NAME|PATH", help="A device profile: adds the estimated time per operator.")
@click.option("--sensitivity", type=click.Path(path_type=Path), metavar="FILE",
              help="The JSON of 'edgepack sensitivity --json': adds each operator's layer's int8 error (a bundle's "
                   "own sensitivity and accuracy-control results are used without it).")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Folder for the node-data files (default: MODEL's name + .explorer/ beside it).")
@click.option("--open", "open_", is_flag=True, help="Start Model Explorer here with the model and the overlays "
              "(needs pip install 'edgepack[explore]'); Ctrl-C stops it.")
@json_option
def explore_command(model: Path | None, bundle: Path | None, device: str | None, sensitivity: Path | None,
                    output: Path | None, open_: bool, as_json: bool):
    """Write Model Explorer node-data files for a .tflite: precision, Edge TPU / GPU placement, time per op."""
    from edgepack.api import explore, open_in_model_explorer

    result = explore(model, bundle=bundle, device=device, output=output, sensitivity=sensitivity)
    emit(result, as_json, _render)
    if open_:
        open_in_model_explorer(result)


COMMANDS = [explore_command]
