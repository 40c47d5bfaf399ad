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

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from edgepack.errors import ConfigError
from edgepack.loading.data import DataSpec

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
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        message = first.get("msg", str(exc)).removeprefix("Value error, ")
        raise ConfigError(f"{where}: {message}" if where else message) from None


def quantize(model: str | Path, output: str | Path, *, calibration: DataLike | None = None,
             val: DataLike | None = None, trust_model: bool = False, say=None, **params):
    """Convert a Keras model to ``output`` (.tflite); ``params`` are QuantizeParams fields
    (``mode``, ``io``, ``samples``, ``seed``, ``static_batch``, ``float_ops``, ``max_drop``,
    ``max_float_ops``, ``ranking_samples``) and ``metric``. With ``max_drop``, accuracy control
    measures the drop on ``val``. Returns a TfliteArtifact (``.mixed`` says which layers stayed float)."""
    from edgepack.steps.quantize import QuantizeConfig, quantize as run

    return run(build(QuantizeConfig, model=model, output=output, calibration=_data(calibration), val=_data(val),
                     trust_model=trust_model, **params), say=say or (lambda message: None))


def prune(model: str | Path, *, data: DataLike, output: str | Path, val: DataLike | None = None,
          trust_model: bool = False, progress=None, **params):
    """Prune-aware fine-tuning; ``params`` are PruneParams fields (``sparsity``, ``schedule``,
    ``structure``, ``epochs``, ``learning_rate``, ``seed``, ...). Returns a KerasArtifact."""
    from edgepack.steps.prune import PruneConfig, prune as run

    return run(build(PruneConfig, model=model, data=_data(data), output=output, val=_data(val),
                     trust_model=trust_model, **params), progress=progress)


def cluster(model: str | Path, *, data: DataLike, output: str | Path, val: DataLike | None = None,
            trust_model: bool = False, progress=None, **params):
    """Weight clustering with fine-tuning; ``params`` are ClusterParams fields (``clusters``,
    ``init``, ``preserve_sparsity``, ``epochs``, ...). Returns a KerasArtifact."""
    from edgepack.steps.cluster import ClusterConfig, cluster as run

    return run(build(ClusterConfig, model=model, data=_data(data), output=output, val=_data(val),
                     trust_model=trust_model, **params), progress=progress)


def evaluate(model: str | Path, *, data: DataLike, reference: str | Path | None = None, trust_model: bool = False,
             **options):
    """Run a .tflite on ``data`` (and the Keras ``reference``); ``options``: ``metric``, ``max_drop``,
    ``relative``, ``batch_size``, ``threads``. Returns an Evaluation (``.drop``, ``.passed``)."""
    from edgepack.evaluation.evaluate import EvaluateConfig, evaluate as run

    return run(build(EvaluateConfig, model=model, data=_data(data), reference=reference, trust_model=trust_model,
                     **options))


def profile(model: str | Path, *, device: str | None = None, **options):
    """Latency of a .tflite: measured here, over SSH (``remote=``), or estimated (``estimate=True``).
    ``options`` are ProfileConfig fields (``runs``, ``threads``, ``min_seconds``, ...). Returns a ProfileResult."""
    from edgepack.latency import ProfileConfig, profile as run

    return run(build(ProfileConfig, model=model, device=device, **options))


def run_recipe(recipe: str | Path, *, model: str | Path | None = None, train: str | None = None,
               val: str | None = None, device: str | None = None, output: str | Path | None = None,
               estimate: bool = False, trust_model: bool = False, trust_code: bool = False, progress=None):
    """Run a recipe (a file, or a name found as ``edgepack.resources`` says) and write its bundle.

    Returns the RunResult; a failed gate does not raise here (``result.passed`` is False, the
    bundle is ``<name>.failed``); call ``result.raise_for_gates()`` to get GateFailed.
    """
    from edgepack.recipes.execute import RunOptions, run_recipe as run

    options = build(RunOptions, recipe=recipe, model=model, train=train, val=val, device=device, output=output,
                    estimate=estimate, trust_model=trust_model, trust_code=trust_code)
    return run(options, progress or (lambda message: None))


def sensitivity(model: str | Path, *, data: DataLike, calibration: DataLike | None = None, trust_model: bool = False,
                **params):
    """Per-layer sensitivity to int8, pruning and clustering; ``params`` are SensitivityParams fields
    and ``metric``. Returns a Sensitivity (``.ranking``: the layers, most harmed by int8 first)."""
    from edgepack.steps.sensitivity import SensitivityConfig, sensitivity as run

    return run(build(SensitivityConfig, model=model, data=_data(data), calibration=_data(calibration),
                     trust_model=trust_model, **params))


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
