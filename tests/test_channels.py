"""Channel pruning: the groups found, the exact rebuild, the counts read back, plain Keras and the converter.

The exact-rebuild property: when every consumer of the channels removed already reads them with zero
weights (zeroed here by the test, from each fixture's hand-written list of consumers), the smaller
model computes what the larger one does, to 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest

import channel_models as cm

MAKERS = (*cm.KERAS3, cm.tf_keras_sequential)


def _removed(fixture, rng) -> dict[str, list[int]]:
    """Half of each group's channels (at least one stays), chosen at random, by first producer."""
    removed = {}
    for first in fixture.groups:
        width = int(cm.layer(fixture.model, first).get_config().get("filters")
                    or cm.layer(fixture.model, first).get_config().get("units"))
        removed[first] = sorted(rng.choice(width, width // 2, replace=False).tolist())
    return removed


def _inputs(model, rows: int = 6) -> np.ndarray:
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    return np.random.default_rng(2).uniform(-1, 1, (rows, *shape)).astype(np.float32)


def _keep_of(graph, fixture, removed):
    keep = {}
    for first, channels in removed.items():
        group = graph.group_of(first)
        keep[group.id] = np.array([c for c in range(group.width) if c not in set(channels)])
    return keep


@pytest.mark.parametrize("maker", MAKERS, ids=lambda m: m.__name__)
def test_groups_found_are_the_hand_written_ones(maker):
    from edgepack.channels.graph import analyze
    from edgepack.channels.rebuild import flatten

    fixture = cm.build(maker)
    graph = analyze(flatten(fixture.model))
    found = {tuple(sorted(g.producers)) for g in graph.prunable}
    assert found == {tuple(sorted(p)) for p in fixture.groups.values()}
    assert all("head" in g.producers for g in graph.fenced if g.producers)  # the output layer stays whole


@pytest.mark.parametrize("maker", MAKERS, ids=lambda m: m.__name__)
def test_rebuild_is_exact_when_the_removed_channels_are_unread(maker, tmp_path):
    from edgepack.channels.graph import analyze
    from edgepack.channels.rebuild import flatten, pruned_model

    fixture = cm.build(maker)
    removed = _removed(fixture, np.random.default_rng(0))
    cm.zero_consumers(fixture, removed)
    x = _inputs(fixture.model)
    expected = np.asarray(fixture.model(x, training=False))
    flat = flatten(fixture.model)
    graph = analyze(flat)
    pruned = pruned_model(flat, graph, _keep_of(graph, fixture, removed))
    assert np.max(np.abs(np.asarray(pruned(x, training=False)) - expected)) <= 1e-5

    path = tmp_path / "pruned.keras"
    pruned.save(path)
    if fixture.flavor == "tf_keras":
        import tf_keras as plain
    else:
        import keras as plain
    loaded = plain.models.load_model(path)   # plain Keras: no edgepack class in the file
    assert np.max(np.abs(np.asarray(loaded(x, training=False)) - expected)) <= 1e-5
    for first, producers in fixture.groups.items():
        width = _width(fixture.model, first)
        for name in producers:
            kernel = _output_kernel(cm.layer(loaded, name))
            assert kernel.shape[-1] == width - len(removed[first]), name   # read back from the saved weights


def _width(model, name) -> int:
    config = cm.layer(model, name).get_config()
    return int(config.get("filters") or config.get("units"))


def _output_kernel(layer):
    weights = {w.path.split("/")[-1] if hasattr(w, "path") else w.name.split("/")[-1].split(":")[0]: w
               for w in layer.weights}
    kernel = weights.get("pointwise_kernel", weights.get("kernel"))
    return np.asarray(kernel)


@pytest.mark.parametrize("maker", [cm.residual, cm.separable, cm.tf_keras_sequential], ids=lambda m: m.__name__)
def test_pruned_model_converts_and_runs_in_litert(maker, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    import edgepack

    from edgepack.channels.graph import analyze
    from edgepack.channels.rebuild import flatten, pruned_model

    fixture = cm.build(maker)
    removed = _removed(fixture, np.random.default_rng(1))
    flat = flatten(fixture.model)
    graph = analyze(flat)
    pruned = pruned_model(flat, graph, _keep_of(graph, fixture, removed))
    path = tmp_path / ("pruned.h5" if fixture.flavor == "tf_keras" else "pruned.keras")
    pruned.save(path)
    x = _inputs(pruned, 1)
    np.savez(tmp_path / "calib.npz", x=np.repeat(x, 8, axis=0))
    edgepack.quantize(path, tmp_path / "pruned.tflite", mode="float32")
    interpreter = Interpreter(model_path=str(tmp_path / "pruned.tflite"))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert np.max(np.abs(out - np.asarray(pruned(x, training=False)))) <= 1e-4


def test_fences_name_the_layer_the_walk_cannot_follow():
    import keras

    from edgepack.channels.graph import analyze

    L = keras.layers
    inp = keras.Input((8, 8, 3))
    a = L.Conv2D(8, 3, padding="same", name="a")(inp)
    r = L.Reshape((64, 8), name="reshape")(a)
    b = L.Conv1D(4, 1, name="b")(r)
    out = L.Dense(3, name="head")(L.GlobalAveragePooling1D(name="gap")(b))
    graph = analyze(keras.Model(inp, out))
    assert {tuple(g.producers) for g in graph.prunable} == {("b",)}
    fenced = {g.producers[0]: g.fences for g in graph.fenced}
    assert any("reshape" in reason and "Reshape" in reason for reason in fenced["a"])


def test_l1_ranks_a_silent_channel_last():
    from edgepack.channels.criteria import Criterion, rank
    from edgepack.channels.graph import analyze

    fixture = cm.build(cm.depthwise)
    for name, index, axis in (("a", 0, -1), ("a", 1, 0), ("dw", 0, 2), ("dw", 1, 0), ("b", 0, 2)):
        layer = cm.layer(fixture.model, name)
        weights = layer.get_weights()
        np.moveaxis(weights[index], axis, 0)[3] = 0.0   # every weight tied to channel 3 but BatchNorm's
        layer.set_weights(weights)
    graph = analyze(fixture.model)
    scores, _ = rank(fixture.model, graph, Criterion.L1)
    group = graph.group_of("a")
    assert int(np.argmin(scores[group.id])) == 3


# --- prune --structure channels, end to end (CLI) ---------------------------------------------------

import json  # noqa: E402

@pytest.fixture(scope="module")
def bn_model(bn_residual) -> dict:
    return bn_residual


def _conv_widths(model) -> dict[str, int]:
    return {layer.name: int(np.asarray(layer.weights[0]).shape[-1]) for layer in model.layers
            if type(layer).__name__ in ("Conv2D", "Dense")}


def test_prune_channels_writes_a_smaller_model_that_meets_the_macs_target(run, bn_model, tmp_path):
    import keras

    out = tmp_path / "channels.keras"
    result = run("prune", bn_model["model"], "--data", bn_model["train"], "--val", bn_model["val"], "-o", out,
                 "--structure", "channels", "--target-macs", "0.5", "--round-to", "4", "--allocate", "sensitivity",
                 "--epochs", "2", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    source, pruned = keras.models.load_model(bn_model["model"]), keras.models.load_model(out)
    before, after = _conv_widths(source), _conv_widths(pruned)
    assert set(before) == set(after)
    head = source.layers[-1].name   # auto-named: dense_N when other models were built in the process
    assert all(after[name] % 4 == 0 and after[name] <= before[name] for name in before if name != head)
    assert after[head] == before[head] == 10            # the output layer keeps its width
    assert pruned.count_params() < source.count_params()
    # MACs counted by the test from the saved kernels: every Conv2D output is 16x16 or 8x8 here
    def macs(model):
        total = 0
        for layer in model.layers:
            if type(layer).__name__ == "Conv2D":
                kh, kw, cin, cout = np.asarray(layer.weights[0]).shape
                total += int(np.prod(layer.output.shape[1:3])) * kh * kw * cin * cout
        return total
    assert macs(pruned) <= 0.5 * macs(source) * 1.001
    kept = report["channels"]["layer_channels"]
    assert all(after[name] == count for name, count in kept.items())   # the recorded allocation is what was saved
    sidecar = json.loads(out.with_name(out.name + ".edgepack.json").read_text())
    assert sidecar["channels"]["layer_channels"] == kept


@pytest.mark.parametrize("args, words", [
    (("--sparsity", "1"), "sparsity"),
    (("--sparsity", "-0.1"), "sparsity"),
    (("--round-to", "0"), "round-to"),
    (("--target-latency", "1"), "--device"),
    (("--target-macs", "0.001", "--round-to", "8"), "no allocation reaches"),
    (("--layer-channels", "conv2d=0"), "remove every channel"),
    (("--allocate", "latency"), "--device"),
])
def test_bad_channel_budgets_exit_2_with_one_line(run, bn_model, tmp_path, args, words):
    out = tmp_path / "bad.keras"
    result = run("prune", bn_model["model"], "--data", bn_model["train"], "-o", out, "--structure", "channels",
                 "--epochs", "1", *args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert words in result.stderr and len(lines) <= 2 and "Traceback" not in result.stderr
    assert not out.exists()


def test_recipes_validate_refuses_a_latency_target_on_a_device_without_a_cost_model(run, bn_model, tmp_path):
    device = tmp_path / "bare.yaml"
    device.write_text("name: bare\narch: x86_64\nmodes: [int8, float32]\nmemory_mb: 512\n")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"name: r\ndevice: {device}\nmodel: {bn_model['model']}\ndata: {{train: {bn_model['train']}}}\n"
                      "steps:\n  - prune: {structure: channels, target_latency: 2}\n  - quantize: {mode: int8}\n")
    result = run("recipes", "validate", recipe)
    assert result.exit_code == 2 and "estimate" in result.stderr, (result.stdout, result.stderr)
    good = tmp_path / "good.yaml"
    good.write_text(recipe.read_text().replace(str(device), "raspberry-pi-4"))
    assert run("recipes", "validate", good).exit_code == 0


def test_a_recipe_prunes_channels_then_clusters_and_quantizes_and_records_the_allocation(run, bn_model, tmp_path):
    """Channel pruning composes with the steps after it; the resolved recipe replays its allocation."""
    import yaml
    from ai_edge_litert.interpreter import Interpreter

    recipe = tmp_path / "c.yaml"
    recipe.write_text(f"name: c\ndevice: raspberry-pi-4\nmodel: {bn_model['model']}\n"
                      f"data: {{train: {bn_model['train']}, val: {bn_model['val']}}}\n"
                      "steps:\n  - prune: {structure: channels, target_latency: 0.11, allocate: latency, round_to: 4, "
                      "epochs: 2}\n  - cluster: {clusters: 16, epochs: 1}\n  - quantize: {mode: int8}\n"
                      "  - profile: {where: estimate}\ngates: {max_macs: 5.0e5}\n")
    result = run("run", recipe, "-o", tmp_path / "bundle")
    assert result.exit_code == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "bundle" / "report.json").read_text())
    gate = next(g for g in report["gates"] if g["gate"] == "max_macs")
    assert gate["passed"] and 0 < gate["value"] <= 5.0e5   # the source model needs 5.4e5
    resolved = yaml.safe_load((tmp_path / "bundle" / "recipe.resolved.yaml").read_text())
    allocation = resolved["steps"][0]["prune"]["layer_channels"]
    assert allocation and all(count % 4 == 0 for count in allocation.values())
    assert sum(allocation.values()) < 48   # 0.11 ms on the Pi 4's cost model needs channels removed (0.12 ms whole)
    interpreter = Interpreter(model_path=str(tmp_path / "bundle" / "model.tflite"))
    widths = {d["name"]: d["shape"] for d in interpreter.get_tensor_details()}
    # the int8 model holds the pruned widths: no filter tensor is as wide as the source's 16-channel stage
    filters = [shape for name, shape in widths.items() if len(shape) == 4 and "conv2d" in name.lower()]
    assert filters and max(int(shape[0]) for shape in filters) <= max(allocation.values())


def test_round_to_defaults_to_the_devices_channel_multiple(run, bn_model, tmp_path):
    import keras

    out = tmp_path / "r.keras"
    result = run("prune", bn_model["model"], "--data", bn_model["train"], "-o", out, "--structure", "channels",
                 "--sparsity", "0.6", "--device", "host-cpu", "--epochs", "1", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["channels"]["round_to"] == 8   # host-cpu's channel_multiple
    pruned = keras.models.load_model(out)
    widths = _conv_widths(pruned)
    head = pruned.layers[-1].name
    assert all(width % 8 == 0 for name, width in widths.items() if name != head)
