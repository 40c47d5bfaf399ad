"""``edgepack profile`` on this machine: real runtimes in a child process, faults, estimates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, assert_one_line_error
from edgepack.devices import device_files
from edgepack.errors import RuntimeUnavailable
from edgepack.latency import LatencyConfig, profile

DEVICE_PYTHON = ROOT / ".venv-device" / "bin" / "python"
FAST = ["--runs", "5", "--warmup", "1", "--warmup-seconds", "0", "--min-seconds", "0.05"]
LATENCY_KEYS = {"count", "mean", "std", "min", "p50", "p90", "p99", "max"}


def profile_json(run, *args):
    result = run("profile", *map(str, args), "--json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def test_local_profile_with_ai_edge_litert(run, tflite_models):
    report = profile_json(run, tflite_models["int8"], *FAST, "--threads", "1")
    assert report["where"] == "local" and report["estimated"] is False
    assert report["runtime"]["name"] == "ai-edge-litert" and report["runtime"]["version"]
    assert report["runtime"]["threads"] == 1 and report["runtime"]["accelerator"] == "cpu"
    latency = report["latency_ms"]
    assert set(latency) == LATENCY_KEYS | {"samples_ms"} and latency["count"] >= 5
    assert 0 < latency["min"] <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    samples = latency["samples_ms"]  # the timed runs for the report's histogram: all, or every k-th beyond 5,000
    step = -(-latency["count"] // 5000)
    assert len(samples) == -(-latency["count"] // step) <= 5000
    assert min(samples) >= latency["min"] - 1e-6 and max(samples) <= latency["max"] + 1e-6
    assert float(np.percentile(samples, 50)) == pytest.approx(latency["p50"], rel=0.25)
    assert report["init_ms"] > 0 and report["first_inference_ms"] > 0 and report["peak_memory_mb"] > 10
    assert report["size_bytes"] == tflite_models["int8"].stat().st_size
    assert 0 < report["gzip_size_bytes"] < report["size_bytes"]
    assert report["inputs"] == "random"


def test_min_seconds_keeps_timed_runs_going(tflite_models):
    result = profile(LatencyConfig(model=tflite_models["float32"], runs=1, warmup=1, warmup_seconds=0,
                                   min_seconds=0.3, threads=1))
    assert result.latency_ms.count > 1
    assert result.latency_ms.count * result.latency_ms.mean >= 250  # ~0.3 s of timed runs


@pytest.mark.skipif(not DEVICE_PYTHON.exists(), reason="no .venv-device: run scripts/test-deps.sh")
def test_local_profile_with_tflite_runtime(run, tflite_models):
    report = profile_json(run, tflite_models["float32"], *FAST, "--python", DEVICE_PYTHON,
                          "--runtime", "tflite-runtime")
    assert report["runtime"]["name"] == "tflite-runtime" and report["runtime"]["version"] == "2.14.0"
    assert report["latency_ms"]["count"] >= 5


def test_local_profile_with_tf_lite(run, tflite_models):
    report = profile_json(run, tflite_models["float16"], *FAST, "--runtime", "tf.lite")
    assert report["runtime"]["name"] == "tf.lite" and report["runtime"]["version"].startswith("2.")


def test_op_profile_is_labelled_as_estimated(run, tflite_models):
    report = profile_json(run, tflite_models["int8"], *FAST, "--op-profile")
    ops = report["op_profile"]
    assert ops["measured"] is False
    assert "estimated" in ops["label"] and "not measured" in ops["label"]
    assert ops["ops"] and abs(sum(op["ms"] for op in ops["ops"]) - report["latency_ms"]["mean"]) < 1e-3
    assert {"CONV_2D", "FULLY_CONNECTED"} <= {op["op"] for op in ops["ops"]}


def test_inputs_from_data(run, tflite_models, digits):
    report = profile_json(run, tflite_models["int8_io"], *FAST, "--data", digits["val"], "--samples", "4")
    assert report["inputs"] == str(digits["val"])


@pytest.mark.parametrize("device", sorted(device_files()))
def test_estimate_for_every_shipped_device(run, tflite_models, device):
    for mode in ("float32", "int8", "int16x8", "dynamic", "float16"):
        report = profile_json(run, tflite_models[mode], "--device", device, "--estimate", "--op-profile")
        assert report["estimated"] is True and report["where"] == "estimate"
        assert report["estimate_source"] and report["device"] == device
        assert report["latency_ms"]["p50"] > 0 and report["latency_ms"]["count"] == 0
        assert report["op_profile"]["measured"] is False and "estimated" in report["op_profile"]["label"]


def test_estimate_matches_the_published_anchor_it_was_calibrated_on(tflite_models):
    # Sanity of the cost model on a real graph: a float32 model costs more than its int8 twin on a Pi 4.
    fp32 = profile(LatencyConfig(model=tflite_models["float32"], device="raspberry-pi-4", estimate=True))
    int8 = profile(LatencyConfig(model=tflite_models["int8"], device="raspberry-pi-4", estimate=True))
    assert fp32.latency_ms.p50 > int8.latency_ms.p50 > 0


def test_unknown_device_exit_2_lists_devices(run, tflite_models):
    result = run("profile", tflite_models["int8"], "--device", "pi-9")
    stderr = assert_one_line_error(result, 2, "unknown device 'pi-9'")
    assert "raspberry-pi-4" in stderr and "coral-usb" in stderr


def test_device_of_another_architecture_is_refused_locally(run, tflite_models):
    assert_one_line_error(run("profile", tflite_models["int8"], "--device", "raspberry-pi-4"), 2,
                          "aarch64", "--remote", "--estimate")


def test_corrupt_model_exit_4(run, tmp_path, tflite_models):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(tflite_models["int8"].read_bytes()[:2000])
    assert_one_line_error(run("profile", bad, *FAST), 4, "rejected the model")
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a model at all")
    assert_one_line_error(run("profile", junk), 4, "not a TFLite model")


def test_missing_delegate_exit_5_and_explicit_cpu_fallback(run, tflite_models):
    # Real: libedgetpu.so.1 is not installed here, so coral-usb's delegate cannot load.
    args = [tflite_models["int8_io"], "--device", "coral-usb", "--runtime", "litert", *FAST]
    assert_one_line_error(run("profile", *args), 5, "libedgetpu.so.1", "--allow-cpu-fallback")
    report = profile_json(run, *args, "--allow-cpu-fallback")
    assert report["runtime"]["accelerator"] == "cpu" and report["runtime"]["delegate"] is None
    assert "libedgetpu.so.1" in report["runtime"]["fallback"] and report["notes"]


def test_gpu_accelerator_unavailable_exit_5(run, tflite_models):
    # Stand-in hardware: this machine has no GPU the LiteRT GPU accelerator can use.
    result = run("profile", tflite_models["float32"], "--device", "linux-gpu-server", *FAST)
    if result.exit_code == 0:
        pytest.skip("a usable GPU is present here")
    assert_one_line_error(result, 5, "GPU accelerator")


def test_device_python_without_runtime_exit_5(run, tflite_models, tmp_path):
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    assert_one_line_error(run("profile", tflite_models["int8"], "--python", bare / "bin" / "python"), 5,
                          "numpy is not importable", "pip install")


STAND_IN = """\
# STAND-IN for a runtime or delegate that {what}: not the real runner. It announces a stage as
# the real one does, writes its pid, then {action}.
import os, signal, sys, time
sys.stderr.write("@@stage timed-runs\\n"); sys.stderr.flush()
open({pid_file!r}, "w").write(str(os.getpid()))
{code}
"""


def stand_in(tmp_path, what: str, action: str, code: str) -> tuple[Path, Path]:
    pid_file = tmp_path / f"{what.split()[0]}.pid"
    script = tmp_path / f"{what.split()[0]}_runner.py"
    script.write_text(STAND_IN.format(what=what, action=action, pid_file=str(pid_file), code=code))
    return script, pid_file


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_crashing_child_is_exit_5_and_edgepack_survives(tmp_path, tflite_models):
    runner, pid_file = stand_in(tmp_path, "crashes", "kills itself with SIGSEGV",
                                "os.kill(os.getpid(), signal.SIGSEGV)")
    with pytest.raises(RuntimeUnavailable, match=r"crashed on this machine with SIGSEGV during timed-runs") as info:
        profile(LatencyConfig(model=tflite_models["int8"], probe=runner))
    assert info.value.exit_code == 5
    assert pid_file.exists() and gone(int(pid_file.read_text()))
    # edgepack is still alive and measures the next model normally
    again = profile(LatencyConfig(model=tflite_models["int8"], runs=2, warmup_seconds=0, min_seconds=0))
    assert again.latency_ms.count >= 2


def test_hanging_child_is_killed_and_exit_5(tmp_path, tflite_models):
    runner, pid_file = stand_in(tmp_path, "hangs", "sleeps for an hour", "time.sleep(3600)")
    started = time.monotonic()
    with pytest.raises(RuntimeUnavailable, match=r"did not finish within 2 s \(stuck in timed-runs\)") as info:
        profile(LatencyConfig(model=tflite_models["int8"], probe=runner, timeout_s=2))
    assert info.value.exit_code == 5 and time.monotonic() - started < 15
    assert gone(int(pid_file.read_text()))


def test_a_hang_is_killed_by_a_time_limit_sized_from_the_run_not_after_minutes(tmp_path, tflite_models, monkeypatch):
    """Without --timeout the limit is sized from the run (``sized_timeout``): a small model's is well under a
    minute, and a hang is killed at it. The kill waits on a limit sized with the start-up allowance and
    the floor made small (the two constants the sizing reads), not on the ~24 s a user would wait."""
    from edgepack.latency import measure
    from edgepack.runtime.interpreter import read_model_bytes

    runner, pid_file = stand_in(tmp_path, "hangs", "sleeps for an hour", "time.sleep(3600)")
    config = LatencyConfig(model=tflite_models["int8"], probe=runner)

    def sized() -> float:
        return measure.sized_timeout(config, read_model_bytes(config.model), None, measure._spec(config, None))

    assert measure.MIN_TIMEOUT_S <= sized() < 40, "a small model's default limit is well under a minute"
    monkeypatch.setattr(measure, "STARTUP_S", 0.5)
    monkeypatch.setattr(measure, "MIN_TIMEOUT_S", 1.0)
    limit = sized()
    assert limit < 10, limit
    started = time.monotonic()
    with pytest.raises(RuntimeUnavailable, match=rf"did not finish within {limit:g} s") as info:
        profile(config)
    assert limit <= time.monotonic() - started < limit + 15
    assert info.value.exit_code == 5 and gone(int(pid_file.read_text()))


def test_ctrl_c_kills_the_child_and_exits_130(tflite_models):
    process = subprocess.Popen([sys.executable, "-m", "edgepack", "profile", str(tflite_models["int8"]),
                                "--min-seconds", "120", "--max-seconds", "120", "--threads", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    child = None
    deadline = time.monotonic() + 30
    while child is None and time.monotonic() < deadline:
        time.sleep(0.2)
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        child = int(children[0]) if children else None
    assert child is not None, "the runner child never started"
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert stderr.strip() == "edgepack: error: interrupted"
    time.sleep(0.2)
    assert gone(child)


def test_profile_never_imports_tensorflow(tflite_models, digits, tmp_path):
    script = textwrap.dedent(f"""
        import runpy, sys
        for args in (["{tflite_models['int8']}", "--runs", "2", "--min-seconds", "0", "--warmup-seconds", "0",
                      "--op-profile", "--data", "{digits['val']}", "--json"],
                     ["{tflite_models['int8']}", "--device", "raspberry-pi-4", "--estimate", "--json"]):
            sys.argv = ["edgepack", "profile", *args]
            try:
                runpy.run_module("edgepack", run_name="__main__")
            except SystemExit as exc:
                assert exc.code in (0, None), exc.code
        assert "tensorflow" not in sys.modules, "profile imported TensorFlow"
        print("no tensorflow")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("no tensorflow")


def test_bad_options_are_exit_2(run, tflite_models):
    assert_one_line_error(run("profile", tflite_models["int8"], "--min-seconds", "5", "--max-seconds", "1"), 2,
                          "--min-seconds")
    assert_one_line_error(run("profile", tflite_models["int8"], "--estimate"), 2, "--estimate needs --device")
    assert_one_line_error(run("profile", tflite_models["int8"], "--runs", "0"), 2, "--runs")
    assert_one_line_error(run("profile", tflite_models["int8"], "--remote"), 2, "connection.ssh")
    assert_one_line_error(run("profile", tflite_models["int8"], "--estimate", "--device", "coral-usb", "--remote", "h"),
                          2, "exclude each other")
