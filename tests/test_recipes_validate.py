"""``recipes validate``: a shipped recipe can be checked before its inputs exist, says where it will read
them, accepts --model/--train/--val as ``run`` does, and a missing input's hint names the rule that applied."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import assert_one_line_error


def test_a_shipped_recipe_validates_anywhere_and_says_where_it_will_read(run, tmp_path):
    result = run("recipes", "validate", "raspberry-pi-4-int8", "--json", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["inputs_checked"] is False
    assert {i["key"]: (Path(i["path"]), i["exists"]) for i in report["inputs"]} == {
        "model": (tmp_path / "model.keras", False), "data.train": (tmp_path / "train.npz", False),
        "data.val": (tmp_path / "val.npz", False)}
    shown = run("recipes", "validate", "raspberry-pi-4-int8", cwd=tmp_path)
    assert shown.exit_code == 0 and "not there yet" in shown.stdout


def test_a_shipped_recipe_given_inputs_checks_them(run, tmp_path, digits):
    args = ["--model", digits["model"], "--train", digits["train"], "--val", digits["val"], "--json"]
    result = run("recipes", "validate", "raspberry-pi-4-int8", *args, cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["inputs_checked"] and all(i["exists"] for i in report["inputs"])
    missing = run("recipes", "validate", "raspberry-pi-4-int8", "--model", "nope.keras", cwd=tmp_path)
    assert_one_line_error(missing, 2, "nope.keras does not exist", "relative to the folder you run in")


def test_a_recipe_of_ones_own_names_its_folder_when_an_input_is_missing(run, tmp_path):
    folder = tmp_path / "recipes"
    folder.mkdir()
    recipe = folder / "mine.yaml"
    recipe.write_text("name: mine\ndevice: host-cpu\nmodel: model.keras\nsteps:\n  - quantize: {mode: float32}\n")
    message = assert_one_line_error(run("recipes", "validate", recipe, cwd=tmp_path), 2, "model.keras does not exist")
    assert f"relative to the recipe file's folder ({folder})" in message
