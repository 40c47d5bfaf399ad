"""The wheel, installed outside the repository, is complete: device profiles, recipes and a run.

The wheel is built from this checkout and installed (without dependencies) into a fresh virtual
environment in a temporary folder; the dependencies (TensorFlow and the rest) come from the test
environment through a .pth file, so the test takes seconds instead of a 2 GB install. edgepack
itself is imported from the wheel only: the test checks where it was imported from.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import ROOT

RECIPE = """\
name: outside
device: raspberry-pi-4
model: model.keras
data: {val: val.npz}
steps:
  - quantize: {mode: float32}
  - profile: {where: estimate}
gates: {max_accuracy_drop: 0.5}
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(root / "wheels"), str(ROOT)], capture_output=True, text=True, timeout=300,
                           cwd=root)
    assert build.returncode == 0, build.stderr
    wheel = next((root / "wheels").glob("edgepack-*.whl"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    purelib = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; "
                                   "print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True,
                                  check=True).stdout.strip())
    (purelib / "zz-edgepack-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    return {"root": root, "venv": venv, "wheel": wheel}


def edgepack(installed, *args, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EDGEPACK_DEVICES", "EDGEPACK_RECIPES")}
    return subprocess.run([str(installed["venv"] / "bin" / "edgepack"), *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd, env=env)


def test_the_wheel_carries_the_device_profiles_and_recipes(installed):
    import zipfile

    names = zipfile.ZipFile(installed["wheel"]).namelist()
    assert "edgepack/devices/builtin/raspberry-pi-4.yaml" in names
    assert "edgepack/recipes/builtin/coral-usb-int8.yaml" in names


def test_installed_edgepack_lists_devices_and_recipes_outside_the_repository(installed, tmp_path):
    where = subprocess.run([str(installed["venv"] / "bin" / "python"), "-c", "import edgepack; print(edgepack.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    assert str(installed["venv"]) in where and str(ROOT) not in where
    devices = edgepack(installed, "devices", "list", "--json", cwd=tmp_path)
    assert devices.returncode == 0, devices.stderr
    assert {"raspberry-pi-4", "coral-usb", "host-cpu"} <= {d["name"] for d in json.loads(devices.stdout)}
    recipes = edgepack(installed, "recipes", "list", "--json", cwd=tmp_path)
    assert recipes.returncode == 0, recipes.stderr
    assert "raspberry-pi-4-int8" in {r["name"] for r in json.loads(recipes.stdout)}


def test_installed_edgepack_runs_a_recipe_written_in_a_user_folder(installed, digits, tmp_path):
    shutil.copyfile(digits["model"], tmp_path / "model.keras")
    shutil.copyfile(digits["val"], tmp_path / "val.npz")
    (tmp_path / "recipe.yaml").write_text(RECIPE)
    result = edgepack(installed, "run", "recipe.yaml", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["latency"]["estimated"] is True and report["passed"] is True
    assert edgepack(installed, "verify", tmp_path / "dist" / "outside", cwd=tmp_path).returncode == 0


def test_user_folders_add_to_and_override_the_shipped_ones(installed, tmp_path):
    shipped = (ROOT / "edgepack" / "devices" / "builtin" / "raspberry-pi-4.yaml").read_text()
    mine = tmp_path / "mydevices"
    mine.mkdir()
    (mine / "raspberry-pi-4.yaml").write_text(shipped.replace("\nthreads: 4\n", "\nthreads: 3\n"))
    (mine / "my-board.yaml").write_text(shipped.replace("name: raspberry-pi-4", "name: my-board"))
    shown = edgepack(installed, "--devices-dir", mine, "devices", "show", "raspberry-pi-4", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["threads"] == 3
    listed = edgepack(installed, "--devices-dir", mine, "devices", "list", "--json", cwd=tmp_path)
    assert "my-board" in {d["name"] for d in json.loads(listed.stdout)}
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "raspberry-pi-4.yaml").write_text(shipped.replace("\nthreads: 4\n", "\nthreads: 1\n"))
    local = edgepack(installed, "devices", "show", "raspberry-pi-4", "--json", cwd=tmp_path)
    assert json.loads(local.stdout)["threads"] == 1, "./devices overrides the shipped profile"
    flag_first = edgepack(installed, "--devices-dir", mine, "devices", "show", "raspberry-pi-4", "--json", cwd=tmp_path)
    assert json.loads(flag_first.stdout)["threads"] == 3, "--devices-dir comes before ./devices"
