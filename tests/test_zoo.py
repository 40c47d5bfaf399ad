"""A few keras.applications families through inspect, prune, cluster and quantize --mode int8, as
benchmarks/zoo.py runs the whole zoo: each step works with its figure checked from the file it wrote,
or refuses in one line; none ends in exit 1. EfficientNetB0 is here because its depth once overflowed
the Keras 3 -> tf_keras rebuild (RecursionError, exit 1). MobileNetV3Small is in test_compress_real_models."""

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
def test_the_family_goes_through_every_step(family, tmp_path):
    outcomes = zoo.run_family(family, tmp_path)  # each figure checked from its file inside
    assert [o.step for o in outcomes] == ["inspect", "prune", "cluster", "quantize"]
    assert all(o.code == 0 for o in outcomes), [(o.step, o.code, o.figure) for o in outcomes]
