"""``profile``: measure a .tflite model here or on a device over SSH, or estimate it from a device profile.

The model always runs in a child process (the standalone latency probe) with a time limit, so a
crash or hang in a runtime or delegate becomes RuntimeUnavailable (exit 5) and edgepack lives on.
Never imports TensorFlow.
"""

from __future__ import annotations

import gzip
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from edgepack.devices import DeviceProfile, load_device
from edgepack.errors import ConfigError, DataError, EdgepackError, RuntimeUnavailable
from edgepack.latency.config import LatencyConfig
from edgepack.latency.result import LATENCY_KEYS, LatencyResult, LatencyStats, RuntimeUsed
from edgepack.latency.probe import PROBE_SCRIPT, AcceleratorUnavailable, ProbeSpec, interpret
from edgepack.runtime.interpreter import read_model_bytes

RUNTIME_NAMES = {"litert": "ai-edge-litert", "tflite-runtime": "tflite-runtime"}
ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "armhf": "armv7l"}


def _arch(name: str) -> str:
    return ARCH_ALIASES.get(name.lower(), name.lower())


def _spec(config: LatencyConfig, device: DeviceProfile | None, *, cpu: bool = False) -> ProbeSpec:
    runtime = config.runtime or (device.runtime.value if device else "auto")
    accelerator = "cpu" if cpu or device is None else device.accelerator.value
    threads = config.threads or (device.threads if device else None)
    return ProbeSpec(config.runs, config.warmup, config.warmup_seconds, config.min_seconds, config.max_seconds,
                      threads, runtime, accelerator, None if cpu or device is None else device.delegate,
                      config.op_profile)


def _check_local_device(device: DeviceProfile | None) -> None:
    if device is None or device.arch == "any":
        return
    here = _arch(platform.machine())
    if _arch(device.arch) != here:
        raise ConfigError(f"device '{device.name}' is {device.arch} and this machine is {here}: a local run would "
                          f"not measure it",
                          hint="measure on it with --remote [user@]host, or estimate with --estimate")


def _inputs_file(config: LatencyConfig, model: bytes, folder: Path) -> Path | None:
    """Rows of DATA, fitted and quantized to the model's input, as the probe's .npz (or None)."""
    if config.data is None:
        return None
    import numpy as np

    from edgepack.loading.data import fit_to_input, load_data
    from edgepack.runtime.interpreter import make_interpreter
    from edgepack.runtime.predict import quantize_input

    interpreter, _ = make_interpreter(model, where=str(config.model), allocate=False, allow_tensorflow=False)
    details = interpreter.get_input_details()
    if len(details) != 1:
        raise DataError(f"{config.model} has {len(details)} inputs; --data feeds single-input models",
                        hint="profile with random inputs (leave out --data)")
    signature = details[0].get("shape_signature")
    shape = tuple(int(d) for d in (signature if signature is not None and len(signature) else details[0]["shape"]))
    dataset = load_data(config.data, input_shape=shape).sample(config.samples)
    dataset = fit_to_input(dataset, shape, "float32" if np.dtype(details[0]["dtype"]).kind in "iu" else
                           np.dtype(details[0]["dtype"]).name, model_name=str(config.model))
    path = folder / "inputs.npz"
    np.savez(path, input_0=quantize_input(dataset.x, details[0]))
    return path


STARTUP_S = 10.0      # start Python, import the runtime, load the model: generous on a Pi
SLOWDOWN = 10.0       # the estimate may be optimistic (another device, a delegate, a loaded machine)
REMOTE_EXTRA_S = 30.0  # ssh connections and copies
MIN_TIMEOUT_S = 20.0  # no sized limit is shorter


def sized_timeout(config: LatencyConfig, model: bytes, device, spec: ProbeSpec) -> float:
    """The probe's time limit: ``--timeout`` when given, else twice what this run should take (from
    its own runs, warm-up and times and the estimated latency, x10 in case the estimate is
    optimistic), at least 20 s and at most 2 x max-seconds + 60."""
    if config.timeout_s is not None:
        return config.timeout_s
    cap = config.probe_timeout_s
    try:
        from edgepack.latency.estimate import estimate_latency
        from edgepack.latency.op_counts import model_work

        figures = _figures_device(device)
        estimate = estimate_latency(model_work(config.model, model), figures, spec.threads if figures is device else None)
    except EdgepackError:
        return cap
    per_run = max(estimate.latency_ms / 1000.0, 1e-4) * SLOWDOWN
    expected = STARTUP_S + max(spec.warmup_seconds, spec.warmup * per_run) + max(spec.min_seconds, spec.runs * per_run)
    expected += REMOTE_EXTRA_S if config.remote else 0.0
    return round(min(cap, max(MIN_TIMEOUT_S, 2 * expected)), 1)


def _run(config: LatencyConfig, device, spec: ProbeSpec, model: Path, inputs: Path | None, folder: Path,
         timeout: float):
    """Run the probe here or over SSH: ``(document, where, host, notes)``."""
    probe = config.probe or PROBE_SCRIPT
    if config.remote:
        from edgepack.latency.remote import resolve_target, run_remote
        from edgepack.remote.ssh import Ssh

        target, device_python = resolve_target(config.remote, device)
        python = config.python or device_python or "python3"
        ssh = Ssh(target, config_file=config.ssh_config, accept_new_host_key=config.accept_new_host_key,
                  connect_timeout=config.connect_timeout_s)
        staged = folder / "model.tflite"
        shutil.copyfile(model, staged)
        result, notes = run_remote(ssh, spec=spec, probe=probe, model=staged, inputs=inputs, python=python,
                                   remote_tmpdir=config.remote_tmpdir, timeout=timeout)
        where = f"{target}"
        _debug_echo(result.stderr)
        document = interpret(result.stdout, result.stderr, result.returncode, where=where, remote=True, python=python)
        return document, "remote", where, notes
    from edgepack.util.child_process import run_child

    python = config.python or sys.executable
    try:
        result = run_child([python, str(probe), *spec.args(str(model), str(inputs) if inputs else None)],
                           timeout=timeout)
    except (FileNotFoundError, PermissionError) as exc:
        raise RuntimeUnavailable(f"cannot start '{python}': {exc.strerror}", hint="check --python") from None
    _debug_echo(result.stderr)
    if result.timed_out:
        from edgepack.latency.probe import last_stage

        stage = last_stage(result.stderr)
        raise RuntimeUnavailable(f"the runtime did not finish within {timeout:g} s"
                                 f"{f' (stuck in {stage})' if stage else ''}; it was killed",
                                 hint="the model or a delegate hangs; if it is only slow, give a longer --timeout "
                                      "(the limit was sized from --runs, --warmup and the estimated latency)")
    document = interpret(result.stdout, result.stderr, result.returncode, where="this machine", remote=False,
                         python=python)
    return document, "local", None, []


def _debug_echo(stderr: str) -> None:
    """With --debug, show what the probe and its runtime said (stack traces of crashes included)."""
    from edgepack.util import quiet

    if quiet.DEBUG and stderr.strip():
        sys.stderr.write(stderr if stderr.endswith("\n") else stderr + "\n")


def _figures_device(device: DeviceProfile | None) -> DeviceProfile:
    if device is not None and device.estimate is not None:
        return device
    return load_device("host-cpu")


def _model_notes(config: LatencyConfig, model: bytes, device, threads, mean_ms, op_profile: bool):
    """The device-mode check and, when asked, the estimated per-operator split."""
    from edgepack.latency.estimate import estimate_latency
    from edgepack.latency.op_profile import measured_split
    from edgepack.latency.op_counts import model_work

    figures = _figures_device(device)
    work = model_work(config.model, model)
    estimate = estimate_latency(work, figures, threads if figures is device else None)
    notes = [n for n in estimate.notes if device is not None and figures is device and "lists modes" in n]
    split = measured_split(estimate, figures, mean_ms, "the runtime's Python API exposes no per-operator timer") \
        if op_profile else None
    return notes, split


def _estimated(config: LatencyConfig, device: DeviceProfile, model: bytes, sizes: dict) -> LatencyResult:
    from edgepack.latency.estimate import estimate_latency
    from edgepack.latency.op_profile import estimated_breakdown
    from edgepack.latency.op_counts import model_work

    estimate = estimate_latency(model_work(config.model, model), device, config.threads)
    latency = LatencyStats.estimated(estimate.latency_ms)
    runtime = RuntimeUsed(name=RUNTIME_NAMES[device.runtime.value], accelerator=device.accelerator.value,
                          delegate=device.delegate, threads=estimate.threads)
    return LatencyResult(model=str(config.model), device=device.name, where="estimate", estimated=True,
                         estimate_source=estimate.source, runtime=runtime, latency_ms=latency, inputs="none",
                         settings={"threads": estimate.threads},
                         notes=["an estimate, not a measurement (figures and source from the device profile)",
                                *estimate.notes],
                         op_profile=estimated_breakdown(estimate) if config.op_profile else None, **sizes)


def profile(config: LatencyConfig, *, device: DeviceProfile | None = None) -> LatencyResult:
    """Measure (locally or with ``remote``) or estimate ``config.model``; see LatencyConfig.

    ``device`` is the already loaded profile named by ``config.device`` (so it is not read again).
    """
    if device is None and config.device:
        device = load_device(config.device)
    if config.remote:
        from edgepack.latency.remote import resolve_target

        resolve_target(config.remote, device)  # a bad host name is a usage error, before anything runs
    model = read_model_bytes(config.model)
    sizes = {"size_bytes": len(model), "gzip_size_bytes": len(gzip.compress(model, compresslevel=9, mtime=0))}
    if config.estimate:
        return _estimated(config, device, model, sizes)
    if not config.remote:
        _check_local_device(device)
    spec, notes, fallback = _spec(config, device), [], None
    with tempfile.TemporaryDirectory(prefix="edgepack-profile-") as tmp:
        inputs = _inputs_file(config, model, Path(tmp))
        started = time.perf_counter()
        timeout = sized_timeout(config, model, device, spec)
        try:
            document, where, host, run_notes = _run(config, device, spec, config.model, inputs, Path(tmp), timeout)
        except AcceleratorUnavailable as exc:
            if not config.allow_cpu_fallback or (spec.accelerator == "cpu" and not spec.delegate):
                raise
            fallback = (f"{spec.accelerator if not spec.delegate else spec.delegate} unavailable, measured on "
                        f"the CPU instead (--allow-cpu-fallback): {exc.message}")
            spec = _spec(config, device, cpu=True)
            document, where, host, run_notes = _run(config, device, spec, config.model, inputs, Path(tmp), timeout)
        notes += run_notes + ([fallback] if fallback else [])
    runtime = RuntimeUsed(**{**document["runtime"], "fallback": fallback})
    timed = document["latency_ms"]
    latency = LatencyStats(**{key: timed.get(key) for key in LATENCY_KEYS},
                           samples_ms=timed.get("samples_ms") or None)  # probes older than 0.2 send none
    try:
        model_notes, split = _model_notes(config, model, None if fallback else device, spec.threads,
                                          latency.mean, config.op_profile)
    except EdgepackError as exc:
        if config.op_profile:
            raise
        model_notes, split = [f"model operators not read: {exc.message}"], None
    peak = document["memory"]["peak"]
    return LatencyResult(
        model=str(config.model), device=device.name if device else None, where=where, host=host, estimated=False,
        runtime=runtime, latency_ms=latency, init_ms=document["init_ms"],
        first_inference_ms=document["first_inference_ms"], warmup=document["warmup"],
        peak_memory_mb=peak.get("vmhwm_mb", peak.get("ru_maxrss_mb")), memory=document["memory"],
        inputs=str(config.data.source) if config.data else "random",
        settings={"runs": spec.runs, "warmup": spec.warmup, "warmup_seconds": spec.warmup_seconds,
                  "min_seconds": spec.min_seconds, "max_seconds": spec.max_seconds, "timeout_s": timeout,
                  "wall_seconds": round(time.perf_counter() - started, 3)},
        op_profile=split, python=document.get("python"), notes=notes + model_notes, **sizes)
