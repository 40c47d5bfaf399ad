"""The step contract: one params model per step is the recipe schema, the CLI options and the API's
arguments; ``recipes validate`` refuses every rule ``run`` would refuse."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_one_line_error

BASE = """\
name: t
device: {device}
model: model.keras
data:
{data}
steps:
{steps}
"""
TRAIN_VAL = "  train: train.npz\n  val: val.npz"


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "model.keras").write_bytes(b"placeholder: validation does not load the model")
    for name in ("train", "val"):
        np.savez(tmp_path / f"{name}.npz", x=np.zeros((2, 8, 8, 1), np.float32), y=np.zeros(2))
    (tmp_path / "no-estimate.yaml").write_text(textwrap.dedent("""\
        name: no-estimate
        arch: any
        runtime: litert
        accelerator: cpu
        modes: [float32, int8]
        memory_mb: 1024
        """))
    return tmp_path


def recipe(folder: Path, steps: str, *, device: str = "host-cpu", data: str = TRAIN_VAL, extra: str = "") -> Path:
    path = folder / "r.yaml"
    path.write_text(BASE.format(device=device, data=data or "  {}", steps=textwrap.indent(steps, "  ")) + extra)
    return path


def test_the_registry_lists_every_step_with_a_strict_params_model():
    from edgepack.steps.base import registry

    steps = registry()
    assert list(steps) == ["sensitivity", "prune", "cluster", "quantize", "qat", "evaluate", "profile"]
    for step in steps.values():
        assert step.params.model_config["extra"] == "forbid"
        step.params()  # every field has a default


@pytest.mark.parametrize("command, step", [("prune", "prune"), ("cluster", "cluster"), ("quantize", "quantize"),
                                           ("sensitivity", "sensitivity")])
def test_every_param_is_a_cli_option_with_the_params_default(command, step):
    from edgepack.cli import cli
    from edgepack.steps.base import registry

    options = {p.name: p for p in cli.get_command(None, command).params}
    params = registry()[step].params
    for name, info in params.model_fields.items():
        assert name in options, f"{command} has no option for {name}"
        default = info.get_default(call_default_factory=True)
        shown = getattr(default, "value", default)
        if shown not in (None, False) and shown != [] and shown != {}:
            text = f"{shown:g}" if isinstance(shown, float) else ", ".join(shown) if isinstance(shown, list) \
                else str(shown)
            assert f"[default: {text}]" in options[name].help, (name, options[name].help)


def test_every_param_is_a_recipe_key(folder, run):
    from edgepack.steps.prune import PruneParams

    values = {"sparsity": 0.6, "learning_rate": 0.002, "seed": 7, "distribute": "none", "schedule": "constant"}
    path = recipe(folder, "- prune: {" + ", ".join(f"{k}: {v}" for k, v in values.items()) + "}\n")
    from edgepack.recipes.loader import load_recipe

    planned = load_recipe(path).plan[0]
    assert isinstance(planned.params, PruneParams)
    assert planned.params.model_dump(mode="json") | values == planned.params.model_dump(mode="json")


RULES = [
    ("prune 2:4 with another sparsity", dict(steps="- prune: {structure: '2:4', sparsity: 0.75}\n"), ["2:4"]),
    ("prune without data.train", dict(steps="- prune: {}\n", data="  val: val.npz"), ["prune", "data.train"]),
    ("cluster without data.train", dict(steps="- cluster: {}\n", data="  val: val.npz"), ["cluster", "data.train"]),
    ("int8 without calibration data", dict(steps="- quantize: {mode: int8}\n", data="  val: val.npz"),
     ["int8", "data.train"]),
    ("integer io without int8", dict(steps="- quantize: {mode: float16, io: int8}\n"), ["io int8 needs mode int8"]),
    ("a mode the device does not run", dict(steps="- quantize: {mode: int16x8}\n", device="coral-usb"),
     ["int16x8", "coral-usb"]),
    ("Edge TPU with float io", dict(steps="- quantize: {mode: int8}\n", device="coral-usb"), ["Edge TPU"]),
    ("Edge TPU without a static batch", dict(steps="- quantize: {mode: int8, io: int8, static_batch: false}\n",
                                             device="coral-usb"), ["static shapes"]),
    ("a Keras step after quantize", dict(steps="- quantize: {}\n- prune: {}\n"), ["quantize must be the last step"]),
    ("a measuring step before quantize", dict(steps="- evaluate: {}\n- quantize: {}\n"), ["evaluate", "after quantize"]),
    ("a measuring step twice", dict(steps="- quantize: {}\n- profile: {}\n- profile: {}\n"), ["more than once"]),
    ("remote profiling without a connection", dict(steps="- profile: {where: remote}\n"), ["connection.ssh"]),
    ("estimate without device figures", dict(steps="- profile: {where: estimate}\n", device="no-estimate.yaml"),
     ["estimate figures"]),
    ("min_seconds above max_seconds", dict(steps="- profile: {min_seconds: 5, max_seconds: 1}\n"),
     ["min_seconds (5) is more than max_seconds (1)"]),
    ("a bad exclude pattern", dict(steps="- prune: {exclude: '('}\n"), ["regular expression"]),
    ("an unknown step key", dict(steps="- prune: {sparsty: 0.5}\n"), ["sparsty", "sparsity"]),
    ("an unknown step", dict(steps="- prun: {}\n"), ["did you mean 'prune'"]),
    ("accuracy control without val data", dict(steps="- quantize: {mode: int8, max_drop: 1}\n",
                                               data="  train: train.npz"), ["max_drop", "data.val"]),
    ("float layers outside int8", dict(steps="- quantize: {mode: float16, float_ops: [dense]}\n"), ["mode int8"]),
    ("sensitivity without val data", dict(steps="- sensitivity: {}\n", data="  train: train.npz"), ["data.val"]),
    ("sensitivity after quantize", dict(steps="- quantize: {}\n- sensitivity: {}\n"),
     ["quantize must be the last step"]),
    ("an accuracy gate without val data", dict(steps="- quantize: {}\n", data="  train: train.npz",
                                               extra="gates: {max_accuracy_drop: 1}\n"), ["data.val"]),
]


@pytest.mark.parametrize("rule, recipe_args, fragments", RULES, ids=[rule for rule, _, _ in RULES])
def test_validate_refuses_every_rule_with_exit_2_file_and_line(run, folder, rule, recipe_args, fragments):
    path = recipe(folder, **recipe_args)
    result = run("recipes", "validate", path)
    assert_one_line_error(result, 2, *fragments)
    assert f"{path}:" in result.stderr


def test_run_refuses_the_2_4_recipe_before_any_work(run, folder):
    path = recipe(folder, "- prune: {structure: '2:4', sparsity: 0.75}\n")
    started = time.perf_counter()
    assert_one_line_error(run("run", path), 2, "2:4", "sparsity 0.75")
    assert time.perf_counter() - started < 5


def test_resolved_steps_add_the_implicit_conversion_and_measurements(folder):
    from edgepack.recipes.loader import load_recipe

    loaded = load_recipe(recipe(folder, "- prune: {}\n"))
    assert [p.name for p in loaded.plan] == ["prune", "quantize", "evaluate", "profile"]
    dumped = loaded.resolved_dump()["steps"]
    assert dumped[1]["quantize"] | {"mode": "float32", "io": "float32", "samples": 200, "seed": 0,
                                    "static_batch": False, "float_ops": [], "max_drop": None} == dumped[1]["quantize"]
    assert dumped[3]["profile"]["where"] == "local"
    assert {"learning_rate", "seed", "distribute"} <= set(dumped[0]["prune"])


def test_static_batch_is_resolved_for_the_device(folder):
    from edgepack.recipes.loader import load_recipe

    loaded = load_recipe(recipe(folder, "- quantize: {mode: int8, io: int8}\n", device="coral-usb"))
    assert loaded.plan[0].params.static_batch is True
    assert loaded.plan[-1].params.where == "estimate"


def test_a_new_step_module_registers_itself_and_gets_a_recipe_key():
    import subprocess
    import sys

    code = textwrap.dedent("""
        from edgepack.steps.base import ModelKind, Step, StepParams, registry

        class NoopParams(StepParams):
            note: str = "hi"

        class Noop(Step):
            name = "noop"
            params = NoopParams
            consumes = produces = ModelKind.TFLITE
            measures = True

        import edgepack.recipes.schema as schema
        assert "noop" in registry() and "noop" in schema.STEP_KEYS, schema.STEP_KEYS
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr


def test_a_shared_prefix_is_computed_once_through_the_artifact_cache(digits, tmp_path):
    from edgepack.recipes.execute import make_context, run_plan
    from edgepack.recipes.loader import load_recipe
    from edgepack.steps.artifacts import ModelArtifact
    from edgepack.steps.base import ModelKind

    path = tmp_path / "r.yaml"
    path.write_text(f"name: c\ndevice: host-cpu\nmodel: {digits['model']}\ndata: {{val: {digits['val']}}}\n"
                    f"steps:\n  - quantize: {{mode: float16}}\n  - profile: {{where: estimate}}\n")
    loaded = load_recipe(path)
    source = ModelArtifact.of_file(digits["model"], ModelKind.KERAS, label="float")
    finals = []
    for attempt in range(2):
        ctx = make_context(loaded, tmp_path / f"work{attempt}", cache_dir=tmp_path / "cache")
        final, stages = run_plan(ctx, loaded.plan, source)
        finals.append(final)
        assert ctx.cache.hits == attempt, "the second run reuses the first one's conversion"
    assert finals[0].sha256 == finals[1].sha256 and finals[1].metric == finals[0].metric
    assert [s.label for s in stages] == ["float", "float16 .tflite"] and finals[1].latency.estimated
