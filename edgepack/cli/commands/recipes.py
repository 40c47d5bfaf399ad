"""``edgepack recipes list | show | validate``."""

from __future__ import annotations

import click
import yaml

from edgepack.cli.options import json_option
from edgepack.cli.output import console, emit, key_value_table


@click.group("recipes")
def recipes_group():
    """The recipes shipped in recipes/, and checking your own."""


@recipes_group.command("list")
@json_option
def list_command(as_json):
    """List the shipped recipes."""
    from rich.table import Table

    from edgepack.recipes.catalog import list_recipes

    def render(rows):
        table = Table("name", "device", "steps", "description", title_justify="left")
        for row in rows:
            table.add_row(row["name"], str(row["device"]), " → ".join(row["steps"]), row["description"])
        console().print(table)

    emit(list_recipes(), as_json, render)


@recipes_group.command("show")
@click.argument("name")
@json_option
def show_command(name, as_json):
    """Show recipe NAME (or a file) with every default filled in."""
    from edgepack.recipes.catalog import show_recipe

    emit(show_recipe(name), as_json, lambda data: click.echo(yaml.safe_dump(data, sort_keys=False)))


@recipes_group.command("validate")
@click.argument("file")
@click.option("--model", help="The model to check the recipe with (as run --model).")
@click.option("--train", help="Training data (as run --train).")
@click.option("--val", help="Validation data (as run --val).")
@json_option
def validate_command(file, model, train, val, as_json):
    """Check FILE or a shipped recipe's NAME (schema, device profile, input files) without running it."""
    from edgepack.recipes.catalog import validate_recipe

    def render(r):
        inputs = [(f"input {i['key']}", f"{i['path']}" + ("" if i["exists"] else " (not there yet: run where it is, "
                                                           "or give --model/--train/--val)")) for i in r["inputs"]]
        console().print(key_value_table(f"{r['recipe']}: valid", [
            ("name", r["name"]), ("device", r["device"]), ("steps", " → ".join(r["steps"])), *inputs,
            ("output", r["output"])]))

    emit(validate_recipe(file, model=model, train=train, val=val), as_json, render)


COMMANDS = [recipes_group]
