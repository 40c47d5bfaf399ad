"""``edgepack profile``."""

from __future__ import annotations

from pathlib import Path

import click

from edgepack.cli.options import build_config, data_key_options, data_spec, json_option
from edgepack.cli.output import console, emit, human_bytes, key_value_table
from edgepack.cli.params import given, params_options
from edgepack.latency.params import MeasureParams


def _ms(value) -> str:
    return "-" if value is None else f"{value:.3f} ms"


def _render(result) -> None:
    out = console()
    runtime = result.runtime
    version = f" {runtime.version}" if runtime.version else ""
    delegate = f", delegate {runtime.delegate}" if runtime.delegate else ""
    where = {"local": "this machine", "remote": f"{result.host} (over SSH)",
             "estimate": "ESTIMATE (no device measured)"}[result.where]
    lat = result.latency_ms
    rows = [("device", result.device or "-"), ("where", where),
            ("runtime", f"{runtime.name}{version}, {runtime.accelerator}{delegate}, "
                        f"{runtime.threads} thread(s)")]
    if result.estimated:
        rows += [("latency", f"{_ms(lat.p50)} (estimated)"), ("source", result.estimate_source)]
    else:
        rows += [("latency", f"mean {_ms(lat.mean)}  p50 {_ms(lat.p50)}  p90 {_ms(lat.p90)}  "
                             f"p99 {_ms(lat.p99)}"),
                 ("spread", f"min {_ms(lat.min)}  max {_ms(lat.max)}  std {_ms(lat.std)}  "
                            f"({lat.count} runs)"),
                 ("init", _ms(result.init_ms)), ("first inference", _ms(result.first_inference_ms)),
                 ("peak memory", "-" if result.peak_memory_mb is None else f"{result.peak_memory_mb:.1f} MB"),
                 ("inputs", result.inputs)]
    rows += [("size", f"{human_bytes(result.size_bytes)} (gzip {human_bytes(result.gzip_size_bytes)})")]
    rows += [("note", note) for note in result.notes]
    out.print(key_value_table(f"profile {result.model}", rows))
    if result.op_profile is not None:
        _render_ops(out, result.op_profile)


def _render_ops(out, op_profile) -> None:
    from rich.table import Table

    from edgepack.latency.op_profile import top_ops

    table = Table("#", "op", "dtype", "unit", "MACs", "ms", "%", "bound", title_justify="left",
                  title=f"costliest operators — {op_profile.label}")
    for row in top_ops(op_profile):
        table.add_row(str(row.index), row.op, row.dtype, row.unit, f"{row.macs:,}", f"{row.ms:.4f}",
                      f"{row.percent:.1f}", row.bound)
    out.print(table)


@click.command("profile")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--device", metavar="NAME|PATH", help="A device profile from devices/ or a .yaml path.")
@click.option("--runtime", type=click.Choice(["auto", "litert", "tflite-runtime", "tf.lite"]),
              help="Runtime to use (default: the device's, else auto).")
@click.option("--remote", is_flag=False, flag_value="@device", metavar="[USER@]HOST[:PORT]",
              help="Profile on the device over SSH (alone: the device profile's connection).")
@click.option("--python", "python", metavar="PATH", help="Python that runs the latency probe (here, or on the device).")
@click.option("--ssh-config", type=click.Path(path_type=Path, dir_okay=False), help="ssh config file (ssh -F).")
@click.option("--accept-new-host-key", is_flag=True, help="Trust the host key of a device seen for the first time.")
@click.option("--connect-timeout", "connect_timeout_s", type=int, help="SSH connect timeout in seconds.  [default: 10]")
@click.option("--remote-tmpdir", metavar="DIR",
              help="Where the temporary folder goes on the device (default $TMPDIR or /tmp).")
@click.option("--op-profile", is_flag=True, help="Time per operator (estimated and labelled so when not measurable).")
@click.option("--estimate", is_flag=True, help="No device at hand: estimate from the device profile's figures.")
@click.option("--data", metavar="DATA", help="Inputs from DATA instead of random ones.")
@click.option("--samples", type=int, help="Rows of DATA cycled through.  [default: 16]")
@click.option("--allow-cpu-fallback", is_flag=True,
              help="Measure on the CPU when the device's delegate or accelerator is missing.")
@params_options(MeasureParams)
@data_key_options
@json_option
def profile_command(model, device, runtime, remote, python, ssh_config, accept_new_host_key, connect_timeout_s,
                    remote_tmpdir, op_profile, estimate, data, samples, allow_cpu_fallback, x_key, y_key, trust_code,
                    as_json, **measure):
    """Measure the latency of MODEL (.tflite) here, on a device over SSH, or estimate it."""
    from edgepack.latency import LatencyConfig, profile

    config = build_config(LatencyConfig, model=model, device=device, runtime=runtime, remote=remote, python=python,
                          ssh_config=ssh_config, accept_new_host_key=accept_new_host_key, remote_tmpdir=remote_tmpdir,
                          op_profile=op_profile, estimate=estimate, data=data_spec(data, x_key, y_key, trust_code),
                          allow_cpu_fallback=allow_cpu_fallback,
                          **given({"connect_timeout_s": connect_timeout_s, "samples": samples, **measure}))
    emit(profile(config), as_json, _render)


COMMANDS = [profile_command]
