"""Device profiles and the YAML reader behind them: validation with file, line and key path named."""

from __future__ import annotations

import json
import textwrap

import pytest
from pydantic import BaseModel, ConfigDict

from conftest import assert_one_line_error
from edgepack.devices import Accelerator, DeviceProfile, device_files, list_devices, load_device
from edgepack.errors import ConfigError
from edgepack.util.yamlfile import key_path_str, load_validated, load_yaml

SHIPPED = ["android-phone-cpu", "android-phone-gpu", "coral-dev-board", "coral-usb", "host-cpu",
           "linux-gpu-server", "raspberry-pi-4", "raspberry-pi-5"]

GOOD = """\
name: test-board
description: a test profile
arch: any
runtime: litert
accelerator: cpu
threads: 2
delegate: null
modes: [int8, float32]
memory_mb: 512
connection: {ssh: pi@board.local, port: 2222, python: python3}
estimate:
  source: made up for the test
  threads: 2
  gmacs: {float32: 10, int8: 30}
  depthwise: 0.2
  bandwidth_gbs: 4
  op_overhead_us: 5
"""


def write(tmp_path, text: str, name: str = "board.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_every_shipped_profile_loads_with_estimate_figures_and_sources():
    assert sorted(device_files()) == SHIPPED
    devices = {d.name: d for d in list_devices()}
    assert sorted(devices) == SHIPPED
    for device in devices.values():
        assert device.estimate is not None and device.estimate.source.strip()
        if device.accelerator != Accelerator.CPU:
            assert device.estimate.cpu_fallback is not None
    assert devices["coral-usb"].delegate == "libedgetpu.so.1"
    assert devices["raspberry-pi-4"].connection.ssh == "pi@raspberrypi.local"


def test_a_valid_profile_file_loads_by_path(tmp_path):
    device = load_device(write(tmp_path, GOOD))
    assert isinstance(device, DeviceProfile) and device.connection.port == 2222
    assert [m.value for m in device.modes] == ["int8", "float32"]


@pytest.mark.parametrize("change, line, fragments", [
    (("  bandwidth_gbs: 4", "  bandwith_gbs: 4"), 16, ["estimate.bandwith_gbs", "did you mean 'bandwidth_gbs'"]),
    (("accelerator: cpu", "accelerator: tpu"), 5, ["accelerator", "'edgetpu'"]),
    (("threads: 2\ndelegate", "threads: 0\ndelegate"), 6, ["threads", "greater than or equal to 1"]),
    (("  gmacs: {float32: 10, int8: 30}", "  gmacs: {float32: 10, int9: 30}"), 14,
     ["estimate.gmacs.int9", "did you mean 'int8'"]),
    (("port: 2222", "port: 99999"), 10, ["connection.port"]),
    (("arch: any\n", ""), 1, ["missing required key 'arch'"]),
    (("ssh: pi@board.local", "ssh: -oProxyCommand=x"), 10, ["connection.ssh", "must not start with '-'"]),
])
def test_profile_errors_name_the_file_line_and_key(tmp_path, change, line, fragments):
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError) as info:
        load_device(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_duplicate_keys_are_errors(tmp_path):
    path = write(tmp_path, GOOD + "threads: 4\n")
    with pytest.raises(ConfigError, match=r":18: duplicate key 'threads' \(first given on line 6\)"):
        load_yaml(path)


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = write(tmp_path, "name: x\nmodes: [int8\nthreads: 2\n")
    with pytest.raises(ConfigError, match=r"board.yaml:\d+: invalid YAML"):
        load_yaml(path)


def test_yaml_12_scalars_and_line_numbers(tmp_path):
    path = write(tmp_path, "rate: 1e-3\nflag: yes\nok: true\nsteps:\n  - prune: {sparsity: 0.5}\n  - cluster: 1\n")
    data, line_of = load_yaml(path)
    assert data == {"rate": 0.001, "flag": "yes", "ok": True, "steps": [{"prune": {"sparsity": 0.5}}, {"cluster": 1}]}
    assert line_of(("steps", 1, "cluster")) == 6
    assert line_of(("steps", 0, "prune", "sparsity")) == 5
    assert line_of(("steps", 0, "prune", "missing")) == 5  # nearest enclosing key
    assert key_path_str(("steps", 0, "prune")) == "steps[0].prune"


def test_load_validated_is_general_for_other_schemas(tmp_path):
    class Step(BaseModel):
        model_config = ConfigDict(extra="forbid")
        sparsity: float = 0.5

    class Recipe(BaseModel):
        model_config = ConfigDict(extra="forbid")
        name: str
        steps: list[dict[str, Step]]

    path = write(tmp_path, "name: r\nsteps:\n  - prune: {sparsity: 0.5}\n  - prune: {sparsty: 0.8}\n", "r.yaml")
    with pytest.raises(ConfigError, match=r"r.yaml:4: unknown key 'steps\[1\].prune.sparsty'; did you mean 'sparsity'"):
        load_validated(path, Recipe, what="recipe")
    with pytest.raises(ConfigError, match=r"a recipe must be a YAML mapping"):
        load_validated(write(tmp_path, "- 1\n", "l.yaml"), Recipe, what="recipe")


def test_devices_list_and_show(run, tmp_path):
    result = run("devices", "list", "--json")
    assert result.exit_code == 0, result.stderr
    assert [row["name"] for row in json.loads(result.stdout)] == SHIPPED
    extra = write(tmp_path, GOOD)
    listed = json.loads(run("devices", "list", extra, "--json").stdout)
    assert listed[-1]["name"] == "test-board"
    shown = run("devices", "show", "coral-usb", "--json")
    assert shown.exit_code == 0 and json.loads(shown.stdout)["estimate"]["gmacs"]["int8"] > 0
    assert "raspberry-pi-4" in run("devices", "show", "raspberry-pi-4").stdout
    assert run("devices", "show", str(extra)).exit_code == 0


def test_unknown_device_lists_the_known_ones(run):
    result = run("devices", "show", "raspbery-pi-4")
    stderr = assert_one_line_error(result, 2, "unknown device 'raspbery-pi-4'", "did you mean 'raspberry-pi-4'")
    for name in SHIPPED:
        assert name in stderr


def test_invalid_profile_file_is_exit_2_with_line(run, tmp_path):
    path = write(tmp_path, GOOD.replace("memory_mb: 512", "memory_mb: 512\nmemroy: 1"))
    assert_one_line_error(run("devices", "show", path), 2, f"{path}:10", "unknown key 'memroy'",
                          "did you mean 'memory_mb'")
