"""The Keras 3 <-> tf_keras bridge (every supported layer, both directions) and tf.distribute."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import ROOT


def _images(keras):
    layers = keras.layers
    inputs = keras.Input((8, 8, 3), name="img")
    h = layers.ZeroPadding2D(1)(inputs)
    h = layers.Conv2D(8, 3, use_bias=False, name="c1", kernel_regularizer=keras.regularizers.L2(1e-4))(h)
    h = layers.BatchNormalization(name="bn")(h)
    h = layers.ReLU(max_value=6.0)(h)
    d = layers.DepthwiseConv2D(3, padding="same", name="dw")(h)
    c = layers.Concatenate()([layers.Add()([h, d]), h])
    pooled = layers.Concatenate()([layers.GlobalAveragePooling2D()(layers.AveragePooling2D(2)(c)),
                                   layers.GlobalMaxPooling2D()(layers.MaxPooling2D(2)(c))])
    h = layers.Flatten()(layers.Reshape((4, 8))(pooled))
    h = layers.Dense(16, activation="relu6", name="d1")(layers.Dropout(0.1)(h))
    h = layers.Dense(5, name="logits")(layers.Activation("tanh")(h))
    return keras.Model(inputs, layers.Softmax()(h), name="images")


def _mobile(keras):
    """The layers of small mobile models: rescaling, hard-swish, a separable convolution with swish, a
    squeeze-excite block (Multiply, hard-sigmoid) and a transposed convolution."""
    layers = keras.layers
    inputs = keras.Input((8, 8, 3), name="img")
    h = layers.Conv2D(8, 3, padding="same", name="stem")(layers.Rescaling(1 / 255.0, offset=-0.5)(inputs))
    h = layers.Activation("hard_swish" if keras.__name__ == "keras" else "swish")(h)
    h = layers.SeparableConv2D(16, 3, padding="same", activation="swish", name="sep")(h)
    se = layers.Conv2D(4, 1, activation="relu", name="se_reduce")(layers.GlobalAveragePooling2D(keepdims=True)(h))
    gate = "hard_sigmoid" if keras.__name__ == "keras" else "sigmoid"  # tf_keras' hard_sigmoid is another function
    se = layers.Conv2D(16, 1, activation=gate, name="se_expand")(se)
    h = layers.Conv2DTranspose(8, 3, strides=2, padding="same", name="up")(layers.Multiply()([h, se]))
    h = layers.Dense(5, name="logits")(layers.GlobalAveragePooling2D()(layers.LeakyReLU()(h)))
    return keras.Model(inputs, layers.Softmax()(h), name="mobile")


def _sequence(keras):
    layers = keras.layers
    return keras.Sequential([keras.Input((16, 2)), layers.ZeroPadding1D(1), layers.Conv1D(4, 3, activation="relu"),
                             layers.MaxPooling1D(2), layers.AveragePooling1D(2), layers.GlobalMaxPooling1D(),
                             layers.Dense(3)], name="sequence")


def _sequence_functional(keras):
    inputs = keras.Input((16, 2))
    h = keras.layers.GlobalAveragePooling1D()(keras.layers.Conv1D(4, 3)(inputs))
    return keras.Model(inputs, keras.layers.Dense(2)(h))


def _nested(keras):
    """A Sequential backbone called with training=False and a functional block whose 'head' clashes with
    the outer model's 'head', inside one functional model."""
    layers = keras.layers
    backbone = keras.Sequential([keras.Input((8, 8, 3)), layers.Conv2D(6, 3, name="conv"),
                                 layers.BatchNormalization(name="bn"), layers.ReLU()], name="backbone")
    block_in = keras.Input((6, 6, 6))
    block = keras.Model(block_in, layers.Conv2D(4, 1, name="head")(block_in), name="block")
    inputs = keras.Input((8, 8, 3), name="img")
    h = layers.GlobalAveragePooling2D()(block(backbone(inputs, training=False)))
    return keras.Model(inputs, layers.Dense(3, name="head")(h), name="nested")


def _randomise(model):
    from edgepack.compress.bridge import leaf_layers

    rng = np.random.default_rng(1)
    for _, layer in leaf_layers(model):
        weights = layer.get_weights()
        if weights:  # non-trivial BN statistics too (variance kept positive)
            layer.set_weights([np.abs(w) + 0.5 if "variance" in v.name else w + rng.normal(size=w.shape) * 0.1
                               for w, v in zip(weights, layer.weights)])
    return model


@pytest.mark.parametrize("source", ["keras3", "tf_keras"])
@pytest.mark.parametrize("builder", [_images, _mobile, _sequence, _sequence_functional, _nested])
def test_round_trip_keeps_graph_weights_and_outputs(source, builder):
    import keras
    import tf_keras

    from edgepack.compress.bridge import flavor_of, leaf_layers, rebuild
    from edgepack.compress.layers import check_supported

    module, other = (keras, "tf_keras") if source == "keras3" else (tf_keras, "keras3")
    model = _randomise(builder(module))
    check_supported(model, "test")
    bridged = rebuild(model, other)
    back = rebuild(bridged, source)
    assert flavor_of(bridged) == other and flavor_of(back) == source
    assert type(bridged).__name__ == type(model).__name__ or type(model).__name__ != "Sequential"
    x = np.random.default_rng(0).normal(size=(4, *model.inputs[0].shape[1:])).astype(np.float32)
    expected = model.predict(x, verbose=0)
    np.testing.assert_allclose(bridged.predict(x, verbose=0), expected, atol=1e-5)
    np.testing.assert_allclose(back.predict(x, verbose=0), expected, atol=1e-5)
    flat = dict(leaf_layers(back))
    for name, layer in leaf_layers(model):  # bit-exact weights: zeros and clustered values survive
        for a, b in zip(layer.get_weights(), flat[name].get_weights()):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("source", ["keras3", "tf_keras"])
def test_nested_models_are_flattened_with_their_layer_names(source):
    import keras
    import tf_keras

    from edgepack.compress.bridge import copy_weights, rebuild

    module = keras if source == "keras3" else tf_keras
    model = _randomise(_nested(module))
    flat = rebuild(model, "tf_keras")
    names = [layer.name for layer in flat.layers]
    assert {"conv", "bn", "block_head", "head"} <= set(names) and "backbone" not in names
    bn_call = next(n for n in flat.get_config()["layers"] if n["name"] == "bn")["inbound_nodes"][0]
    assert bn_call[0][3]["training"] is False  # the backbone was called with training=False
    for layer in flat.layers:  # new weights, then copied back into the nested original by name
        layer.set_weights([w + 1.0 for w in layer.get_weights()])
    copy_weights(flat, model)
    assert np.array_equal(model.get_layer("block").get_layer("head").kernel.numpy(),
                          flat.get_layer("block_head").kernel.numpy())
    assert np.array_equal(model.get_layer("head").kernel.numpy(), flat.get_layer("head").kernel.numpy())


def test_regularizer_survives_the_bridge():
    import keras

    from edgepack.compress.bridge import rebuild

    bridged = rebuild(_images(keras), "tf_keras")
    assert bridged.get_layer("c1").kernel_regularizer is not None


def test_layer_classes_of_the_users_own_are_refused_naming_them():
    import keras

    from edgepack.compress.layers import check_supported
    from edgepack.errors import ModelError

    class Doubler(keras.layers.Layer):
        def call(self, x):
            return x * 2.0

    inputs = keras.Input((4, 3))
    model = keras.Model(inputs, Doubler(name="twice")(keras.layers.Dense(3)(inputs)))
    with pytest.raises(ModelError, match="layer 'twice' \\(Doubler\\) is a class of its own"):
        check_supported(model, "m.keras")


def test_keras3_operations_between_layers_become_tensorflow_operations():
    import keras

    from edgepack.compress.bridge import check_same_function, rebuild

    inputs = keras.Input((4,))
    h = keras.layers.Dense(4, name="d")(inputs)
    gate = keras.layers.ReLU(6.0)(h + 3.0) * (1.0 / 6.0)  # MobileNetV3's hard-sigmoid: two Keras 3 operations
    model = keras.Model(inputs, keras.ops.negative(gate) - h)
    flat = rebuild(model, "tf_keras")
    assert [type(layer).__name__ for layer in flat.layers].count("TFOpLambda") == 4
    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32) * 4
    assert check_same_function(model, flat, x, "m") < 1e-6
    np.testing.assert_allclose(flat.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_a_rebuild_that_computes_something_else_is_refused():
    import keras

    from edgepack.compress.bridge import check_same_function, rebuild
    from edgepack.errors import ModelError

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="d")(keras.layers.LayerNormalization(name="ln")(inputs)))
    flat = rebuild(model, "tf_keras")
    flat.get_layer("d").set_weights([w + 1.0 for w in flat.get_layer("d").get_weights()])
    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    with pytest.raises(ModelError, match="does not compute what the model.*not tested: ln \\(LayerNormalization\\)"):
        check_same_function(model, flat, x, "m.keras")


def test_an_operation_without_a_tensorflow_twin_is_named():
    import keras

    from edgepack.compress.bridge import rebuild
    from edgepack.errors import ModelError

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.ops.cumsum(keras.layers.Dense(4)(inputs), axis=1))
    with pytest.raises(ModelError, match="Keras operation .*Cumsum.* outside any layer"):
        rebuild(model, "tf_keras")


def test_every_supported_layer_goes_through_prune_cluster_and_int8(tmp_path):
    import keras

    from edgepack.loading.data import DataSpec
    from edgepack.steps.cluster import ClusterConfig, cluster
    from edgepack.steps.prune import PruneConfig, prune
    from edgepack.steps.quantize import QuantizeConfig, quantize

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", x=rng.random((96, 8, 8, 3), dtype=np.float32), y=rng.integers(0, 5, 96))
    data = DataSpec(source=str(tmp_path / "data.npz"))
    _images(keras).save(tmp_path / "m.keras")
    pruned = prune(PruneConfig(model=tmp_path / "m.keras", data=data, output=tmp_path / "p.keras", sparsity=0.7,
                               epochs=1))
    clustered = cluster(ClusterConfig(model=pruned.path, data=data, output=tmp_path / "c.keras", clusters=4,
                                      preserve_sparsity=True))
    assert clustered.loss.from_logits is False  # the model ends in a Softmax layer
    model = keras.models.load_model(clustered.path, compile=False)
    for name in ("c1", "d1", "logits"):
        kernel = model.get_layer(name).kernel.numpy()
        assert np.mean(kernel == 0) >= 0.69 and np.unique(kernel).size <= 4, name
    assert np.mean(model.get_layer("dw").kernel.numpy() == 0) == 0  # tfmot leaves depthwise kernels dense
    tflite = quantize(QuantizeConfig(model=clustered.path, output=tmp_path / "m.tflite", mode="int8",
                                     calibration=data))
    assert tflite.size_bytes > 0


def test_separable_transposed_and_squeeze_excite_layers_are_pruned_and_clustered(tmp_path):
    import keras

    from edgepack.loading.data import DataSpec
    from edgepack.steps.cluster import ClusterConfig, cluster
    from edgepack.steps.prune import PruneConfig, prune

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", x=rng.random((64, 8, 8, 3), dtype=np.float32) * 255, y=rng.integers(0, 5, 64))
    data = DataSpec(source=str(tmp_path / "data.npz"))
    _mobile(keras).save(tmp_path / "m.keras")
    pruned = prune(PruneConfig(model=tmp_path / "m.keras", data=data, output=tmp_path / "p.keras", sparsity=0.6,
                               epochs=1))
    clustered = cluster(ClusterConfig(model=pruned.path, data=data, output=tmp_path / "c.keras", clusters=8,
                                      preserve_sparsity=True, epochs=1))
    model = keras.models.load_model(clustered.path, compile=False)
    kernels = {"stem": "kernel", "sep": "pointwise_kernel", "se_reduce": "kernel", "se_expand": "kernel",
               "up": "kernel", "logits": "kernel"}
    for name, attribute in kernels.items():
        kernel = getattr(model.get_layer(name), attribute).numpy()
        assert np.mean(kernel == 0) >= 0.59 and np.unique(kernel).size <= 8, name
    assert np.mean(model.get_layer("sep").depthwise_kernel.numpy() == 0) == 0, "tfmot prunes the pointwise part"


MIRRORED = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from edgepack.util.tf import import_tf
    tf = import_tf()
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from edgepack.loading.data import DataSpec
    from edgepack.steps.cluster import ClusterConfig, cluster
    from edgepack.steps.prune import PruneConfig, prune
    model, train, out = map(Path, sys.argv[1:4])
    data = DataSpec(source=str(train))
    p = prune(PruneConfig(model=model, data=data, output=out / "p.keras", sparsity=0.8, epochs=1,
                          distribute="mirrored"))
    c = cluster(ClusterConfig(model=p.path, data=data, output=out / "c.keras", preserve_sparsity=True, epochs=1,
                              distribute="mirrored"))
    print(json.dumps({"prune": p.replicas, "cluster": c.replicas, "path": str(c.path)}))
""")


def test_mirrored_strategy_on_two_logical_cpus(digits, tmp_path):
    import keras

    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", MIRRORED, str(digits["model"]), str(digits["train"]), str(tmp_path)],
                          capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["prune"] == 2 and report["cluster"] == 2
    model = keras.models.load_model(report["path"], compile=False)
    for layer in model.layers:
        if type(layer).__name__ in ("Conv2D", "Dense"):
            kernel = layer.kernel.numpy()
            assert np.mean(kernel == 0) >= 0.79 and np.unique(kernel).size <= 16, layer.name
