"""Model loading: flavors told apart from the files themselves, unsafe code refused before it runs."""

from __future__ import annotations

import os

import pytest

from conftest import assert_one_line_error

MARK_ENV = "EDGEPACK_TEST_LAMBDA_MARK"


def _lambda_models(tmp_path):
    """Keras 3 and tf_keras models whose Lambda writes a marker file whenever it runs."""
    import keras
    import tf_keras

    os.environ[MARK_ENV] = str(tmp_path / "lambda-ran")
    body = lambda t: t * float(__import__("pathlib").Path(__import__("os").environ["EDGEPACK_TEST_LAMBDA_MARK"]).write_text("ran") > 0)  # noqa: E731,E501
    paths = {}
    k3 = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(body, name="evil"), keras.layers.Dense(2)])
    k3.save(tmp_path / "k3.keras")
    paths["k3.keras"] = tmp_path / "k3.keras"
    k2 = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Lambda(body, name="evil"), tf_keras.layers.Dense(2)])
    k2.save(tmp_path / "k2.keras")
    k2.save(tmp_path / "k2.h5")
    paths["k2.keras"] = tmp_path / "k2.keras"
    paths["k2.h5"] = tmp_path / "k2.h5"
    (tmp_path / "lambda-ran").unlink(missing_ok=True)
    return paths


def test_lambda_layers_are_refused_and_their_code_never_runs(run, tmp_path):
    paths = _lambda_models(tmp_path)
    for name, path in paths.items():
        for command in (["convert", path, "-o", tmp_path / "x.tflite"], ["inspect", path]):
            assert_one_line_error(run(*command), 4, "Lambda layer 'evil'", "--trust-model")
        assert not (tmp_path / "lambda-ran").exists(), f"the Lambda in {name} ran"
    assert not (tmp_path / "x.tflite").exists()


def test_trust_model_loads_a_lambda_model(run, tmp_path):
    paths = _lambda_models(tmp_path)
    result = run("inspect", paths["k2.h5"], "--trust-model", "--json")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "lambda-ran").exists(), "the marker proves the refusal test above can see code running"


def test_custom_code_from_another_module_is_refused(tmp_path):
    from edgepack.loading.safety import find_unsafe_objects

    config = {"class_name": "Functional", "config": {"layers": [
        {"module": "keras.layers", "class_name": "Dense", "config": {"name": "ok"}},
        {"module": "mypkg.layers", "class_name": "Magic", "config": {"name": "magic"}},
        {"module": "keras.layers", "class_name": "Dense",
         "config": {"name": "act", "activation": {"module": "__main__", "class_name": "function", "config": "f"}}},
    ]}}
    found = find_unsafe_objects(config)
    assert [(f.class_name, f.name) for f in found] == [("Magic", "magic"), ("function", None)]
    assert "mypkg.layers" in found[0].describe()


@pytest.mark.parametrize("fixture, flavor", [("digits", "keras3"), ("tfkeras_digits", "tf_keras")])
def test_flavor_is_read_from_the_archive_metadata(request, fixture, flavor):
    from edgepack.loading.model import identify_model

    info = identify_model(request.getfixturevalue(fixture)["model"])
    assert info.flavor.value == flavor
    assert info.unsafe == []


def test_a_file_that_is_not_a_keras_archive_is_exit_4(run, tmp_path):
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    assert_one_line_error(run("inspect", bad), 4, "broken.keras", "not a readable .keras archive")


def test_weights_only_h5_is_exit_4(run, digits, tmp_path):
    import keras

    keras.models.load_model(digits["model"]).save_weights(tmp_path / "w.weights.h5")
    (tmp_path / "w.weights.h5").rename(tmp_path / "w.h5")
    assert_one_line_error(run("inspect", tmp_path / "w.h5"), 4, "weights only")


def test_unknown_extension_is_exit_4(run, tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"x")
    assert_one_line_error(run("convert", tmp_path / "m.onnx", "-o", tmp_path / "m.tflite"), 4, "unknown model format")


def test_a_model_built_with_a_dict_of_outputs_predicts_the_output_named_by_its_layer(tmp_path):
    import keras
    import numpy as np

    from edgepack.loading.model import load_model

    inputs = keras.Input((4,))
    model = keras.Model(inputs, {"zeta_out": keras.layers.Dense(3, name="zeta")(inputs),
                                 "alpha_out": keras.layers.Dense(2, name="alpha")(inputs)})
    model.save(tmp_path / "dict.keras")
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    expected = model.predict(x, verbose=0)
    loaded = load_model(tmp_path / "dict.keras")
    assert sorted(loaded.output_names) == ["alpha", "zeta"]
    np.testing.assert_allclose(loaded.predict(x, output="zeta"), expected["zeta_out"], rtol=1e-5)
    np.testing.assert_allclose(loaded.predict(x, output="alpha"), expected["alpha_out"], rtol=1e-5)
