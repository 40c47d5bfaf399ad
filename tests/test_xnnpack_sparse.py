"""``prune --structure xnnpack`` and ``quantize --sparse``: 1x1 convolutions pruned to XNNPACK's sparse
threshold, stored sparse, and ``inspect`` saying whether a .tflite meets XNNPACK's sparse-inference
conditions (and which one fails). Zeros are counted here from the saved weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_one_line_error

SIDE = 32


def _images(npz: Path, out: Path) -> Path:
    data = np.load(npz)
    x = np.repeat(np.repeat(data["x"], SIDE // 8, 1), SIDE // 8, 2).repeat(3, axis=-1)
    np.savez(out, x=x.astype(np.float32), y=data["y"])
    return out


def mobilenet_style(folder: Path, train: Path, *, same_depthwise: bool = False) -> Path:
    """A small MobileNet-style float CNN laid out as XNNPACK's sparse path wants it: explicit padding
    before a 3x3 stride-2 stem on 3 channels, 1x1 / depthwise 3x3 blocks, global average pooling.
    ``same_depthwise``: the depthwise convolutions take stride 2 with SAME padding, which XNNPACK's sparse
    layout refuses (at stride 1 it turns SAME into explicit padding and accepts it)."""
    import keras

    data = np.load(train)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIDE, SIDE, 3), name="image")
    h = keras.layers.ZeroPadding2D(1, name="stem_pad")(inputs)
    h = keras.layers.Conv2D(16, 3, strides=2, padding="valid", activation="relu", name="stem")(h)
    for block in range(2):
        h = keras.layers.Conv2D(48, 1, activation="relu", name=f"expand{block}")(h)
        if same_depthwise:
            h = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu", name=f"dw{block}")(h)
        else:
            h = keras.layers.ZeroPadding2D(1, name=f"pad{block}")(h)
            h = keras.layers.DepthwiseConv2D(3, padding="valid", activation="relu", name=f"dw{block}")(h)
        h = keras.layers.Conv2D(32, 1, activation="relu", name=f"project{block}")(h)
    h = keras.layers.GlobalAveragePooling2D(name="pool")(h)
    outputs = keras.layers.Dense(10, activation="softmax", name="probabilities")(h)
    model = keras.Model(inputs, outputs, name="mobilenet_style")
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(data["x"], data["y"], epochs=4, batch_size=32, verbose=0)
    path = folder / ("same.keras" if same_depthwise else "model.keras")
    model.save(path)
    return path


@pytest.fixture(scope="module")
def example(tmp_path_factory, digits) -> dict:
    folder = tmp_path_factory.mktemp("xnnpack")
    train = _images(digits["train"], folder / "train.npz")
    val = _images(digits["val"], folder / "val.npz")
    return {"folder": folder, "train": train, "val": val, "model": mobilenet_style(folder, train)}


@pytest.fixture(scope="module")
def pruned(example, run) -> Path:
    out = example["folder"] / "pruned.keras"
    result = run("prune", example["model"], "--data", example["train"], "--structure", "xnnpack", "--epochs", "2",
                 "-o", out)
    assert result.exit_code == 0, result.stderr
    return out


def test_only_the_1x1_convolutions_are_pruned_to_the_default_0_75(pruned, example):
    import keras

    before = keras.saving.load_model(example["model"])
    after = keras.saving.load_model(pruned)
    for layer in after.layers:
        if not layer.weights:
            continue
        kernel = layer.get_weights()[0]
        zeros = float(np.mean(kernel == 0))
        if layer.name.startswith(("expand", "project")):
            assert zeros == pytest.approx(0.75, abs=0.01), layer.name
        else:
            assert zeros == float(np.mean(before.get_layer(layer.name).get_weights()[0] == 0)), layer.name


def sparse_report(run, path: Path) -> dict:
    result = run("inspect", path, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["xnnpack_sparse"]


def test_a_pruned_model_stored_sparse_meets_every_condition(run, pruned, example):
    out = example["folder"] / "sparse.tflite"
    assert run("quantize", pruned, "-o", out, "--mode", "float32", "--sparse").exit_code == 0
    report = sparse_report(run, out)
    assert report["ready"], report
    assert report["zero_fraction"] >= 2 / 3
    shown = run("inspect", out)
    assert "XNNPACK sparse" in shown.stdout and "yes" in shown.stdout


@pytest.mark.parametrize("case, failed", [
    ("dense storage", "stored sparse"),
    ("int8", "float"),
    ("not pruned", "at least 2/3 of the 1x1 weights are zero"),
    ("same padding", "only supported operators between"),
])
def test_a_model_that_misses_a_condition_gets_it_named(run, pruned, example, case, failed):
    folder = example["folder"]
    out = folder / f"{case.replace(' ', '-')}.tflite"
    if case == "dense storage":
        args = [pruned, "--mode", "float32"]
    elif case == "int8":
        args = [pruned, "--mode", "int8", "--calibration", example["train"]]
    elif case == "not pruned":
        args = [example["model"], "--mode", "float32", "--sparse"]
    else:
        same = mobilenet_style(folder, example["train"], same_depthwise=True)
        pruned_same = folder / "pruned-same.keras"
        assert run("prune", same, "--data", example["train"], "--structure", "xnnpack", "--epochs", "1",
                   "-o", pruned_same).exit_code == 0
        args = [pruned_same, "--mode", "float32", "--sparse"]
    assert run("quantize", args[0], "-o", out, *args[1:]).exit_code == 0
    report = sparse_report(run, out)
    holds = {row["condition"]: row["holds"] for row in report["conditions"]}
    assert not report["ready"] and holds[failed] is False, report
    assert report["failed"] == failed or case == "not pruned", report  # unpruned: not stored sparse either
    if case in ("dense storage", "same padding"):  # the only condition that fails
        assert report["failed"] == failed and sum(not h for h in holds.values()) == 1, report
    if case == "same padding":
        detail = next(r["detail"] for r in report["conditions"] if r["condition"] == failed)
        assert "SAME padding at stride 2" in detail and "DEPTHWISE_CONV_2D" in detail


@pytest.mark.parametrize("args, fragment", [
    (["--structure", "xnnpack", "--sparsity", "0.5"], "0.67 or more"),
    (["--structure", "xnnpack", "--allocate", "sensitivity"], "allocate"),
])
def test_bad_xnnpack_prune_options_exit_2(run, tmp_path, example, args, fragment):
    result = run("prune", example["model"], "--data", example["train"], "-o", tmp_path / "x.keras", *args)
    assert_one_line_error(result, 2, fragment)


def test_sparse_with_int8_exits_2(run, tmp_path, example):
    result = run("quantize", example["model"], "-o", tmp_path / "x.tflite", "--mode", "int8", "--sparse",
                 "--calibration", example["train"])
    assert_one_line_error(result, 2, "float32 or float16")


def test_a_recipe_pruning_for_xnnpack_then_converting_to_int8_is_refused(run, tmp_path, example):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: r\ndevice: host-cpu\nmodel: {example['model']}\ndata: {{train: {example['train']}}}\n"
                      "steps:\n  - prune: {structure: xnnpack}\n  - quantize: {mode: int8}\n")
    assert_one_line_error(run("recipes", "validate", recipe), 2, "structure xnnpack", "int8")
