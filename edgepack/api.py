"""The Python API: what ``import edgepack`` offers a notebook user.

These are the functions the CLI runs, with keyword arguments instead of options. Each step's
parameters are its params model's fields (``edgepack.PruneParams`` and so on: the same names,
defaults and ranges as the recipe keys and the CLI options). Errors are the exception hierarchy
of ``edgepack.errors``; each carries the exit code the CLI would give (``exc.exit_code``).

    import edgepack
    pruned = edgepack.prune("model.keras", data="train.npz", output="pruned.keras", sparsity=0.75)
    tflite = edgepack.quantize(pruned.path, "model.tflite", mode="int8", calibration="train.npz")
    print(edgepack.evaluate(tflite.path, data="val.npz", reference="model.keras").drop)
"""

from __future__ import annotations

import inspect as _inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from edgepack.compress.result import KerasArtifact
from edgepack.errors import ConfigError, validation_problem
from edgepack.evaluation.params import EvaluateParams
from edgepack.inspection.result import KerasInspection, TfliteInspection
from edgepack.latency.params import MeasureParams
from edgepack.loading.spec import DataSpec
from edgepack.steps.cluster import ClusterParams
from edgepack.steps.prune import PruneParams
from edgepack.steps.qat import QatParams
from edgepack.steps.quantize import QuantizeParams
from edgepack.steps.sensitivity import SensitivityParams

if TYPE_CHECKING:
    from edgepack.bundle.checksums import Verification
    from edgepack.report.result import RunResult
    from edgepack.evaluation.evaluate import Evaluation
    from edgepack.latency.result import LatencyResult
    from edgepack.layer_sensitivity.analysis import Sensitivity
    from edgepack.steps.qat import QatArtifact
    from edgepack.steps.quantize import TfliteArtifact
    from edgepack.tuning.result import TuneResult

DataLike = str | Path | DataSpec


def _data(value: DataLike | None, trust_code: bool = False) -> DataSpec | None:
    if value is None or isinstance(value, DataSpec):
        return value
    return DataSpec(source=str(value), trust_code=trust_code)


def build(model_cls: type[BaseModel], **values) -> Any:
    """``model_cls(**values)``, with a validation error turned into ConfigError naming the key."""
    try:
        return model_cls(**values)
    except ValidationError as exc:
        where, message = validation_problem(exc)
        raise ConfigError(f"{where}: {message}" if where else message) from None


def with_params(*params_classes: type[BaseModel]):
    """Give a function that takes ``**params`` an explicit signature and docstring generated from the
    fields of ``params_classes``: one keyword argument per field with its default and type, described
    as the recipe key and the CLI option are. ``help(edgepack.prune)`` then lists every option, and
    the function still validates what it is given through the same models."""

    def decorate(func):
        signature = _inspect.signature(func)
        own = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
        taken = {p.name for p in own}
        extra, lines = [], []
        for cls in params_classes:
            for name, field in cls.model_fields.items():
                if name in taken:
                    continue
                taken.add(name)
                default = field.get_default(call_default_factory=True)
                extra.append(_inspect.Parameter(name, _inspect.Parameter.KEYWORD_ONLY, default=default,
                                                annotation=field.annotation))
                lines.append(f"    {name} (default {getattr(default, 'value', default)!r}): {field.description or ''}")
        func.__signature__ = signature.replace(parameters=own + extra)
        func.__doc__ = (func.__doc__ or "").rstrip() + "\n\n    Parameters (" + ", ".join(
            c.__name__ for c in params_classes) + "):\n" + "\n".join(lines) + "\n"
        return func

    return decorate


@with_params(QuantizeParams)
def quantize(model: str | Path, output: str | Path, *, calibration: DataLike | None = None,
             val: DataLike | None = None, metric: str = "accuracy", trust_model: bool = False, say=None,
             **params) -> TfliteArtifact:
    """Convert a Keras model to ``output`` (.tflite). With ``max_drop``, accuracy control measures
    the drop in ``metric`` on ``val``. Returns a TfliteArtifact (``.mixed`` says which layers stayed
    float or int16x8)."""
    from edgepack.steps.quantize import QuantizeConfig, quantize as run

    return run(build(QuantizeConfig, model=model, output=output, calibration=_data(calibration), val=_data(val),
                     metric=metric, trust_model=trust_model, **params), say=say or (lambda message: None))


@with_params(PruneParams)
def prune(model: str | Path, *, data: DataLike, output: str | Path, val: DataLike | None = None,
          trust_model: bool = False, device: str | None = None, progress=None, **params) -> KerasArtifact:
    """Prune-aware fine-tuning (tfmot), BatchNorm statistics re-estimated after it; writes ``output``
    (.keras). ``structure="channels"`` removes whole channels and writes a smaller model; ``device`` names
    the profile whose cost model a latency target or allocation uses. Returns a PruneArtifact (per-layer
    sparsity, ``.channels`` for channel pruning, the BatchNorm re-estimation)."""
    from edgepack.steps.prune import PruneConfig, prune as run

    return run(build(PruneConfig, model=model, data=_data(data), output=output, val=_data(val),
                     trust_model=trust_model, device=device, **params), progress=progress)


@with_params(ClusterParams)
def cluster(model: str | Path, *, data: DataLike, output: str | Path, val: DataLike | None = None,
            trust_model: bool = False, progress=None, **params) -> KerasArtifact:
    """Weight clustering with fine-tuning (tfmot); writes ``output`` (.keras). Returns a KerasArtifact."""
    from edgepack.steps.cluster import ClusterConfig, cluster as run

    return run(build(ClusterConfig, model=model, data=_data(data), output=output, val=_data(val),
                     trust_model=trust_model, **params), progress=progress)


@with_params(EvaluateParams)
def evaluate(model: str | Path, *, data: DataLike, reference: str | Path | None = None, metric: str = "accuracy",
             max_drop: float | None = None, relative: bool = False, output: str | None = None,
             trust_model: bool = False, **options) -> Evaluation:
    """Run a .tflite on ``data`` (and the Keras ``reference``) and compute ``metric``; ``max_drop``
    (a percentage of the reference when ``relative``) sets ``.passed``; ``output`` names the output
    of a model with several. Returns an Evaluation (``.drop``, ``.passed``)."""
    from edgepack.evaluation.evaluate import EvaluateConfig, evaluate as run

    return run(build(EvaluateConfig, model=model, data=_data(data), reference=reference, metric=metric,
                     max_drop=max_drop, relative=relative, output=output, trust_model=trust_model, **options))


@with_params(MeasureParams)
def profile(model: str | Path, *, device: str | None = None, remote: str | None = None, estimate: bool = False,
            runtime: str | None = None, op_profile: bool = False, data: DataLike | None = None, samples: int = 16,
            allow_cpu_fallback: bool = False, **options) -> LatencyResult:
    """Latency of a .tflite: measured here, over SSH (``remote="user@host"``, or ``"@device"`` for the
    device profile's connection), or estimated from the device profile (``estimate=True``);
    ``op_profile`` adds time per operator; ``data`` feeds real rows (``samples`` of them) instead of
    random ones. Returns a LatencyResult (``.p50``, ``.latency_ms``)."""
    from edgepack.latency import LatencyConfig, profile as run

    return run(build(LatencyConfig, model=model, device=device, remote=remote, estimate=estimate, runtime=runtime,
                     op_profile=op_profile, data=_data(data), samples=samples, allow_cpu_fallback=allow_cpu_fallback,
                     **options))


def run_recipe(recipe: str | Path, *, model: str | Path | None = None, train: str | None = None,
               val: str | None = None, device: str | None = None, output: str | Path | None = None,
               estimate: bool = False, trust_model: bool = False, trust_code: bool = False,
               progress=None) -> RunResult:
    """Run a recipe (a file, or a name found as ``edgepack.resources`` says) and write its bundle.

    Returns the RunResult; a failed gate does not raise here (``result.passed`` is False, the
    bundle is ``<name>.failed``); call ``result.raise_for_gates()`` to get GateFailed.
    """
    from edgepack.recipes.execute import RunOptions, run_recipe as run

    options = build(RunOptions, recipe=recipe, model=model, train=train, val=val, device=device, output=output,
                    estimate=estimate, trust_model=trust_model, trust_code=trust_code)
    return run(options, progress or (lambda message: None))


@with_params(SensitivityParams)
def sensitivity(model: str | Path, *, data: DataLike, calibration: DataLike | None = None, metric: str = "accuracy",
                trust_model: bool = False, **params) -> Sensitivity:
    """Per-layer sensitivity to int8, pruning and clustering, in ``metric`` on ``data``. Returns a
    Sensitivity (``.ranking``: the layers, most harmed by int8 first)."""
    from edgepack.steps.sensitivity import SensitivityConfig, sensitivity as run

    return run(build(SensitivityConfig, model=model, data=_data(data), calibration=_data(calibration),
                     metric=metric, trust_model=trust_model, **params))


@with_params(QatParams)
def qat(model: str | Path, *, data: DataLike, output: str | Path, val: DataLike | None = None,
        trust_model: bool = False, progress=None, **params) -> QatArtifact:
    """Quantization-aware training (tfmot; keeps a pruned model's zeros and a clustered model's
    centroids as ``preserve`` says), BatchNorm re-estimated, then full-int8 conversion to ``output``
    (.tflite). Returns a QatArtifact (its accuracy on ``val`` when given)."""
    from edgepack.steps.qat import QatConfig, qat as run

    return run(build(QatConfig, model=model, data=_data(data), output=output, val=_data(val),
                     trust_model=trust_model, **params), progress=progress)


def tune(recipe: str | Path, *, trials: int | None = None, timeout: float | None = None, storage: str | None = None,
         study: str | None = None, output: str | Path | None = None, trust_model: bool = False,
         trust_code: bool = False, say=None) -> TuneResult:
    """Search the recipe's space (its ``tune:`` section) with Optuna under its gates, write the best
    trial as a plain recipe and build its bundle. ``timeout`` alone searches until the time is up,
    ``trials`` alone stops after that many, both: whichever first; neither: 20 trials. ``storage``
    is a database URL (SQLite beside the recipe by default). Raises GateFailed when no trial passes."""
    from edgepack.tuning.study import TuneOptions, tune_recipe

    options = build(TuneOptions, recipe=recipe, trials=trials, timeout=timeout, storage=storage, study=study,
                    output=output, trust_model=trust_model, trust_code=trust_code)
    return tune_recipe(options, say=say or (lambda message: None))


def inspect(model: str | Path, *, trust_model: bool = False,
            device: str | Path | None = None) -> TfliteInspection | KerasInspection:
    """Describe a Keras model or a .tflite (the latter without TensorFlow): layers or operators,
    parameters, MACs, tensor types, quantization, Edge TPU and GPU readiness; ``kind`` says which.
    A .tflite's ``device_figures`` say what the device pays (flash, tensor arena, MACs), with the
    latency estimated on ``device`` (a profile name or path) when given."""
    from edgepack.inspection import inspect_model

    report = inspect_model(model, trust_model=trust_model)
    profile = None if device is None else load_device(device)
    if isinstance(report, TfliteInspection):
        from edgepack.errors import RuntimeUnavailable

        if profile is not None:  # the fix-it list that matters is the device's accelerator's
            report.accelerator = profile.accelerator.value
        from edgepack.footprint.figures import tflite_figures

        try:
            report.device_figures = tflite_figures(model, profile)
        except RuntimeUnavailable as exc:  # tflite-runtime alone has no schema reader to count the work
            report.notes.append(f"device figures not computed: {exc.message}")
    return report


def explore(model: str | Path | None = None, *, bundle: str | Path | None = None, device: str | Path | None = None,
            output: str | Path | None = None, sensitivity: str | Path | None = None):
    """Write Model Explorer node-data files for a .tflite (or a bundle's ``model.tflite``): precision,
    Edge TPU and GPU placement per operator, the estimated time per operator on ``device`` (a bundle's
    own device by default), and the int8 error and accuracy control's choice per operator where a
    ``sensitivity`` result (the JSON of ``edgepack sensitivity --json``) or the bundle's report has them.
    Returns an ``Exploration`` (files, graph id, fallbacks with the Keras layer and the fix)."""
    from edgepack.errors import ConfigError
    from edgepack.explore import Decisions
    from edgepack.explore import explore as write_overlays

    if (model is None) == (bundle is None):
        raise ConfigError("give a .tflite or --bundle DIR, not both and not neither",
                          hint="edgepack explore MODEL.tflite, or edgepack explore --bundle dist/NAME")
    beside, decisions = None, None
    if bundle is not None:  # the files go beside the bundle: inside, its checksums would no longer match
        report = _bundle_report(Path(bundle))
        model, device = Path(bundle) / "model.tflite", device or report.device
        beside = Path(bundle).with_name(Path(bundle).name + ".explorer")
        decisions = report.decisions()
    if sensitivity is not None:
        errors = _sensitivity_file(Path(sensitivity)).int8_errors()
        decisions = (decisions or Decisions()).model_copy(update={"int8_errors": errors})
    model = Path(model)
    output = Path(output) if output else beside or model.with_name(model.stem + ".explorer")
    return write_overlays(model, output, None if device is None else load_device(device), decisions)


def _bundle_report(bundle: Path):
    """The RunResult in ``bundle``'s report.json (ConfigError / DataError when it has none or cannot be read)."""
    from edgepack.report.compare import load_bundle

    return load_bundle(bundle)


def _sensitivity_file(path: Path):
    """The Sensitivity result ``edgepack sensitivity --json`` wrote."""
    import json

    from pydantic import ValidationError

    from edgepack.errors import ConfigError
    from edgepack.layer_sensitivity.analysis import Sensitivity

    hint = "give the JSON of 'edgepack sensitivity MODEL --json > FILE'"
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path} as JSON: {exc}", hint=hint) from exc
    try:
        return Sensitivity.model_validate(document)
    except ValidationError as exc:
        where, message = validation_problem(exc)
        raise ConfigError(f"{path} is not a sensitivity result ({where or 'the document'}: {message})",
                          hint=hint) from None


def open_in_model_explorer(exploration) -> None:
    """Start Model Explorer (the ``model-explorer`` command of ``pip install 'edgepack[explore]'``) on the
    model with the overlays, in a child process, until Ctrl-C."""
    import shutil
    import subprocess

    from edgepack.errors import ConfigError

    program = shutil.which("model-explorer")
    if program is None:
        raise ConfigError("Model Explorer is not installed", hint="pip install 'edgepack[explore]', or open the "
                          "node-data files in Model Explorer elsewhere")
    from edgepack.util.child_process import die_with_parent

    process = subprocess.Popen([program, exploration.model, "--node_data_paths=" + ",".join(exploration.files.values())],
                               start_new_session=True, preexec_fn=die_with_parent())
    try:
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def verify(bundle: str | Path) -> Verification:
    """Check a bundle's SHA256SUMS and manifest; ``.ok`` and ``.problems`` say what was found."""
    from edgepack.bundle.checksums import verify_bundle

    return verify_bundle(Path(bundle))


def load_recipe(recipe: str | Path, **overrides):
    """Read and check a recipe without running it (everything ``run`` checks before heavy work)."""
    from edgepack.recipes.loader import load_recipe as load

    return load(recipe, **overrides)


def load_device(name_or_path: str | Path):
    """A device profile by name or path."""
    from edgepack.devices import load_device as load

    return load(name_or_path)


def list_steps() -> dict:
    """Every registered step by name (``{name: Step class}``); ``cls.params`` is its params model."""
    from edgepack.steps.base import registry

    return registry()
