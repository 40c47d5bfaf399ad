"""The command line itself: help, version, usage errors, and start-up without TensorFlow."""

from __future__ import annotations

import pytest

from conftest import assert_one_line_error, edgepack_subprocess

COMMANDS = ["inspect", "quantize", "convert", "evaluate"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(run, command):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "Usage: edgepack " + command in result.stdout


def test_version_prints_the_package_version(run):
    from edgepack import __version__

    result = run("--version")
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_help_starts_fast_and_imports_no_tensorflow():
    code = ("import sys, runpy\nsys.argv=['edgepack','--help']\n"
            "try:\n    runpy.run_module('edgepack', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print('TF' if 'tensorflow' in sys.modules else 'NO-TF', file=sys.stderr)")
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "Commands:" in result.stdout
    assert result.stderr.strip().endswith("NO-TF")


def test_unknown_command_is_a_one_line_usage_error(run):
    assert_one_line_error(run("frobnicate"), 2, "No such command 'frobnicate'")


def test_unknown_flag_is_a_one_line_usage_error(run):
    assert_one_line_error(run("quantize", "m.keras", "-o", "x.tflite", "--bogus"), 2, "--bogus",
                          "edgepack quantize --help")


def test_unknown_mode_is_exit_2(run):
    assert_one_line_error(run("quantize", "m.keras", "-o", "x.tflite", "--mode", "int4"), 2, "int4")


def test_real_entry_point_maps_errors_to_exit_codes(tmp_path):
    result = edgepack_subprocess("evaluate", tmp_path / "missing.tflite", "--data", tmp_path / "v.npz")
    assert result.returncode == 4
    assert result.stderr.startswith("edgepack: error: model not found")
    assert len(result.stderr.strip().splitlines()) == 1


def test_debug_shows_the_traceback(tmp_path):
    result = edgepack_subprocess("--debug", "evaluate", tmp_path / "missing.tflite", "--data", tmp_path / "v.npz")
    assert result.returncode == 4
    assert "Traceback" in result.stderr
