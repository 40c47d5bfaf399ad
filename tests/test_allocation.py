"""``prune --allocate sensitivity``: the global budget is met, spent unevenly, recorded and replayable.
Sparsity is measured here from the saved weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from compress_fixtures import kernels
from conftest import assert_one_line_error


def test_the_greedy_allocation_meets_the_budget_and_prunes_cheap_layers_first():
    from edgepack.allocation.sparsity import LEVELS, allocate

    weights = {"cheap": 1000, "costly": 1000, "small": 10}
    curves = {"cheap": [0.01 * level for level in LEVELS], "costly": [10.0 * level for level in LEVELS],
              "small": [100.0 * level for level in LEVELS]}
    chosen = allocate(curves, weights, 0.6)
    spent = sum(weights[name] * chosen[name] for name in weights)
    assert spent == pytest.approx(0.6 * sum(weights.values()), rel=1e-9)
    assert chosen["cheap"] == LEVELS[-1] and chosen["cheap"] > chosen["costly"] > chosen["small"]


def global_sparsity(found: dict[str, np.ndarray], names) -> float:
    return sum(int(np.sum(found[n] == 0)) for n in names) / sum(found[n].size for n in names)


def test_sensitivity_allocation_zeroes_the_global_fraction_unevenly_and_records_it(run, digits, tmp_path):
    out = tmp_path / "allocated.keras"
    result = run("prune", digits["model"], "--data", digits["train"], "-o", out, "--sparsity", "0.8",
                 "--epochs", "1", "--allocate", "sensitivity", "--json")
    assert result.exit_code == 0, result.stderr
    found = kernels(out, "keras3")
    names = ["conv2d", "conv2d_1", "dense", "probabilities"]
    assert global_sparsity(found, names) == pytest.approx(0.8, abs=0.01)
    per_layer = {n: float(np.mean(found[n] == 0)) for n in names}
    assert max(per_layer.values()) - min(per_layer.values()) > 0.2, per_layer
    record = json.loads(out.with_name(out.name + ".edgepack.json").read_text())["allocation"]
    assert set(record["layer_sparsity"]) == set(names) and record["achieved"] == pytest.approx(0.8, abs=1e-3)
    for name in names:
        assert per_layer[name] == pytest.approx(record["layer_sparsity"][name], abs=0.01)

    replay = tmp_path / "replay.keras"
    args = [a for n, s in record["layer_sparsity"].items() for a in ("--layer-sparsity", f"{n}={s}")]
    assert run("prune", digits["model"], "--data", digits["train"], "-o", replay, "--sparsity", "0.8",
               "--epochs", "1", *args).exit_code == 0
    again = kernels(replay, "keras3")
    assert {n: round(float(np.mean(again[n] == 0)), 3) for n in names} == \
        {n: round(per_layer[n], 3) for n in names}


def test_a_recipe_records_the_allocation_in_its_resolved_recipe(run, digits, tmp_path):
    recipe = tmp_path / "a.yaml"
    recipe.write_text(f"name: a\ndevice: host-cpu\nmodel: {digits['model']}\ndata: {{train: {digits['train']}}}\n"
                      "steps:\n  - prune: {sparsity: 0.8, epochs: 1, allocate: sensitivity}\n"
                      "  - profile: {where: estimate}\n")
    assert run("run", recipe, "-o", tmp_path / "bundle").exit_code == 0
    resolved = yaml.safe_load((tmp_path / "bundle" / "recipe.resolved.yaml").read_text())
    allocation = resolved["steps"][0]["prune"]["layer_sparsity"]
    assert set(allocation) == {"conv2d", "conv2d_1", "dense", "probabilities"}
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert manifest["steps"][0]["prune"]["layer_sparsity"] == allocation


@pytest.mark.parametrize("args, fragments", [
    (["--layer-sparsity", "nope=0.5"], ["nope", "not a layer being pruned", "dense"]),
    (["--layer-sparsity", "dense"], ["NAME=VALUE"]),
    (["--layer-sparsity", "dense=1.5"], ["dense: 1.5 is outside [0, 1)"]),
    (["--structure", "2:4", "--allocate", "sensitivity"], ["2:4", "allocate"]),
])
def test_bad_allocation_options_are_exit_2(run, digits, tmp_path, args, fragments):
    result = run("prune", digits["model"], "--data", digits["train"], "-o", tmp_path / "p.keras", "--epochs", "1",
                 *args)
    assert_one_line_error(result, 2, *fragments)


def test_the_cluster_allocation_keeps_the_bit_budget_and_gives_sensitive_layers_more_clusters():
    import math

    from edgepack.allocation.clusters import LEVELS, allocate

    weights = {"robust": 4000, "sensitive": 4000, "small": 100}
    curves = {"robust": [0.001 / k for k in LEVELS], "sensitive": [100.0 / k for k in LEVELS],
              "small": [1.0 / k for k in LEVELS]}
    allowed = {name: list(LEVELS) for name in weights}
    chosen = allocate(curves, weights, allowed, 16)
    bits = sum(weights[n] * math.log2(chosen[n]) for n in weights) / sum(weights.values())
    assert 3.5 < bits <= 4.0
    assert chosen["sensitive"] > 16 > chosen["robust"]


def distinct_values(kernel: np.ndarray) -> int:
    return int(np.unique(kernel).size)


def test_cluster_allocation_keeps_the_mean_bits_spends_them_unevenly_and_replays(run, digits, tmp_path):
    import math

    out = tmp_path / "clustered.keras"
    result = run("cluster", digits["model"], "--data", digits["train"], "-o", out, "--clusters", "16",
                 "--epochs", "1", "--allocate", "sensitivity", "--json")
    assert result.exit_code == 0, result.stderr
    found = kernels(out, "keras3")
    record = json.loads(out.with_name(out.name + ".edgepack.json").read_text())["allocation"]
    names = sorted(record["layer_clusters"])
    assert names == ["conv2d", "conv2d_1", "dense", "probabilities"]
    counts = {n: distinct_values(found[n]) for n in names}
    for name in names:  # the saved kernel holds at most the allocated number of values
        assert counts[name] <= record["layer_clusters"][name]
    sizes = {n: found[n].size for n in names}
    bits = sum(sizes[n] * math.log2(record["layer_clusters"][n]) for n in names) / sum(sizes.values())
    assert bits <= 4.0 + 1e-9
    assert len(set(record["layer_clusters"].values())) > 1, record["layer_clusters"]

    replay = tmp_path / "replay.keras"
    args = [a for n, k in record["layer_clusters"].items() for a in ("--layer-clusters", f"{n}={k}")]
    assert run("cluster", digits["model"], "--data", digits["train"], "-o", replay, "--epochs", "1",
               *args).exit_code == 0
    again = kernels(replay, "keras3")
    assert all(distinct_values(again[n]) <= record["layer_clusters"][n] for n in names)
    assert {n: distinct_values(again[n]) for n in names} == counts


@pytest.mark.parametrize("args, fragments", [
    (["--layer-clusters", "nope=8"], ["nope", "not a layer being clustered", "dense"]),
    (["--layer-clusters", "dense=1"], ["--layer-clusters", "dense: 1 is outside [2, 65536]"]),
])
def test_bad_cluster_allocation_options_are_exit_2(run, digits, tmp_path, args, fragments):
    result = run("cluster", digits["model"], "--data", digits["train"], "-o", tmp_path / "c.keras", "--epochs", "1",
                 *args)
    assert_one_line_error(result, 2, *fragments)


def test_damage_curves_are_measured_once_per_model_output_and_rows():
    """A study's trials allocate different budgets from the same curves: with a memo naming the
    model, the curves of the same layers on the same rows are measured once per process."""
    import keras

    from edgepack.allocation.damage import damage_curves

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="d")])
    calls = []

    def predict(rows):
        calls.append(len(rows))
        return np.asarray(model(rows))

    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    changes = [lambda kernel: kernel * 0.5, lambda kernel: kernel * 0]
    first = damage_curves(model, ["d"], x, predict, changes, memo="digits-sha output 0")
    measured = len(calls)
    assert damage_curves(model, ["d"], x, predict, changes, memo="digits-sha output 0") == first
    assert len(calls) == measured, "the second call measured again"
    damage_curves(model, ["d"], x + 1, predict, changes, memo="digits-sha output 0")
    damage_curves(model, ["d"], x, predict, changes, memo="other-sha output 0")
    assert len(calls) == 3 * measured, "other rows or another model are measured"
