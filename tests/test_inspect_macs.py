"""``edgepack inspect`` counts the MACs of recurrent layers (per time step x steps), of the
Bidirectional and TimeDistributed wrappers and of nested models, in Keras 3 and tf_keras.

The expected figures are the formulas, computed here from the layer sizes the test chose:
LSTM 4 gates, GRU 3, SimpleRNN 1, each gate (input x units + units x units) per step.
"""

from __future__ import annotations

import importlib
import json

import pytest


def rnn(gates: int, inputs: int, units: int, steps: int) -> int:
    return gates * (inputs * units + units * units) * steps


def recurrent_model(keras, path):
    """Sequence (12 steps of 8) -> LSTM(16, sequences) -> GRU(8) -> Dense(4)."""
    model = keras.Sequential([keras.Input((12, 8)), keras.layers.LSTM(16, return_sequences=True, name="lstm"),
                              keras.layers.GRU(8, name="gru"), keras.layers.Dense(4, name="head")])
    model.save(path)
    return {"lstm": rnn(4, 8, 16, 12), "gru": rnn(3, 16, 8, 12), "head": 8 * 4}


def wrapped_model(keras, path):
    """A nested Sequential (inside it a nested functional model), Bidirectional, SimpleRNN and
    TimeDistributed in one functional model."""
    inner_in = keras.Input((32,))
    innermost = keras.Model(inner_in, keras.layers.Dense(8, name="d8")(inner_in), name="innermost")
    block = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, name="d32"), innermost], name="block")
    vector = keras.Input((16,), name="vector")
    sequence = keras.Input((10, 5), name="sequence")
    both = keras.layers.Bidirectional(keras.layers.LSTM(6), name="both")(sequence)
    simple = keras.layers.SimpleRNN(7, return_sequences=True, name="simple")(sequence)
    each = keras.layers.TimeDistributed(keras.layers.Dense(3), name="each")(simple)
    merged = keras.layers.Concatenate()([block(vector), both, keras.layers.Flatten()(each)])
    keras.Model([vector, sequence], keras.layers.Dense(2, name="out")(merged)).save(path)
    return {"block": 16 * 32 + 32 * 8, "both": 2 * rnn(4, 5, 6, 10), "simple": rnn(1, 5, 7, 10),
            "each": 10 * 7 * 3, "out": (8 + 12 + 30) * 2}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("macs")
    built = {}
    for flavor, module in (("keras3", "keras"), ("tf_keras", "tf_keras")):
        keras = importlib.import_module(module)
        keras.utils.set_random_seed(0)
        for name, make in (("recurrent", recurrent_model), ("wrapped", wrapped_model)):
            path = folder / f"{name}-{flavor}.keras"
            built[f"{name}-{flavor}"] = (path, make(keras, path))
    return built


def inspect_json(run, path) -> dict:
    result = run("inspect", path, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("name", ["recurrent-keras3", "recurrent-tf_keras", "wrapped-keras3", "wrapped-tf_keras"])
def test_macs_follow_the_formulas(run, models, name):
    path, expected = models[name]
    report = inspect_json(run, path)
    got = {layer["name"]: layer["macs"] for layer in report["layers"] if layer["name"] in expected}
    assert got == expected
    assert report["macs"] == sum(expected.values())
    assert "macs_note" not in report


def test_the_table_shows_the_total(run, models):
    path, expected = models["recurrent-tf_keras"]
    result = run("inspect", path)
    assert result.exit_code == 0, result.stderr
    assert f"{sum(expected.values()):,}" in result.stdout and f"{expected['lstm']:,}" in result.stdout


def test_a_free_sequence_length_gives_macs_per_time_step(run, tmp_path):
    import keras

    model = keras.Sequential([keras.Input((None, 8)), keras.layers.LSTM(16, name="lstm"), keras.layers.Dense(4)])
    model.save(tmp_path / "free.keras")
    report = inspect_json(run, tmp_path / "free.keras")
    lstm = report["layers"][0]
    assert lstm["macs"] == rnn(4, 8, 16, 1) and lstm["macs_per_time_step"] is True
    assert "lstm" in report["macs_note"] and "one time step" in report["macs_note"]
    table = run("inspect", tmp_path / "free.keras").stdout
    assert "per step" in table and "one time step" in " ".join(table.split())


@pytest.mark.parametrize("flavor", ["keras", "tf_keras"])
def test_a_shared_encoder_counts_once_per_call(run, tmp_path, flavor):
    """Two inputs through one encoder sub-model and one shared Dense: each call costs its MACs."""
    keras = importlib.import_module(flavor)
    encoder_in = keras.Input((8,))
    hidden = keras.layers.Dense(16, name="e1")(encoder_in)
    encoder = keras.Model(encoder_in, keras.layers.Dense(8, name="e2")(hidden), name="encoder")
    left, right = keras.Input((8,), name="left"), keras.Input((8,), name="right")
    shared = keras.layers.Dense(4, name="shared")
    joined = keras.layers.Concatenate()([encoder(left), encoder(right), shared(left), shared(right)])
    keras.Model([left, right], keras.layers.Dense(2, name="head")(joined)).save(tmp_path / "twin.keras")
    report = inspect_json(run, tmp_path / "twin.keras")
    rows = {row["name"]: row for row in report["layers"]}
    assert rows["encoder"]["macs"] == 2 * (8 * 16 + 16 * 8) and rows["encoder"]["calls"] == 2
    assert rows["shared"]["macs"] == 2 * 8 * 4 and rows["shared"]["calls"] == 2
    assert report["macs"] == 2 * (8 * 16 + 16 * 8) + 2 * 8 * 4 + (8 + 8 + 4 + 4) * 2
