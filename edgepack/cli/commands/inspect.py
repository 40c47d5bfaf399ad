"""``edgepack inspect``."""

from __future__ import annotations

from pathlib import Path

import click

from edgepack.cli.options import json_option, trust_model_option
from edgepack.cli.output import console, emit, human_bytes, key_value_table


def _macs(report: dict) -> str:
    if "macs" not in report:
        return "- (not counted for a plain SavedModel)"
    return f"{report['macs']:,}" + (f" ({report['macs_note']})" if report.get("macs_note") else "")


def _render_keras(report: dict) -> None:
    from rich.table import Table

    out = console()
    out.print(key_value_table(f"{report['path']} ({report['flavor']}, {report['format']})", [
        ("inputs", report.get("inputs")), ("outputs", report.get("outputs")),
        ("parameters", f"{report.get('params', 0):,}"),
        ("MACs", _macs(report)),
        ("float32 size", human_bytes(report.get("float32_size_bytes"))),
        *[(f"signature {name}", f"{sig['inputs']} -> {sig['outputs']}")
          for name, sig in (report.get("signatures") or {}).items()],
    ]))
    table = Table("layer", "class", "output", "params", "MACs", "sparsity", "distinct", title_justify="left")
    for layer in report["layers"]:
        sparsity = "-" if layer["sparsity"] is None else f"{layer['sparsity']:.1%}"
        distinct = "-" if layer["distinct_values"] is None else f"{layer['distinct_values']:,}"
        table.add_row(layer["name"], layer["class"], str(layer["output_shape"]), f"{layer['params']:,}",
                      f"{layer['macs']:,}" + (" per step" if layer.get("macs_per_time_step") else ""),
                      sparsity, distinct)
    out.print(table)


def _device_rows(figures: dict | None) -> list[tuple[str, str]]:
    """What the device pays: flash, RAM, MACs and the estimate on ``--device``."""
    if not figures:
        return []
    rows = [("flash", f"{human_bytes(figures['flash_bytes'])} (the .tflite the device stores)"),
            ("RAM", f"{human_bytes(figures['arena_bytes'])} tensor arena" if figures["arena_bytes"] is not None
             else "; ".join(figures["notes"])),
            ("MACs", f"{figures['macs']:,}")]
    if figures.get("latency_estimated_ms") is not None:
        rows.append(("latency", f"{figures['latency_estimated_ms']:.3g} ms estimated for {figures['latency_device']}"))
    return rows


def _sparse_row(sparse: dict | None) -> list[tuple[str, str]]:
    if not sparse:
        return []
    if sparse["ready"]:
        return [("XNNPACK sparse", f"yes: its sparse float kernels run the 1x1 convolutions "
                                   f"({sparse['zero_fraction']:.0%} zeros)")]
    detail = next(row["detail"] for row in sparse["conditions"] if row["condition"] == sparse["failed"])
    return [("XNNPACK sparse", f"no: {sparse['failed']} fails ({detail})")]


def _fix_summary(report: dict) -> list[tuple[str, str]]:
    """One row counting the fallbacks when no device chose an accelerator to list them for."""
    fixes = report.get("fixes") or []
    if report.get("accelerator") in ("edgetpu", "gpu") or not fixes:
        return []
    edgetpu = sum(fix["target"] == "edgetpu" for fix in fixes)
    return [("fix-it", f"{edgetpu} operator(s) the Edge TPU would not map, {len(fixes) - edgetpu} the GPU delegate "
                       f"would leave on the CPU; --device coral-usb (or a GPU device) lists them with the fix")]


def _print_fixes(out, report: dict) -> None:
    from rich.table import Table

    target = report.get("accelerator")
    fixes = [fix for fix in report.get("fixes") or [] if fix["target"] == target]
    if not fixes:
        return
    table = Table("operator", "Keras layer", "why", "what to change", title_justify="left",
                  title=f"fix-it: operators that fall back from the {'Edge TPU' if target == 'edgetpu' else 'GPU'}")
    for fix in fixes:
        table.add_row(f"{fix['index']} {fix['op']}", fix.get("layer") or "-", fix["reason"], fix["fix"])
    out.print(table)


def _render_tflite(report: dict) -> None:
    from rich.table import Table

    out = console()
    edgetpu = report.get("edgetpu") or {}
    out.print(key_value_table(f"{report['path']} (tflite)", [
        ("size", f"{human_bytes(report['size_bytes'])} (gzip {human_bytes(report['gzip_size_bytes'])})"),
        ("quantization", report.get("quantization")), ("full integer", report.get("full_integer")),
        ("operators", ", ".join(f"{k} x{v}" for k, v in (report.get("operators") or {}).items())),
        ("tensor dtypes", ", ".join(f"{k} x{v}" for k, v in (report.get("tensor_dtypes") or {}).items())),
        ("Edge TPU", ("ready" if edgetpu.get("ready") else "not ready: " + "; ".join(edgetpu.get("reasons", [])[:2]))
         if edgetpu else "-"),
        *_device_rows(report.get("device_figures")),
        *_sparse_row(report.get("xnnpack_sparse")),
        *_fix_summary(report),
    ]))
    _print_fixes(out, report)
    table = Table("io", "name", "shape", "dtype", "scale", "zero point", title_justify="left")
    for kind in ("inputs", "outputs"):
        for detail in report.get(kind, []):
            table.add_row(kind[:-1], detail["name"], str(detail["shape_signature"]), detail["dtype"],
                          "-" if detail["scale"] is None else f"{detail['scale']:.6g}",
                          "-" if detail["zero_point"] is None else str(detail["zero_point"]))
    out.print(table)


@click.command("inspect")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--device", metavar="NAME|PATH",
              help="A device profile (name or .yaml): a .tflite's latency is estimated on it, beside flash, RAM "
                   "and MACs.")
@trust_model_option
@json_option
def inspect_command(model: Path, device: str | None, trust_model: bool, as_json: bool):
    """Describe MODEL: a Keras model (layers, MACs, sparsity) or a .tflite (ops, dtypes, I/O, and what the
    device pays: flash, RAM, MACs)."""
    from edgepack.api import inspect

    report = inspect(model, trust_model=trust_model, device=device)
    emit(report, as_json, _render_tflite if report["kind"] == "tflite" else _render_keras)


COMMANDS = [inspect_command]
