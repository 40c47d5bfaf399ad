"""What ``prune`` and ``cluster`` share on the command line: options, the run, the rendering."""

from __future__ import annotations

from pathlib import Path

import click

from edgepack.cli.options import build_config, data_key_options, data_spec, json_option, trust_model_option
from edgepack.cli.output import console, emit, human_bytes, key_value_table
from edgepack.cli.params import given, params_options


def compress_options(params_cls):
    """The options of a fine-tuning command: its inputs and outputs, then one per field of ``params_cls``."""

    def decorate(func):
        func = params_options(params_cls)(json_option(trust_model_option(data_key_options(func))))
        for option in reversed([
            click.argument("model", type=click.Path(path_type=Path)),
            click.option("--data", metavar="DATA", required=True,
                         help="Training data for fine-tuning (.npz, image folder, module:function)."),
            click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
                         help="The model to write: .keras (or .h5), same Keras flavor as MODEL."),
            click.option("--val", metavar="DATA", help="Validation data: metric before and after."),
            click.option("--output-name", metavar="NAME", help="The model output the targets are for (needed when "
                         "the model has several; the others are kept close to the model's own predictions)."),
        ]):
            func = option(func)
        return func

    return decorate


def run_step(config_cls, step, *, as_json: bool, x_key: str, y_key: str, trust_code: bool, data, val,
             output_name: str | None = None, **values):
    """Build the config (exit 2 on bad values), run ``step`` with a progress display on stderr, emit."""
    from edgepack.compress.progress import StderrProgress

    def spec(source):
        found = data_spec(source, x_key, y_key, trust_code)
        return found if found is None else found.model_copy(update={"output": output_name})

    config = build_config(config_cls, data=spec(data), val=spec(val), **given(values))
    emit(step(config, progress=StderrProgress()), as_json, _render)


def _percent(value) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def batchnorm_row(report) -> str:
    """The BatchNorm re-estimation in one table cell."""
    shown = _percent if report.metric == "accuracy" else (lambda v: f"{v:.6g}")
    text = (f"moving statistics of {report.layers} layer(s) re-estimated on {report.rows} training rows; "
            f"{report.metric} on {report.scored_on} {shown(report.before)} -> {shown(report.after)}")
    if report.inference_only:
        text += f"; {report.inference_only} layer(s) the model runs in inference mode left as they were"
    return text


def _render(artifact) -> None:
    from rich.table import Table

    flag = "pruned" if artifact.step == "prune" else "clustered"
    rows = [("output", f"{artifact.path} ({artifact.flavor}, {human_bytes(artifact.size_bytes)})"),
            ("loss", artifact.loss.describe()),
            ("training", f"{artifact.epochs} epoch(s), {artifact.steps} steps, {artifact.train_samples} samples, "
                         f"{artifact.seconds:.1f} s, {artifact.replicas} replica(s) ({artifact.distribute.value})")]
    if artifact.output:
        rows.append(("outputs", f"labels on {artifact.output}; {', '.join(artifact.self_distilled)} kept close to "
                                f"the source model's predictions (mean squared error)"))
    unsupported = [name for name, reason in artifact.skipped.items() if reason.startswith("unsupported:")]
    if unsupported:
        shown = ", ".join(unsupported[:6]) + (", ..." if len(unsupported) > 6 else "")
        rows.append(("left dense", f"{len(unsupported)} layer(s) tfmot cannot {artifact.step}: {shown}"))
    if artifact.metrics:
        m = artifact.metrics
        shown = _percent if m["metric"] == "accuracy" else (lambda v: f"{v:.6g}")
        rows.append((f"val {m['metric']}", f"{shown(m['before'])} -> {shown(m['after'])} ({m['samples']} samples)"))
    if artifact.batchnorm is not None and artifact.batchnorm.layers:
        rows.append(("batchnorm", batchnorm_row(artifact.batchnorm)))
    channels = getattr(artifact, "channels", None)
    if channels is not None:
        rows += channel_rows(channels)
    rows.append(("config", artifact.config_path))
    out = console()
    out.print(key_value_table(f"{artifact.step.capitalize()}d {artifact.source}", rows))
    if channels is not None:
        out.print(channel_table(channels))
        return
    table = Table("layer", "class", "weights", "sparsity", "distinct", flag, "note", title_justify="left")
    for layer in artifact.layers:
        table.add_row(layer["name"], layer["class"], str(layer["weights"] or "-"), _percent(layer["sparsity"]),
                      str(layer["distinct_values"] or "-"), "yes" if layer[flag] else "no", layer["note"] or "")
    out.print(table)


def _change(before: int, after: int) -> str:
    return f"{before:,} -> {after:,}" + (f" ({after / before:.2f}x)" if before else "")


def channel_rows(report) -> list[tuple[str, str]]:
    """What channel pruning removed, as table rows."""
    rows = [("channels", f"{_change(report.channels_before, report.channels_after)} in {len(report.groups)} "
                         f"group(s); {report.budget}; allocate {report.allocate.value}, criterion "
                         f"{report.criterion.value}, round to {report.round_to}"),
            ("MACs", _change(report.macs_before, report.macs_after)),
            ("params", _change(report.params_before, report.params_after))]
    if report.latency is not None:
        lat = report.latency
        rows.append(("latency", f"{lat.before_ms:.3g} -> {lat.after_ms:.3g} ms ({lat.label})"))
    for group in report.fenced:
        rows.append(("kept whole", f"{', '.join(group.layers[:3])} ({group.width}): {group.reasons[0]}"))
    rows += [("note", note) for note in report.notes]
    return rows


def channel_table(report):
    """Per weighted layer: channels, params and MACs before -> after."""
    from rich.table import Table

    table = Table("layer", "class", "channels", "params", "MACs", title_justify="left")
    for layer in report.layers:
        table.add_row(layer.name, layer.kind, f"{layer.channels_before} -> {layer.channels_after}",
                      f"{layer.params_before:,} -> {layer.params_after:,}", f"{layer.macs_before:,} -> {layer.macs_after:,}")
    return table
