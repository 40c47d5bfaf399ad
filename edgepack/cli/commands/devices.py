"""``edgepack devices list`` and ``edgepack devices show``."""

from __future__ import annotations

import click

from edgepack.cli.options import json_option
from edgepack.cli.output import console, emit, key_value_table


def _render_list(rows: list[dict]) -> None:
    from rich.table import Table

    from rich import box

    table = Table(title="device profiles (edgepack devices show NAME for details)", title_justify="left",
                  box=box.SIMPLE, pad_edge=False)
    table.add_column("name", no_wrap=True)
    for column in ("arch", "accelerator", "runtime", "threads"):
        table.add_column(column, no_wrap=True)
    table.add_column("modes", min_width=12)
    for row in rows:
        table.add_row(row["name"], row["arch"], row["accelerator"], row["runtime"], str(row["threads"]),
                      " ".join(row["modes"]) + ("" if row["estimate"] else "  (no estimate figures)"))
    console().print(table)


def _render_show(document: dict) -> None:
    rows = [(key, value) for key, value in document.items() if key not in ("estimate", "connection")]
    connection = document.get("connection")
    if connection:
        rows.append(("connection", f"{connection['ssh']} port {connection['port']} python {connection['python']}"))
    estimate = document.get("estimate")
    if estimate:
        gmacs = ", ".join(f"{k} {v:g}" for k, v in estimate["gmacs"].items() if v)
        rows += [("estimate GMAC/s", f"{gmacs} (at {estimate['threads']} thread(s))"),
                 ("estimate source", estimate["source"])]
        if estimate.get("onchip_cache_mib") is not None:
            rows.append(("estimate parameter cache", f"{estimate['onchip_cache_mib']:g} MiB on chip; the rest streams "
                                                     f"at {estimate['link_bandwidth_mbs']:g} MB/s"))
        rows += [("anchor", f"{a['model']} {a['mode']} {a['ms']:g} ms ({a['source']})") for a in estimate["anchors"]]
    console().print(key_value_table(f"device {document['name']}", rows))


@click.group("devices")
def devices_group() -> None:
    """The device profiles in devices/ (or given by path)."""


@devices_group.command("list")
@click.argument("paths", nargs=-1, metavar="[PATH.yaml]...")
@json_option
def list_command(paths, as_json):
    """List the shipped device profiles, plus any profile files given."""
    from edgepack.devices import list_devices

    emit([device.summary() for device in list_devices(list(paths))], as_json, _render_list)


@devices_group.command("show")
@click.argument("name")
@json_option
def show_command(name, as_json):
    """Show one device profile: NAME from devices/, or a path."""
    from edgepack.devices import load_device

    emit(load_device(name).model_dump(mode="json"), as_json, _render_show)


COMMANDS = [devices_group]
