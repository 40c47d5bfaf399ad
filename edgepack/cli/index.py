"""Which module holds each command, read from the command modules' source without importing them.

``edgepack --help`` lists every command with its one-line help; importing the command modules for
that would import every step, engine and numpy (about 0.4 s). Instead each module in
``edgepack.cli.commands`` is parsed (``ast``) for functions decorated ``@click.command("NAME")`` or
``@click.group("NAME")`` (a group's own subcommands load with it), and the first line of their docstrings; a command's module is imported
when the command runs or shows its own help. A new command is still one new module.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

COMMANDS_PACKAGE = "edgepack.cli.commands"
COMMANDS_FOLDER = Path(__file__).resolve().parent / "commands"


@dataclass(frozen=True)
class Entry:
    """One command: its name, the module that defines it, and its one-line help."""

    name: str
    module: str
    short_help: str


def _decorated_name(node: ast.FunctionDef) -> str | None:
    for decorator in node.decorator_list:
        if (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)
                and isinstance(decorator.func.value, ast.Name) and decorator.func.value.id == "click"
                and decorator.func.attr in ("command", "group") and decorator.args
                and isinstance(decorator.args[0], ast.Constant) and isinstance(decorator.args[0].value, str)):
            return decorator.args[0].value
    return None


def command_index() -> dict[str, Entry]:
    """Every command by name, in name order."""
    found: dict[str, Entry] = {}
    for path in sorted(COMMANDS_FOLDER.glob("*.py")):
        if path.name.startswith("_"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and (name := _decorated_name(node)):
                doc = (ast.get_docstring(node) or "").strip()
                found[name] = Entry(name, f"{COMMANDS_PACKAGE}.{path.stem}", doc.split("\n\n")[0].replace("\n", " "))
    return dict(sorted(found.items()))
