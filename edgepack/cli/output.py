"""Printing results: one JSON document with --json, otherwise a readable table."""

from __future__ import annotations

import json
from typing import Any, Callable

import click


def to_jsonable(payload: Any) -> Any:
    if hasattr(payload, "model_dump"):
        return payload.model_dump(mode="json")
    return payload


def emit(payload: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    """Print ``payload`` as JSON (stdout holds nothing else) or through ``render``."""
    if as_json:
        click.echo(json.dumps(to_jsonable(payload), indent=2, default=str))
    else:
        render(payload)


PIPE_WIDTH = 1000


def console():
    """A rich console on stdout (imported late: rich costs start-up time). In a pipe or a file the
    width is unbounded, so tables keep their natural width and never cut a number short."""
    import sys

    from rich.console import Console

    terminal = sys.stdout.isatty()
    return Console(highlight=False, soft_wrap=False, width=None if terminal else PIPE_WIDTH)


def key_value_table(title: str, rows: list[tuple[str, Any]]):
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left", box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(key, "" if value is None else str(value))
    return table


def human_bytes(size: int | None) -> str:
    if size is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)
