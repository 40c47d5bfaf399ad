"""Recipe files: every bad input is a one-line configuration error naming file, line and key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_one_line_error

GOOD = """\
name: t
device: host-cpu
model: model.keras
data:
  train: train.npz
  val: val.npz
steps:
  - prune: {sparsity: 0.5, epochs: 1}
  - quantize: {mode: int8, io: int8}
gates:
  max_accuracy_drop: 1.0
"""


@pytest.fixture
def recipe_dir(tmp_path):
    (tmp_path / "model.keras").write_bytes(b"placeholder: validation does not load the model")
    np.savez(tmp_path / "train.npz", x=np.zeros((2, 8, 8, 1), np.float32), y=np.zeros(2))
    np.savez(tmp_path / "val.npz", x=np.zeros((2, 8, 8, 1), np.float32), y=np.zeros(2))
    return tmp_path


def write(folder: Path, text: str) -> Path:
    path = folder / "r.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_good_recipe_validates(run, recipe_dir):
    result = run("recipes", "validate", write(recipe_dir, GOOD), "--json")
    assert result.exit_code == 0, result.stderr


def test_misspelled_key_gets_did_you_mean_and_line(run, recipe_dir):
    path = write(recipe_dir, GOOD.replace("max_accuracy_drop", "max_acuracy_drop"))
    assert_one_line_error(run("recipes", "validate", path), 2, "r.yaml:11", "gates.max_acuracy_drop",
                          "did you mean 'max_accuracy_drop'")


def test_misspelled_step_gets_did_you_mean(run, recipe_dir):
    path = write(recipe_dir, GOOD.replace("- prune:", "- prun:"))
    assert_one_line_error(run("recipes", "validate", path), 2, "r.yaml:", "did you mean 'prune'")


def test_duplicate_key_is_refused(run, recipe_dir):
    path = write(recipe_dir, GOOD + "name: again\n")
    assert_one_line_error(run("recipes", "validate", path), 2, "duplicate key 'name'", "line 1")


def test_python_object_tag_is_refused_and_not_constructed(run, recipe_dir):
    path = write(recipe_dir, GOOD.replace("name: t", "name: !!python/object/apply:os.system ['touch pwned']"))
    assert_one_line_error(run("recipes", "validate", path, cwd=recipe_dir), 2, "r.yaml:1")
    assert not (recipe_dir / "pwned").exists()


@pytest.mark.parametrize("value", ["-1", ".nan", "1e400"])
def test_negative_nan_or_infinite_threshold_is_refused(run, recipe_dir, value):
    path = write(recipe_dir, GOOD.replace("max_accuracy_drop: 1.0", f"max_accuracy_drop: {value}"))
    assert_one_line_error(run("recipes", "validate", path), 2, "gates.max_accuracy_drop", "finite number >= 0")


@pytest.mark.parametrize("edit, fragments", [
    (("sparsity: 0.5", "sparsity: 1.0"), ("steps[0].prune.sparsity", "less than 1")),
    (("mode: int8, io: int8", "mode: int4"), ("steps[1].quantize.mode",)),
    (("device: host-cpu", "device: toaster"), ("unknown device 'toaster'", "host-cpu")),
    (("model: model.keras", "model: missing.keras"), ("r.yaml:3", "missing.keras does not exist")),
    (("  train: train.npz\n", ""), ("needs data.train",)),
])
def test_bad_values_are_refused_before_any_work(run, recipe_dir, edit, fragments):
    path = write(recipe_dir, GOOD.replace(*edit))
    assert_one_line_error(run("recipes", "validate", path), 2, *fragments)


def test_a_mode_the_device_does_not_run_is_refused(run, recipe_dir):
    path = write(recipe_dir, GOOD.replace("device: host-cpu", "device: coral-usb")
                 .replace("mode: int8, io: int8", "mode: float16"))
    assert_one_line_error(run("recipes", "validate", path), 2, "r.yaml:9", "coral-usb")


def test_edgetpu_needs_integer_io(run, recipe_dir):
    path = write(recipe_dir, GOOD.replace("device: host-cpu", "device: coral-usb").replace("io: int8", "io: float32"))
    assert_one_line_error(run("recipes", "validate", path), 2, "Edge TPU", "io: int8")


def test_quantize_must_be_last(run, recipe_dir):
    path = write(recipe_dir, GOOD.replace("  - quantize: {mode: int8, io: int8}\n",
                                          "  - quantize: {mode: int8, io: int8}\n  - prune: {sparsity: 0.5}\n"))
    assert_one_line_error(run("recipes", "validate", path), 2, "quantize must be the last step")


def test_every_shipped_recipe_validates_schema_and_device(run):
    from edgepack.recipes.loader import list_recipe_files, load_recipe

    files = list_recipe_files()
    assert {p.stem for p in files} >= {"demo", "raspberry-pi-4-int8", "raspberry-pi-5-int8", "android-phone-cpu-int8",
                                       "android-phone-gpu-float16", "coral-usb-int8", "linux-server-dynamic"}
    for path in files:
        loaded = load_recipe(path, check_files=False)
        assert loaded.device.name == loaded.recipe.device


def test_recipes_list_and_show(run):
    result = run("recipes", "list", "--json")
    assert result.exit_code == 0, result.stderr
    assert "demo" in {row["name"] for row in __import__("json").loads(result.stdout)}
    shown = run("recipes", "show", "demo")
    assert shown.exit_code == 0 and "preserve_sparsity: true" in shown.stdout and "samples: 200" in shown.stdout


@pytest.mark.parametrize("args", [["recipes", "--help"], ["recipes", "validate", "--help"], ["run", "--help"],
                                  ["verify", "--help"], ["recipes", "list", "--help"], ["recipes", "show", "--help"]])
def test_help(run, args):
    assert run(*args).exit_code == 0


def test_unknown_recipe_name_lists_the_known_ones(run):
    assert_one_line_error(run("recipes", "show", "nope"), 2, "unknown recipe 'nope'", "demo")


def test_data_preprocess_is_resolved_to_numbers_and_a_bad_family_is_exit_2(run, recipe_dir):
    from edgepack.recipes.loader import load_recipe

    loaded = load_recipe(write(recipe_dir, GOOD.replace("  val: val.npz\n", "  val: val.npz\n  preprocess: mobilenet_v2\n")))
    preprocess = loaded.recipe.data.preprocess
    assert preprocess.scale == pytest.approx(1 / 127.5) and preprocess.offset == pytest.approx(-1.0)
    bad = write(recipe_dir, GOOD.replace("  val: val.npz\n", "  val: val.npz\n  preprocess: mobilenet_v9\n"))
    assert_one_line_error(run("recipes", "validate", bad), 2, "mobilenet_v9")
