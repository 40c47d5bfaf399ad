"""The Edge TPU compiler's log parser, and the compile step with a stand-in compiler.

The real ``edgetpu_compiler`` cannot be installed here (it comes from Coral's own package
repository, which this machine cannot reach), so the compile-step tests put a STAND-IN
executable named ``edgetpu_compiler`` on PATH that prints a log in the real compiler's format.
"""

from __future__ import annotations

import os
import stat

import pytest

from edgepack.edgetpu.compiler import compare, compile_model, find_compiler, parse_compiler_log
from edgepack.errors import ModelError, RuntimeUnavailable

ALL_MAPPED = """\
Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 412 ms.

Input model: model.tflite
Input size: 44.12KiB
Output model: model_edgetpu.tflite
Output size: 101.50KiB
On-chip memory used for caching model parameters: 52.25KiB
On-chip memory remaining for caching model parameters: 7.93MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 7
Operation log: model_edgetpu.log
See the operation log file for individual operation details.
Compilation child process completed within timeout period.
Compilation succeeded!
"""

PARTLY_MAPPED = """\
Edge TPU Compiler version 15.0.340273435

Model compiled successfully in 1880 ms.

Input model: detector.tflite
Input size: 4.02MiB
Output model: detector_edgetpu.tflite
Output size: 4.61MiB
On-chip memory used for caching model parameters: 3.90MiB
On-chip memory remaining for caching model parameters: 3.11MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 120
Operation log: detector_edgetpu.log

Model successfully compiled but not all operations are supported by the Edge TPU. A percentage of the model will instead run on the CPU, which is slower. If possible, consider updating your model to use only operations supported by the Edge TPU. For details, visit g.co/coral/model-reqs.
Number of operations that will run on Edge TPU: 112
Number of operations that will run on CPU: 8

Operator                       Count      Status

CONV_2D                        60         Mapped to Edge TPU
DEPTHWISE_CONV_2D              45         Mapped to Edge TPU
LEAKY_RELU                     1          Operation not supported
ADD                            5          More than one subgraph is not supported
QUANTIZE                       1          Mapped to Edge TPU
DEQUANTIZE                     2          Operation is working on an unsupported data type
CONCATENATION                  6          Mapped to Edge TPU
"""


def test_parses_a_fully_mapped_log():
    log = parse_compiler_log(ALL_MAPPED)
    assert log.version == "16.0.384591198" and log.compiled
    assert (log.total_ops, log.ops_on_edgetpu, log.ops_on_cpu) == (7, 7, 0)
    assert log.on_chip_memory == "52.25KiB" and log.off_chip_memory == "0.00B"


def test_parses_a_partly_mapped_log_with_its_operator_table():
    log = parse_compiler_log(PARTLY_MAPPED)
    assert (log.total_ops, log.ops_on_edgetpu, log.ops_on_cpu) == (120, 112, 8)
    assert [(r.op, r.count, r.mapped) for r in log.operators][:3] == [("CONV_2D", 60, True),
                                                                      ("DEPTHWISE_CONV_2D", 45, True),
                                                                      ("LEAKY_RELU", 1, False)]
    assert sum(r.count for r in log.operators if not r.mapped) == 8


def test_compare_with_the_prediction():
    log = parse_compiler_log(PARTLY_MAPPED)
    result = compare(log, _predicted(112, 120)).model_dump()
    assert result["agrees"] and [r["op"] for r in result["cpu_ops"]] == ["LEAKY_RELU", "ADD", "DEQUANTIZE"]
    assert not compare(log, _predicted(60, 120)).model_dump()["agrees"]


def _predicted(mappable: int, total: int):
    from edgepack.inspection.result import EdgeTpuReadiness

    return EdgeTpuReadiness(ready=mappable == total, ops_mappable=mappable, ops_total=total, source="test")


def _stand_in(folder, log_text: str, *, exit_code: int = 0, write_output: bool = True):
    """A STAND-IN for edgetpu_compiler: prints ``log_text`` and copies the model to *_edgetpu.tflite."""
    script = folder / "edgetpu_compiler"
    copy = 'cp "$model" "$out/$(basename "${model%.tflite}")_edgetpu.tflite"' if write_output else ":"
    script.write_text(f"""#!/bin/sh
# STAND-IN for Coral's edgetpu_compiler (not installable here); prints a log in its format.
out=.
while [ $# -gt 0 ]; do case "$1" in -o) out="$2"; shift 2;; -s) shift;; --) shift;; *) model="$1"; shift;; esac; done
cat <<'LOG'
{log_text}LOG
{copy}
exit {exit_code}
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


@pytest.fixture
def stand_in_path(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def test_compile_with_a_stand_in_compiler(tmp_path, stand_in_path, tflite_models):
    _stand_in(stand_in_path, ALL_MAPPED)
    assert find_compiler() == str(stand_in_path / "edgetpu_compiler")
    out = tmp_path / "out"
    out.mkdir()
    compiled, log = compile_model(tflite_models["int8_io"], out)
    assert compiled.name == "int8_io_edgetpu.tflite" and compiled.exists()
    assert log.ops_on_edgetpu == 7


def test_a_compiler_failure_is_exit_4(tmp_path, stand_in_path, tflite_models):
    _stand_in(stand_in_path, "Edge TPU Compiler version 16.0.384591198\nERROR: Didn't find op for builtin opcode 'X'\n"
              "Compilation failed!\n", exit_code=1, write_output=False)
    with pytest.raises(ModelError, match="Didn't find op"):
        compile_model(tflite_models["int8_io"], tmp_path)


def test_no_compiler_is_runtime_unavailable(tmp_path, monkeypatch, tflite_models):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_compiler() is None
    with pytest.raises(RuntimeUnavailable, match="not installed"):
        compile_model(tflite_models["int8_io"], tmp_path)
