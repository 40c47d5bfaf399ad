"""Training and running on a GPU: skipped, with the reason, where TensorFlow sees none.

They need the `gpu` extra (TensorFlow with the CUDA libraries) on a machine with an NVIDIA GPU. The
epoch-time comparison on a MobileNetV2 fine-tune is `benchmarks/gpu_training.py`.
"""

from __future__ import annotations

import json

import pytest

pytest.register_assert_rewrite("compress_fixtures")
from compress_fixtures import compress  # noqa: E402

pytest_plugins = ["compress_fixtures"]


def _gpus() -> list:
    from edgepack.util.tf import import_tf

    return import_tf().config.list_physical_devices("GPU")


pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def _needs_a_gpu():
    """Skip without a GPU. Asked when a test runs, not at collection: importing TensorFlow while collecting
    would grow the test process (and the peak memory its children inherit) before the fault tests run."""
    if not _gpus():
        pytest.skip("no GPU visible to TensorFlow (tf.config.list_physical_devices('GPU') is empty; install "
                    "'edgepack[gpu]' on a machine with an NVIDIA GPU)")


def test_prune_trains_on_the_gpu(run, digits, tmp_path):
    from edgepack.util.tf import import_tf

    tf = import_tf()
    tf.config.experimental.reset_memory_stats("GPU:0")
    result = compress(run, "prune", digits["model"], digits["train"], tmp_path / "p.keras", "--sparsity", "0.5",
                      "--epochs", "1")
    assert result["doc"]["trained_on"].startswith("GPU: ")
    assert tf.config.experimental.get_memory_info("GPU:0")["peak"] > 0  # the training's tensors lived there


def test_mirrored_uses_every_gpu(run, digits, tmp_path):
    result = compress(run, "cluster", digits["model"], digits["train"], tmp_path / "c.keras", "--clusters", "8",
                      "--epochs", "1", "--distribute", "mirrored")
    gpus = len(_gpus())
    assert result["doc"]["replicas"] == gpus
    assert result["doc"]["trained_on"].startswith(f"{gpus} x GPU: " if gpus > 1 else "GPU: ")


def test_profile_on_the_gpu_says_the_gpu_ran_it(run, tflite_models, tmp_path):
    result = run("profile", tflite_models["float32"], "--device", "linux-gpu-server", "--runs", "5",
                 "--min-seconds", "0.1", "--json")
    assert result.exit_code == 0, result.stderr
    runtime = json.loads(result.stdout)["runtime"]
    assert runtime["accelerator"] == "gpu", runtime
