"""``edgepack tune``: an Optuna study over a recipe's steps, constrained by its gates.

Each trial builds a step list from the search space, checks it with the same plan ``run`` uses,
runs it (step outputs cached by input, step, params and data, so a shared prefix runs once), and
reports the objectives (gzip size, latency p50, metric drop) with the gates as constraints. A trial
whose Keras stages already lose more than the accuracy gate plus a margin is pruned early. The study
lives in SQLite beside the recipe unless ``--storage`` names another database (PostgreSQL lets
several machines share one study); re-running continues it. At the end the best feasible trial is
written as a plain recipe (every effective parameter, the allocation included) and its bundle built.
"""

from __future__ import annotations

import os
import random
import socket
import time
from pathlib import Path
from typing import Callable

import yaml
from pydantic import BaseModel, ConfigDict, Field

from edgepack.errors import EdgepackError, GateFailed, RemoteError
from edgepack.evaluation.metrics import absolute_allowance
from edgepack.inspection.result import EdgeTpuReadiness
from edgepack.recipes.loader import LoadedRecipe, load_recipe
from edgepack.recipes.plan import plan_steps
from edgepack.recipes.schema import Recipe, entry_name, entry_params
from edgepack.tuning.limits import DEFAULT_TRIALS, StopRule
from edgepack.tuning.result import TuneResult
from edgepack.tuning.progress import TrialLines, TuneProgress
from edgepack.recipes.tune_section import TuneSection
from edgepack.tuning.trials import TrialSummary, best_trial, summary_of

Say = Callable[[str], None]
OPEN_ATTEMPTS = 5
EARLY_MARGIN = 3.0  # points beyond the accuracy gate at which a trial stops before conversion


class TuneOptions(BaseModel):
    """The command line's view of a study. ``--timeout`` alone searches until the time is up;
    ``--trials`` alone stops after that many trials; both: whichever comes first; neither: 20 trials."""

    model_config = ConfigDict(extra="forbid")

    recipe: Path
    trials: int | None = Field(default=None, ge=1, le=100_000)
    timeout: float | None = Field(default=None, gt=0)
    storage: str | None = None
    study: str | None = None
    output: Path | None = None
    trust_model: bool = False
    trust_code: bool = False

    def stop_rule(self) -> StopRule:
        """The limits in force, with the default trial count when neither is given."""
        trials = self.trials if self.trials is not None or self.timeout is not None else DEFAULT_TRIALS
        return StopRule(trials=trials, timeout=self.timeout)


def _base_params(recipe: Recipe) -> dict[str, dict]:
    return {entry_name(e): entry_params(e).model_dump(mode="json") for e in recipe.steps}


STRUCTURED = ("sensitivity", "prune", "cluster", "quantize", "qat")  # placed by suggest_steps itself


def searched_values(trial, step: str, domains: dict[str, dict], given: dict | None = None) -> dict:
    """A value for each searched field of ``step`` that applies to a step configured as ``given``, named
    ``step.field`` in the study."""
    return {field: domain.suggest(trial, f"{step}.{field}") for field, domain in domains.get(step, {}).items()
            if domain.applies(given or {})}


def _suggest_prune(trial, base: dict, space: TuneSection, domains: dict, float_cpu: bool = False) -> dict:
    """The trial's prune step: its structure (when the space offers several), then the fields that apply to it;
    a channel trial picks its allocation under its own name (latency allocation joins when latency is an
    objective)."""
    prune = {"structure": "unstructured"} | {k: v for k, v in base.items() if k not in ("layer_sparsity",
                                                                                          "layer_channels")}
    structures = space.structure_choices(float_cpu)
    if structures:
        prune["structure"] = trial.suggest_categorical("prune.structure", structures) if len(structures) > 1 \
            else structures[0]
    if prune.get("structure") == "xnnpack":  # every 1x1 convolution at XNNPACK's 2/3 zeros or more, uniformly
        prune = {k: v for k, v in prune.items() if k not in ("target_macs", "target_latency")}
        prune |= {"allocate": "uniform", "sparsity": max(float(prune.get("sparsity", 0.75)), 0.75)}
        return prune | searched_values(trial, "prune", {"prune": {k: d for k, d in domains.get("prune", {}).items()
                                                                  if k != "allocate"}}, prune)
    if prune.get("structure") != "channels":
        prune = {k: v for k, v in prune.items() if k not in ("target_macs", "target_latency")}
        prune["allocate"] = prune.get("allocate") if prune.get("allocate") != "latency" else "uniform"
        return prune | searched_values(trial, "prune", domains, prune)
    values = searched_values(trial, "prune", {"prune": {k: d for k, d in domains.get("prune", {}).items()
                                                        if k != "allocate"}}, prune)
    allocations = list(domains.get("prune", {}).get("allocate").choices if "allocate" in domains.get("prune", {})
                       else [prune.get("allocate", "uniform")])
    if "latency" in space.objectives and "latency" not in allocations:
        allocations.append("latency")
    values["allocate"] = trial.suggest_categorical("prune.channel_allocate", allocations)
    return prune | values


def float_cpu_target(recipe: Recipe, device) -> bool:
    """Whether the recipe converts to float (float32/float16) for a CPU device: XNNPACK's float target."""
    mode = _base_params(recipe).get("quantize", {}).get("mode")
    return mode in ("float32", "float16") and device.accelerator.value == "cpu"


def suggest_steps(trial, recipe: Recipe, space: TuneSection, float_cpu: bool = False,
                  reference: float | None = None) -> list[dict]:
    """The step list of one trial: the recipe's steps, every searched field varied in its domain
    (declared on the params field, overridden by ``space``), prune and cluster added or dropped and
    ordered, and the quantization chosen. ``float_cpu``: the recipe converts to float for a CPU device
    (xnnpack pruning, stored sparse, joins the structures a felt objective searches). ``reference``: the
    source model's metric, which turns a relative accuracy gate into accuracy control's absolute target."""
    base, domains = _base_params(recipe), space.domains()
    wanted = {name: name in space.steps and (not space.optional or
                                             trial.suggest_categorical(f"use_{name}", [True, False]))
              for name in ("prune", "cluster")}
    training = {"epochs": space.epochs} if space.epochs else {}
    entries = []
    if wanted["prune"]:
        entries.append({"prune": _suggest_prune(trial, base.get("prune", {}), space, domains, float_cpu) | training})
    if wanted["cluster"]:
        order = trial.suggest_categorical("order", space.orders) if wanted["prune"] else "cluster-only"
        cluster = {k: v for k, v in base.get("cluster", {}).items() if k != "layer_clusters"}
        cluster = cluster | training | searched_values(trial, "cluster", domains)
        cluster["preserve_sparsity"] = order == "prune-cluster"
        entries.insert(0 if order == "cluster-prune" else len(entries), {"cluster": cluster})
    quantization = _suggest_quantization(trial, recipe, space, base, domains, reference)
    if any(entry.get("prune", {}).get("structure") == "xnnpack" for entry in entries) and "quantize" in quantization:
        quantization["quantize"]["sparse"] = True  # what makes XNNPACK pick its sparse kernels
    entries.append(quantization)
    return entries + [{name: params | searched_values(trial, name, domains)} for name, params in base.items()
                      if name not in STRUCTURED]


def _suggest_quantization(trial, recipe: Recipe, space: TuneSection, base: dict[str, dict], domains: dict,
                          reference: float | None = None) -> dict:
    """The trial's quantization: a mode, then for int8 post-training (with or without accuracy control) or QAT.
    Accuracy control targets the recipe's gate; a relative gate (percent of the reference) is given to it in
    the metric's own unit at ``reference`` (it judges drops in that unit), and is not tried without one."""
    quantize = dict(base.get("quantize", {"mode": "int8"}))
    if space.modes is not None:
        mode = trial.suggest_categorical("mode", [m.value for m in space.modes])
        if mode != quantize.get("mode"):
            quantize = {k: v for k, v in quantize.items() if k not in ("io", "max_drop", "float_ops", "fallback")}
        quantize["mode"] = mode
    if quantize.get("mode") != "int8":
        return {"quantize": quantize | searched_values(trial, "quantize", domains, quantize)}
    if trial.suggest_categorical("qat", space.qat):
        qat = {"io": quantize.get("io", "float32")} | ({"epochs": space.epochs} if space.epochs else {})
        return {"qat": qat | searched_values(trial, "qat", domains)}
    gate = recipe.gates.max_accuracy_drop
    if gate is not None and recipe.gates.relative:
        gate = None if reference is None else round(absolute_allowance(recipe.metric, reference, gate), 6)
    if gate is not None and recipe.data.val and trial.suggest_categorical("accuracy_control", space.accuracy_control):
        quantize["max_drop"] = gate
        if trial.suggest_categorical("promote", space.promote) == "int16x8" and quantize.get("io") != "uint8":
            quantize["promote"] = ["int16x8", "float"]
    return {"quantize": quantize | searched_values(trial, "quantize", domains, quantize)}


def _open_study(options: TuneOptions, loaded: LoadedRecipe, space: TuneSection):
    import optuna

    storage = options.storage or f"sqlite:///{loaded.path.resolve().with_suffix('.tune.db')}"
    if hasattr(optuna.trial.Trial, "set_constraint"):  # Optuna 5: constraints are set on each trial
        sampler = optuna.samplers.TPESampler(seed=space.seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=space.seed, constraints_func=lambda t: t.user_attrs.get(
            "constraints", [1.0]))
    for attempt in range(OPEN_ATTEMPTS):
        try:
            study = optuna.create_study(storage=storage, study_name=options.study or loaded.recipe.name,
                                        directions=["minimize"] * len(space.objectives), sampler=sampler,
                                        load_if_exists=True)
            return study, storage
        except Exception as exc:  # SQLAlchemy/driver errors: unreachable server, bad URL, missing driver
            if attempt + 1 < OPEN_ATTEMPTS and _lost_a_race(exc):
                time.sleep(0.2 + random.random())  # another worker is creating the same tables
                continue
            reason = _masked((str(exc).strip().splitlines() or [type(exc).__name__])[0])
            raise RemoteError(f"cannot open the study storage {_masked(storage)}: {reason[:200]}",
                              hint="check the --storage URL, the server and its driver (psycopg2 for PostgreSQL)"
                              ) from None


def recipe_trial(recipe: Recipe, space: TuneSection, float_cpu: bool = False) -> dict:
    """The recipe's own steps as trial parameters (each value brought inside its searched domain; a
    value the space does not offer is left to the sampler): the first trial of a new study, so the
    search starts from what the user wrote."""
    names = [entry_name(e) for e in recipe.steps]
    base, domains = _base_params(recipe), space.domains()
    params: dict = {f"use_{name}": name in names for name in ("prune", "cluster")} if space.optional else {}
    for step in ("prune", "cluster", "qat", "quantize"):
        for field, domain in domains.get(step, {}).items():
            if step in base and field in base[step] and domain.applies(base[step]):
                params[f"{step}.{field}"] = domain.nearest(base[step][field])
    structures = space.structure_choices(float_cpu)
    if "prune" in base and structures and len(structures) > 1:
        params["prune.structure"] = base["prune"].get("structure")
        if base["prune"].get("structure") == "channels":
            params["prune.channel_allocate"] = params.pop("prune.allocate", base["prune"].get("allocate"))
    if "prune" in names and "cluster" in names:
        params["order"] = "prune-cluster" if names.index("prune") < names.index("cluster") else "cluster-prune"
    quantize = base.get("quantize", {})
    if space.modes is not None and "mode" in quantize:
        params["mode"] = quantize["mode"]
    params["qat"] = "qat" in names
    params["accuracy_control"] = quantize.get("max_drop") is not None
    allowed = {"order": space.orders, "qat": space.qat, "accuracy_control": space.accuracy_control,
               "prune.structure": structures or [],
               "mode": [m.value for m in space.modes or []]}
    return {key: value for key, value in params.items() if value is not None
            and (key not in allowed or value in allowed[key])}


def corner_trial(recipe: Recipe, space: TuneSection) -> dict | None:
    """A new study's second trial when size or flash is an objective: prune and cluster with every searched
    field at its domain's ``corner`` (high sparsity, few clusters, the longer fine-tuning such a model needs),
    the rest left to the sampler; None when the space cannot prune and cluster, or when it is the recipe
    itself. It puts the compressing end of the space in front of the sampler at once, where ~20 trials of
    random start would seldom land."""
    if not {"size", "flash"} & set(space.objectives) or not {"prune", "cluster"} <= set(space.steps):
        return None
    params: dict = {"use_prune": True, "use_cluster": True} if space.optional else {}
    if "prune-cluster" in space.orders and len(space.orders) > 1:
        params["order"] = "prune-cluster"
    if space.structure_choices() and len(space.structure_choices()) > 1:
        if "unstructured" not in space.structure_choices():
            return None
        params["prune.structure"] = "unstructured"
    for step, fields in space.domains().items():
        for field, domain in fields.items():
            value = None if domain.corner is None else domain.nearest(domain.corner)
            if step in ("prune", "cluster") and value is not None and domain.applies({"structure": "unstructured"}):
                params[f"{step}.{field}"] = value
    return params if params != recipe_trial(recipe, space) else None


def fast_corner_trial(recipe: Recipe, space: TuneSection, float_cpu: bool = False) -> dict | None:
    """A new study's trial when latency is an objective and the space prunes channels: channels removed with
    every searched field at its domain's ``fast_corner`` (a deep MACs budget, uniform, distilled from the
    original, int8 weights), no clustering (it saves no time), the rest left to the sampler; None when the
    space cannot prune channels. Channel pruning is what makes a model faster, and a deep budget held to the
    gate needs the longer distilled fine-tuning that ~20 trials of random start seldom combine."""
    if "latency" not in space.objectives or "prune" not in space.steps \
            or "channels" not in (space.structure_choices(float_cpu) or []):
        return None
    params: dict = {"use_prune": True, "use_cluster": False} if space.optional else {}
    if len(space.structure_choices(float_cpu)) > 1:
        params["prune.structure"] = "channels"
    channels = {"structure": "channels", "mode": "int8"}
    for step, fields in space.domains().items():
        for field, domain in fields.items():
            value = None if domain.fast_corner is None else domain.nearest(domain.fast_corner)
            if value is None or not domain.applies(channels) or step not in ("prune", "quantize"):
                continue
            params["prune.channel_allocate" if (step, field) == ("prune", "allocate") else f"{step}.{field}"] = value
    return params if params != recipe_trial(recipe, space, float_cpu) else None


def _lost_a_race(exc: Exception) -> bool:
    """Workers that open a new database at once race to create Optuna's tables (a unique violation)."""
    text = f"{type(exc).__name__} {exc}"
    return "IntegrityError" in text or "UniqueViolation" in text or "already exists" in text


def _masked(url: str) -> str:
    import re

    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def _trial_recipe(loaded: LoadedRecipe, entries: list[dict]) -> Recipe:
    return Recipe.model_validate({**loaded.recipe.model_dump(mode="json"), "steps": entries, "tune": None})


def _early_stop(trial, loaded: LoadedRecipe, reference: float | None):
    import optuna

    from edgepack.evaluation.metrics import drop as metric_drop
    from edgepack.steps.base import ModelKind

    gate = loaded.recipe.gates.max_accuracy_drop

    def check(artifact) -> None:
        if gate is None or reference is None or artifact.kind is not ModelKind.KERAS or artifact.metric is None:
            return
        lost = metric_drop(loaded.recipe.metric, reference, artifact.metric, relative=loaded.recipe.gates.relative)
        if lost > gate + EARLY_MARGIN:
            note = f"stopped early: {artifact.label} already loses {lost:.2f} (gate {gate:g})"
            trial.set_user_attr("note", note)
            raise optuna.TrialPruned(note)

    return check


def _edgetpu_readiness(loaded: LoadedRecipe, final) -> EdgeTpuReadiness | None:
    """The final .tflite's Edge TPU readiness when the recipe's device is an Edge TPU (its gate), else None."""
    from edgepack.recipes.accelerators import is_edgetpu

    if not is_edgetpu(loaded.device) or final.path.suffix != ".tflite":
        return None
    from edgepack.inspection.tflite_model import inspect_tflite

    return inspect_tflite(final.path).edgetpu


def run_trial(trial, loaded: LoadedRecipe, space: TuneSection, options: TuneOptions, cache: Path,
              scorer=None, latencies: dict | None = None) -> list:
    """One trial: its steps, run with the shared cache (and ``scorer`` and ``latencies``, shared by the
    study's trials so each distinct model is scored and measured once); returns the objectives, records
    the rest."""
    import tempfile

    import optuna

    from edgepack.recipes.execute import make_context, run_plan
    from edgepack.recipes.gates import judge
    from edgepack.steps.artifacts import ModelArtifact
    from edgepack.steps.base import ModelKind

    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    with tempfile.TemporaryDirectory(prefix="edgepack-trial-") as work:
        ctx = make_context(loaded, Path(work), trust_model=options.trust_model, trust_code=options.trust_code,
                           cache_dir=cache, scorer=scorer, latencies=latencies)
        source = ModelArtifact.of_file(Path(loaded.recipe.model), ModelKind.KERAS, label="float (Keras)")
        source = source.model_copy(update={"metric": ctx.scorer.score(source)})  # scored once per study
        recipe = _trial_recipe(loaded, suggest_steps(trial, loaded.recipe, space,
                                                     float_cpu_target(loaded.recipe, loaded.device), source.metric))
        planned, problems = plan_steps(recipe.steps, loaded.setting)
        if problems:
            trial.set_user_attr("note", problems[0].message)
            raise optuna.TrialPruned(problems[0].message)
        entries: list[dict] = []
        final, _ = run_plan(ctx, planned, source, entries=entries, check=_early_stop(trial, loaded, source.metric))
        outcome = judge(recipe, final, source.metric, edgetpu=_edgetpu_readiness(loaded, final), device=loaded.device)
    figures = {"size": final.gzip_size_bytes / 1024, "latency": outcome.latency_p50, "drop": outcome.drop,
               **_device_objectives(outcome)}
    trial.set_user_attr("steps", entries)
    trial.set_user_attr("figures", {**figures, "raw_kb": final.size_bytes / 1024})
    trial.set_user_attr("gates", [g.model_dump(mode="json") for g in outcome.gates])
    constraints = outcome.constraints()
    trial.set_user_attr("constraints", constraints)
    if hasattr(trial, "set_constraint"):
        for index, value in enumerate(constraints):
            trial.set_constraint(f"gate_{index}", value)
    return [figures[name] if figures[name] is not None else 1e9 for name in space.objectives]


def _device_objectives(outcome) -> dict:
    """Flash and RAM (KB) of the trial's .tflite, and its estimated latency when nothing measured it."""
    figures = outcome.figures
    if figures is None:
        return {"flash": None, "ram": None}
    found = {"flash": figures.flash_bytes / 1024,
             "ram": None if figures.ram_bytes is None else figures.ram_bytes / 1024}
    if outcome.latency_p50 is None and figures.latency_estimated_ms is not None:
        found["latency"] = figures.latency_estimated_ms
    return found


def write_tuned(loaded: LoadedRecipe, best: TrialSummary, path: Path) -> Path:
    """The best trial as a plain recipe (absolute paths, every effective parameter, no tune: section)."""
    data = loaded.recipe.model_dump(mode="json", exclude={"tune"})
    data.update(steps=best.steps, device=loaded.device_ref,
                description=(data.get("description") or "") + f" (tuned: trial {best.number})")
    from edgepack.util.files import write_bytes_atomic

    write_bytes_atomic(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode())
    return path


def tune_space(loaded: LoadedRecipe) -> TuneSection:
    """The recipe's ``tune:`` section; its objectives, when it names none, are the device profile's
    (``objectives``), else size and drop."""
    space = loaded.recipe.tune or TuneSection()
    if "objectives" in space.model_fields_set or not loaded.device.objectives:
        return space
    return TuneSection.model_validate({**space.model_dump(exclude_unset=True), "objectives": loaded.device.objectives})


def tune_recipe(options: TuneOptions, say: Say = lambda message: None,
                progress: TuneProgress | None = None) -> TuneResult:
    """Run (or continue) the study of ``options.recipe``, write the tuned recipe and build its bundle.

    ``say`` gets the messages; ``progress`` each finished trial (default: one line per trial through
    ``say``). Raises GateFailed (exit 7) naming the closest trials when none passes the gates.
    """
    started = time.perf_counter()
    loaded = load_recipe(options.recipe)
    space = tune_space(loaded)
    study, storage = _open_study(options, loaded, space)
    stop, earlier = options.stop_rule(), len(study.trials)
    if earlier == 0:
        study.enqueue_trial(recipe_trial(loaded.recipe, space, float_cpu_target(loaded.recipe, loaded.device)),
                            skip_if_exists=True)
        for corner in (corner_trial(loaded.recipe, space),
                       fast_corner_trial(loaded.recipe, space, float_cpu_target(loaded.recipe, loaded.device))):
            if corner is not None:
                study.enqueue_trial(corner, skip_if_exists=True)
    say(f"study {study.study_name} in {_masked(storage)}: {earlier} trial(s) so far; "
        f"{stop.describe()}; objectives {', '.join(space.objectives)}")
    _optimize(study, loaded, space, stop, options, progress or TrialLines(say))
    rows = [summary_of(t) for t in study.trials]
    best = best_trial(rows, space)
    pareto = sorted(t.number for t in study.best_trials) if any(r.state == "COMPLETE" for r in rows) else []
    ran = len(rows) - earlier
    result = TuneResult(study=study.study_name, storage=_masked(storage), objectives=space.objectives, trials=rows,
                        pareto=pareto, best=None if best is None else best.number,
                        seconds=round(time.perf_counter() - started, 1), stop=stop,
                        stopped_by="trials" if stop.trials is not None and ran >= stop.trials else "timeout")
    page = _write_page(result, loaded, options)
    if best is None:
        raise _no_trial_passes(result, loaded, page)
    tuned = write_tuned(loaded, best, options.output or loaded.path.with_suffix(".tuned.yaml"))
    say(f"best: trial {best.number} ({best.size_kb:.1f} KB, drop {best.drop:.2f}); wrote {tuned} and {page}; "
        f"building its bundle")
    from edgepack.recipes.execute import RunOptions, run_recipe

    run = run_recipe(RunOptions(recipe=tuned, trust_model=options.trust_model, trust_code=options.trust_code), say,
                     cache_dir=_cache_dir(loaded))  # the best trial's own models, not new ones
    return result.model_copy(update={"tuned_recipe": str(tuned), "bundle": run.bundle, "page": str(page)})


def _optimize(study, loaded: LoadedRecipe, space: TuneSection, stop: StopRule, options: TuneOptions,
              progress: TuneProgress) -> None:
    import optuna

    from edgepack.recipes.execute import make_scorer, prepare_steps

    prepare_steps(loaded.plan)  # the converter loads while the first trial scores the float model
    cache = _cache_dir(loaded)
    scorer = make_scorer(loaded, trust_model=options.trust_model, trust_code=options.trust_code)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    failures, latencies = _Failures(), {}

    def objective(trial):
        try:
            return run_trial(trial, loaded, space, options, cache, scorer, latencies)
        except EdgepackError as exc:
            trial.set_user_attr("note", f"failed: {exc.one_line()}")
            failures.last = exc
            raise

    progress.begin(study.study_name, len(study.trials), stop, space)
    try:
        study.optimize(objective, n_trials=stop.trials, timeout=stop.timeout, catch=(EdgepackError,),
                       callbacks=[failures, lambda _study, frozen: progress.trial(summary_of(frozen))])
    finally:
        progress.end()
    if failures.in_a_row >= FAILURES_IN_A_ROW and failures.last is not None:
        raise failures.last


FAILURES_IN_A_ROW = 3


def _cache_dir(loaded: LoadedRecipe) -> Path:
    """The study's step outputs, beside the recipe (shared by its trials and the tuned recipe's bundle)."""
    return loaded.path.resolve().with_suffix(".tune-cache")


class _Failures:
    """A trial that ends in an edgepack error (a configuration its steps refuse) is recorded as failed,
    with the message as its note, and the study goes on; three in a row mean the error is not the
    trials' own (missing data, a broken model), so the study stops and raises it."""

    def __init__(self):
        self.in_a_row, self.last = 0, None

    def __call__(self, study, frozen) -> None:
        self.in_a_row = self.in_a_row + 1 if frozen.state.name == "FAIL" else 0
        if self.in_a_row >= FAILURES_IN_A_ROW:
            study.stop()


def _write_page(result: TuneResult, loaded: LoadedRecipe, options: TuneOptions) -> Path:
    """The study's page (Pareto scatter, every trial) beside the tuned recipe."""
    from edgepack.tuning.page import write_study_page

    target = (options.output or loaded.path.with_suffix(".tuned.yaml")).with_suffix(".html")
    return write_study_page(result, target, gates=loaded.recipe.gates.model_dump(mode="json"))


def _no_trial_passes(result: TuneResult, loaded: LoadedRecipe, page: Path) -> GateFailed:
    closest = sorted((r for r in result.trials if r.violation is not None), key=lambda r: r.violation)[:3]
    detail = "; ".join(f"trial {r.number}: size {r.size_kb:.1f} KB, drop "
                       f"{'-' if r.drop is None else f'{r.drop:.2f}'}" for r in closest) or "no trial finished"
    return GateFailed(f"no trial of study {result.study} passes the gates of {loaded.path.name} ({detail}); "
                      f"every trial in {page}", hint="run more trials, widen the tune: space, or loosen the gates")
