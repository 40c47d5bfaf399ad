"""A keras.applications family through prune, as benchmarks/zoo.py runs the whole zoo (there with
inspect, cluster and quantize --mode int8 too): the step works with its figure checked from the file it
wrote; it does not end in exit 1. EfficientNetB0 is here because its depth once overflowed the Keras 3 ->
tf_keras rebuild (RecursionError, exit 1), which prune goes through (cluster shares the rebuild;
`benchmarks/zoo.py` runs both, and inspect and quantize, on every family: 46 of 48 steps pass).
MobileNetV3Small is in test_compress_real_models."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from conftest import ROOT

spec = importlib.util.spec_from_file_location("zoo", ROOT / "benchmarks" / "zoo.py")
zoo = importlib.util.module_from_spec(spec)
sys.modules["zoo"] = zoo  # dataclasses look their module up while the class is built
spec.loader.exec_module(zoo)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["EfficientNetB0"])
def test_the_family_goes_through_every_step(run, family, tmp_path):
    """Prune as benchmarks/zoo.py runs it, in this process (the zoo starts one per step; here TensorFlow is
    already imported, and the stack is deeper than a user's, so a recursion overflow shows sooner)."""
    model, data = zoo.build(family, tmp_path)
    output = tmp_path / f"{family}.pruned.keras"
    result = run("prune", model, "--data", data, "--sparsity", zoo.PRUNE_SPARSITY, "--epochs", 1, "--json",
                 "-o", output)
    assert result.exit_code == 0, result.stderr[-2000:]
    assert zoo.check("prune", result.exit_code, result.stdout, result.stderr, output)  # its figure, from the file
