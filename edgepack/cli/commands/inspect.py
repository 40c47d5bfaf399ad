"""``edgepack inspect``."""

from __future__ import annotations

from pathlib import Path

import click

from edgepack.cli.options import json_option, trust_model_option
from edgepack.cli.output import console, emit, human_bytes, key_value_table


def _macs(report) -> str:
    if report.macs is None:
        return "- (not counted for a plain SavedModel)"
    return f"{report.macs:,}" + (f" ({report.macs_note})" if report.macs_note else "")


def _render_keras(report) -> None:
    from rich.table import Table

    out = console()
    out.print(key_value_table(f"{report.path} ({report.flavor}, {report.format})", [
        ("inputs", report.inputs), ("outputs", report.outputs),
        ("parameters", f"{report.params:,}"),
        ("MACs", _macs(report)),
        ("float32 size", human_bytes(report.float32_size_bytes)),
        *[(f"signature {name}", f"{sig.inputs} -> {sig.outputs}") for name, sig in (report.signatures or {}).items()],
    ]))
    table = Table("layer", "class", "output", "params", "MACs", "sparsity", "distinct", title_justify="left")
    for layer in report.layers:
        sparsity = "-" if layer.sparsity is None else f"{layer.sparsity:.1%}"
        distinct = "-" if layer.distinct_values is None else f"{layer.distinct_values:,}"
        table.add_row(layer.name, layer.class_name, str(layer.output_shape), f"{layer.params:,}",
                      f"{layer.macs:,}" + (" per step" if layer.macs_per_time_step else ""), sparsity, distinct)
    out.print(table)


def _device_rows(figures) -> list[tuple[str, str]]:
    """What the device pays: flash, RAM, MACs and the estimate on ``--device``."""
    if figures is None:
        return []
    rows = [("flash", f"{human_bytes(figures.flash_bytes)} (the .tflite the device stores)"),
            ("RAM", f"{human_bytes(figures.arena_bytes)} tensor arena" if figures.arena_bytes is not None
             else "; ".join(figures.notes)),
            ("MACs", f"{figures.macs:,}")]
    if figures.latency_estimated_ms is not None:
        rows.append(("latency", f"{figures.latency_estimated_ms:.3g} ms estimated for {figures.latency_device}"))
    return rows


def _sparse_row(sparse) -> list[tuple[str, str]]:
    if sparse is None:
        return []
    if sparse.ready:
        return [("XNNPACK sparse", f"yes: its sparse float kernels run the 1x1 convolutions "
                                   f"({sparse.zero_fraction:.0%} zeros)")]
    return [("XNNPACK sparse", f"no: {sparse.failed} fails ({sparse.failed_detail()})")]


def _fix_summary(report) -> list[tuple[str, str]]:
    """One row counting the fallbacks when no device chose an accelerator to list them for."""
    fixes = report.fixes
    if report.accelerator in ("edgetpu", "gpu") or not fixes:
        return []
    edgetpu = sum(fix.target == "edgetpu" for fix in fixes)
    return [("fix-it", f"{edgetpu} operator(s) the Edge TPU would not map, {len(fixes) - edgetpu} the GPU delegate "
                       f"would leave on the CPU; --device coral-usb (or a GPU device) lists them with the fix")]


def _print_fixes(out, report) -> None:
    from rich.table import Table

    target = report.accelerator
    fixes = [fix for fix in report.fixes if fix.target == target]
    if not fixes:
        return
    table = Table("operator", "Keras layer", "why", "what to change", title_justify="left",
                  title=f"fix-it: operators that fall back from the {'Edge TPU' if target == 'edgetpu' else 'GPU'}")
    for fix in fixes:
        table.add_row(f"{fix.index} {fix.op}", fix.layer or "-", fix.reason, fix.fix)
    out.print(table)


def _render_tflite(report) -> None:
    from rich.table import Table

    out = console()
    edgetpu = report.edgetpu
    out.print(key_value_table(f"{report.path} (tflite)", [
        ("size", f"{human_bytes(report.size_bytes)} (gzip {human_bytes(report.gzip_size_bytes)})"),
        ("quantization", report.quantization), ("full integer", report.full_integer),
        ("operators", ", ".join(f"{k} x{v}" for k, v in (report.operators or {}).items())),
        ("tensor dtypes", ", ".join(f"{k} x{v}" for k, v in report.tensor_dtypes.items())),
        ("Edge TPU", "ready" if edgetpu.ready else "not ready: " + "; ".join(edgetpu.reasons[:2])),
        *_device_rows(report.device_figures),
        *_sparse_row(report.xnnpack_sparse),
        *_fix_summary(report),
    ]))
    _print_fixes(out, report)
    table = Table("io", "name", "shape", "dtype", "scale", "zero point", title_justify="left")
    for kind, details in (("input", report.inputs), ("output", report.outputs)):
        for detail in details:
            table.add_row(kind, detail.name, str(detail.shape_signature), detail.dtype,
                          "-" if detail.scale is None else f"{detail.scale:.6g}",
                          "-" if detail.zero_point is None else str(detail.zero_point))
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
    emit(report, as_json, _render_tflite if report.kind == "tflite" else _render_keras)


COMMANDS = [inspect_command]
