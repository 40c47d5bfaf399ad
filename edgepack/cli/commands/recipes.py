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
@json_option
def validate_command(file, as_json):
    """Check FILE (schema, device profile, input files) without running it."""
    from edgepack.recipes.catalog import validate_recipe

    emit(validate_recipe(file), as_json, lambda r: console().print(key_value_table(
        f"{r['recipe']}: valid", [("name", r["name"]), ("device", r["device"]), ("steps", " → ".join(r["steps"])),
                                  ("output", r["output"])])))


COMMANDS = [recipes_group]
