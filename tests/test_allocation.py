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
