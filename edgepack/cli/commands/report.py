"""``edgepack report BUNDLE...``: several bundles compared on one page (and as JSON or Markdown)."""

from __future__ import annotations

from pathlib import Path

import click

from edgepack.cli.options import json_option
from edgepack.cli.output import console, emit


def _render(document) -> None:
    from rich.table import Table

    from edgepack.report.compare import table_rows, verdict_line

    header, rows = table_rows(document)
    out = console()
    table = Table(*header, title=verdict_line(document), title_justify="left")
    for row in rows:
        table.add_row(*row)
    out.print(table)
    out.print(f"comparison page: {document.page}")


@click.command("report")
@click.argument("bundles", nargs=-1, required=True, metavar="BUNDLE...", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), metavar="PAGE.html",
              help="The comparison page to write (default: report-compare.html in the current folder).")
@click.option("--markdown", "as_markdown", is_flag=True,
              help="Print the comparison as a Markdown table (the page is still written).")
@json_option
def report_command(bundles, output, as_markdown, as_json):
    """Compare bundles written by 'edgepack run' (e.g. dist/*): device, accuracy, drop, latency p50/p90,
    gzip size and gates of each, with their latency and size charts side by side on one HTML page."""
    from edgepack.errors import ConfigError
    from edgepack.report.compare import comparison_markdown, write_comparison

    if as_json and as_markdown:
        raise ConfigError("--json and --markdown cannot be used together", hint="choose one of them")
    document = write_comparison(list(bundles), output)
    if as_markdown:
        click.echo(comparison_markdown(document), nl=False)
        click.echo(f"comparison page: {document.page}", err=True)
        return
    emit(document, as_json, _render)


COMMANDS = [report_command]
