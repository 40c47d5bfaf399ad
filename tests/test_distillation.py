"""Distillation while fine-tuning: the loss against numpy, and --distill on prune, cluster and qat."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import assert_one_line_error


def test_the_distillation_loss_is_hinton_kl_plus_the_label_loss():
    import tensorflow as tf

    from edgepack.compress.distill import distillation_loss, pack_targets
    from edgepack.compress.loss import LossChoice

    rng = np.random.default_rng(0)
    student = rng.dirichlet(np.ones(4), size=6).astype(np.float32)
    teacher = rng.dirichlet(np.ones(4), size=6).astype(np.float32)
    labels = rng.integers(0, 4, size=6)
    choice = LossChoice(name="sparse_categorical_crossentropy", source="data", reason="test")
    loss = distillation_loss(choice, temperature=2.0, alpha=0.3, outputs=4)
    value = float(loss(tf.constant(pack_targets(labels, teacher)), tf.constant(student)))

    def soften(p):
        z = np.exp(np.log(p) / 2.0)
        return z / z.sum(axis=1, keepdims=True)

    p, q = soften(teacher), soften(student)
    kl = np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1)) * 4.0
    hard = np.mean(-np.log(student[np.arange(6), labels]))
    assert value == pytest.approx(0.3 * hard + 0.7 * kl, rel=1e-4)


@pytest.mark.parametrize("command, extra", [("prune", ["--sparsity", "0.5"]), ("cluster", ["--clusters", "16"])])
def test_distill_fine_tunes_and_records_its_settings(run, digits, tmp_path, command, extra):
    out = tmp_path / f"{command}.keras"
    result = run(command, digits["model"], "--data", digits["train"], "-o", out, "--epochs", "1", "--distill",
                 "--temperature", "2", "--alpha", "0.7", *extra)
    assert result.exit_code == 0, result.stderr
    config = json.loads(out.with_name(out.name + ".edgepack.json").read_text())["config"]
    assert (config["distill"], config["temperature"], config["alpha"]) == (True, 2.0, 0.7)


def test_qat_with_distill_writes_an_int8_model(run, digits, tmp_path):
    out = tmp_path / "qat.tflite"
    result = run("qat", digits["model"], "--data", digits["train"], "-o", out, "--epochs", "1", "--distill")
    assert result.exit_code == 0, result.stderr
    assert out.exists()


@pytest.mark.parametrize("args, fragment", [(["--alpha", "1.5"], "--alpha"), (["--temperature", "0"], "--temperature")])
def test_bad_distillation_settings_are_exit_2(run, digits, tmp_path, args, fragment):
    result = run("prune", digits["model"], "--data", digits["train"], "-o", tmp_path / "p.keras", "--distill", *args)
    assert_one_line_error(result, 2, fragment)
