"""prune and cluster on the models users bring: keras.applications' MobileNetV3Small (weights=None),
nested sub-models and a model with two outputs. Every figure is read from the saved files with Keras."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import assert_one_line_error, digits_build

SPARSITY = 0.5


def _digits_rgb(count: int) -> tuple[np.ndarray, np.ndarray]:
    """The digits upscaled 4x to 32x32, grey as RGB in [0, 255] (MobileNetV3 rescales its input itself)."""
    (x, y), _ = digits_build.digits_split()
    x = np.repeat(np.repeat(x[:count], 4, axis=1), 4, axis=2)
    return np.repeat(x, 3, axis=3) * 255.0, y[:count]


@pytest.fixture(scope="module")
def mobilenet(tmp_path_factory, run) -> dict:
    """MobileNetV3Small (alpha 0.75, 32x32, 10 classes, random weights), pruned and then clustered by the CLI."""
    import keras

    folder = tmp_path_factory.mktemp("mobilenet")
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV3Small(input_shape=(32, 32, 3), alpha=0.75, weights=None, classes=10,
                                                include_preprocessing=True)
    model.save(folder / "m.keras")
    x, y = _digits_rgb(128)
    np.savez(folder / "train.npz", x=x, y=y)
    found = {"model": folder / "m.keras", "train": folder / "train.npz", "x": x, "source": model}
    for step, source, args in (("prune", "m.keras", ["--sparsity", str(SPARSITY), "--schedule", "constant"]),
                               ("cluster", "prune.keras", ["--clusters", "8", "--preserve-sparsity"])):
        result = run(step, folder / source, "--data", found["train"], "-o", folder / f"{step}.keras",
                     "--epochs", "1", "--batch-size", "128", *args, "--json")
        assert result.exit_code == 0, result.stderr[-2000:]
        found[step] = {"doc": json.loads(result.stdout), "path": folder / f"{step}.keras"}
    return found


def _kernels(model, kind: str) -> dict[str, np.ndarray]:
    return {layer.name: np.asarray(layer.kernel.numpy()) for layer in model.layers if type(layer).__name__ == kind}


def test_mobilenet_v3_rebuilds_in_tf_keras_with_the_same_outputs(mobilenet):
    import keras

    from edgepack.compress.bridge import copy_weights, rebuild

    source, x = mobilenet["source"], mobilenet["x"][:16]
    flat = rebuild(source, "tf_keras")  # MobileNetV3's hard-sigmoid is Keras 3 operations between layers
    assert "TFOpLambda" in {type(layer).__name__ for layer in flat.layers}
    expected = np.asarray(source(x, training=False))
    np.testing.assert_allclose(np.asarray(flat(x, training=False)), expected, atol=1e-4)
    twin = keras.models.clone_model(source)  # fresh weights, then the rebuild's copied back by layer name
    copy_weights(flat, twin)
    np.testing.assert_allclose(np.asarray(twin(x, training=False)), expected, atol=1e-4)


def test_prune_reaches_the_sparsity_in_every_convolution_of_mobilenet_v3(mobilenet):
    import keras

    saved = keras.models.load_model(mobilenet["prune"]["path"], compile=False)
    source = mobilenet["source"]
    assert [layer.name for layer in saved.layers] == [layer.name for layer in source.layers]
    convolutions = _kernels(saved, "Conv2D")
    assert len(convolutions) == len(_kernels(source, "Conv2D")) > 30
    for name, kernel in convolutions.items():
        assert np.mean(kernel == 0) >= SPARSITY - 0.01, (name, np.mean(kernel == 0))
    depthwise = [layer.name for layer in source.layers if type(layer).__name__ == "DepthwiseConv2D"]
    for name in depthwise:  # tfmot cannot prune them: fine-tuned, left dense, and said so
        assert np.mean(saved.get_layer(name).kernel.numpy() == 0) < 0.01, name
    skipped = mobilenet["prune"]["doc"]["skipped"]
    assert sorted(skipped) == sorted(depthwise)
    assert all(reason.startswith("unsupported: ") for reason in skipped.values())


def test_cluster_keeps_the_zeros_and_8_values_per_mobilenet_v3_kernel(mobilenet):
    import keras

    saved = keras.models.load_model(mobilenet["cluster"]["path"], compile=False)
    for name, kernel in _kernels(saved, "Conv2D").items():
        assert np.unique(kernel).size <= 8 and np.mean(kernel == 0) >= SPARSITY - 0.01, name
    assert np.isfinite(saved.predict(mobilenet["x"][:8], verbose=0)).all()


def test_unsupported_refuse_on_mobilenet_v3_names_the_first_depthwise_layer(run, mobilenet, tmp_path):
    result = run("prune", mobilenet["model"], "--data", mobilenet["train"], "-o", tmp_path / "x.keras",
                 "--unsupported", "refuse")
    assert_one_line_error(result, 4, "layer 'expanded_conv_depthwise' (DepthwiseConv2D) cannot be pruned",
                          "11 such layers")


@pytest.fixture(scope="module")
def nested(tmp_path_factory) -> dict:
    """A model with a Sequential backbone called with training=False and a functional block whose layer
    'head' has the same name as the outer model's; pruned through the Python API."""
    import keras

    from edgepack.loading.data import DataSpec
    from edgepack.steps.prune import PruneConfig, prune

    folder = tmp_path_factory.mktemp("nested")
    keras.utils.set_random_seed(0)
    layers = keras.layers
    backbone = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(16, 3, name="conv"),
                                 layers.BatchNormalization(name="bn"), layers.ReLU()], name="backbone")
    block_in = keras.Input((6, 6, 16))
    block = keras.Model(block_in, layers.Conv2D(16, 1, activation="relu", name="head")(block_in), name="block")
    inputs = keras.Input((8, 8, 1), name="image")
    h = layers.GlobalAveragePooling2D()(block(backbone(inputs, training=False)))
    model = keras.Model(inputs, layers.Dense(10, activation="softmax", name="head")(h))
    model.get_layer("backbone").get_layer("bn").moving_mean.assign(np.full(16, 0.25, np.float32))
    model.save(folder / "m.keras")
    (x, y), _ = digits_build.digits_split()
    np.savez(folder / "train.npz", x=x[:256], y=y[:256])
    artifact = prune(PruneConfig(model=folder / "m.keras", data=DataSpec(source=str(folder / "train.npz")),
                                 output=folder / "p.keras", sparsity=0.75, epochs=1, batch_size=64))
    return {"source": model, "artifact": artifact}


def test_nested_models_keep_their_structure_and_their_kernels_are_pruned(nested):
    import keras

    saved = keras.models.load_model(nested["artifact"].path, compile=False)
    assert [layer.name for layer in saved.layers] == [layer.name for layer in nested["source"].layers]
    assert type(saved.get_layer("backbone")).__name__ == "Sequential"
    kernels = {"conv": saved.get_layer("backbone").get_layer("conv"), "block_head": saved.get_layer("block")
               .get_layer("head"), "head": saved.get_layer("head")}
    for name, layer in kernels.items():
        assert np.mean(layer.kernel.numpy() == 0) >= 0.74, name
    assert {row["name"] for row in nested["artifact"].layers if row["pruned"]} == set(kernels)


def test_a_nested_model_called_with_training_false_keeps_its_batch_statistics(nested):
    import keras

    saved = keras.models.load_model(nested["artifact"].path, compile=False)
    bn = saved.get_layer("backbone").get_layer("bn")
    np.testing.assert_array_equal(bn.moving_mean.numpy(), np.full(16, 0.25, np.float32))


@pytest.fixture(scope="module")
def two_outputs(tmp_path_factory) -> dict:
    """A digits model with a 'box' regression output and a 'face' classifier, trained on both."""
    import keras

    folder = tmp_path_factory.mktemp("two_outputs")
    (x, y), (x_val, y_val) = digits_build.digits_split()
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(64, 4)).astype(np.float32)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1), name="image")
    h = keras.layers.Dense(64, activation="relu", name="hidden")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, [keras.layers.Dense(4, name="box")(h),
                                 keras.layers.Dense(10, activation="softmax", name="face")(h)])
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss={"box": "mse", "face": "sparse_categorical_crossentropy"})
    model.fit(x, {"box": x.reshape(len(x), -1) @ mix, "face": y}, epochs=15, batch_size=64, verbose=0)
    model.save(folder / "m.keras")
    np.savez(folder / "train.npz", x=x, y=y)
    return {"model": folder / "m.keras", "train": folder / "train.npz", "x_val": x_val, "y_val": y_val,
            "source": model, "folder": folder}


def test_two_outputs_without_a_name_is_exit_2_listing_them(run, two_outputs, tmp_path):
    result = run("prune", two_outputs["model"], "--data", two_outputs["train"], "-o", tmp_path / "x.keras")
    assert_one_line_error(result, 2, "has 2 outputs (box, face)", "data.output")


def test_an_unknown_output_name_is_exit_2_listing_the_real_ones(two_outputs, tmp_path):
    from edgepack.errors import ConfigError
    from edgepack.loading.data import DataSpec
    from edgepack.steps.prune import PruneConfig, prune

    with pytest.raises(ConfigError, match="has no output 'score' \\(box, face\\)"):
        prune(PruneConfig(model=two_outputs["model"], data=DataSpec(source=str(two_outputs["train"]),
                                                                     output="score"), output=tmp_path / "x.keras"))


def test_the_named_output_learns_the_labels_and_the_other_keeps_its_predictions(two_outputs):
    import keras

    from edgepack.loading.data import DataSpec
    from edgepack.steps.cluster import ClusterConfig, cluster
    from edgepack.steps.prune import PruneConfig, prune

    data = DataSpec(source=str(two_outputs["train"]), output="face")
    folder = two_outputs["folder"]
    pruned = prune(PruneConfig(model=two_outputs["model"], data=data, output=folder / "p.keras", sparsity=0.8,
                               epochs=2))
    assert (pruned.output, pruned.self_distilled) == ("face", ["box"])
    assert pruned.loss.name == "sparse_categorical_crossentropy" and pruned.loss.source == "compile_config"
    clustered = cluster(ClusterConfig(model=pruned.path, data=data, output=folder / "c.keras", clusters=16,
                                      preserve_sparsity=True))
    assert clustered.loss.source == "compile_config"  # prune saved the face output's loss for the next step
    x, y = two_outputs["x_val"], two_outputs["y_val"]
    box_before, face_before = two_outputs["source"].predict(x, verbose=0)
    for path in (pruned.path, clustered.path):
        saved = keras.models.load_model(path, compile=False)
        for name in ("hidden", "box", "face"):
            assert np.mean(saved.get_layer(name).kernel.numpy() == 0) >= 0.79, (path.name, name)
        box, face = saved.predict(x, verbose=0)
        assert np.mean(face.argmax(1) == y) >= np.mean(face_before.argmax(1) == y) - 0.05, path.name
        # the box output had no labels: it stayed near the source's own predictions
        assert np.mean(np.abs(box - box_before)) <= 0.2 * np.mean(np.abs(box_before)), path.name
