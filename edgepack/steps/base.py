"""The step contract: one params model per step, a typed context in, a typed artifact out.

A step module defines a ``StepParams`` subclass (the only place a default, a range or a rule
between its keys is written) and a ``Step`` subclass naming it. Subclassing registers the step;
the recipe schema, the CLI options and the Python API are derived from the registry, so adding
a step is one module plus its tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel

from edgepack.params import StepParams
from edgepack.steps.artifacts import ModelArtifact, ModelKind

if TYPE_CHECKING:
    from edgepack.steps.context import StepContext, StepSetting


class Problem(BaseModel):
    """A rule between a step and the rest of the recipe that does not hold (a ConfigError, exit 2)."""

    key: tuple = ()          # key path inside the step's params, e.g. ("mode",); () is the step itself
    message: str
    hint: str | None = None


_REGISTRY: dict[str, type["Step"]] = {}


class Step:
    """One stage of a pipeline: ``run(context, artifact, params) -> artifact``.

    ``consumes``/``produces`` say which kind of model goes in and comes out; a measuring step
    (evaluate, profile) takes and gives a .tflite and adds its figures to the artifact.
    """

    name: ClassVar[str]
    params: ClassVar[type[StepParams]]
    consumes: ClassVar[ModelKind]
    produces: ClassVar[ModelKind]
    summary: ClassVar[str] = ""
    measures: ClassVar[bool] = False    # adds figures to the artifact instead of making a new model
    trains: ClassVar[bool] = False      # fine-tunes on the recipe's data.train

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
                raise TypeError(f"two steps are called {cls.name!r}")
            _REGISTRY[cls.name] = cls

    def check(self, params: StepParams, setting: "StepSetting") -> list[Problem]:
        """Rules between these params and the recipe around them (data, device); none by default."""
        problems = []
        if self.trains and not setting.has_train:
            problems.append(Problem(message=f"{self.name} fine-tunes the model and needs data.train",
                                    hint="add data.train to the recipe (or --train)"))
        return problems

    def resolve(self, params: StepParams, setting: "StepSetting") -> StepParams:
        """The params with every automatic choice made (e.g. a static batch for the device)."""
        return params

    def check_later(self, params: StepParams, later: list[tuple["Step", StepParams]]) -> list[Problem]:
        """Rules between these params and the steps that follow in the recipe; none by default."""
        return []

    def prepare(self, params: StepParams) -> None:
        """Start what ``run`` will wait for (a process that loads TensorFlow), so it loads while the
        steps before this one work; nothing by default. Called before a pipeline runs; may run twice."""

    def label(self, params: StepParams) -> str:
        """A short name for this stage in reports, e.g. ``prune 0.75``."""
        return self.name

    def run(self, ctx: "StepContext", source: ModelArtifact, params: StepParams) -> ModelArtifact:
        raise NotImplementedError


STEP_ORDER = ("sensitivity", "prune", "cluster", "quantize", "qat", "evaluate", "profile")


def registry() -> dict[str, type[Step]]:
    """Every step by name: the modules of ``edgepack.steps`` are imported (none imports TensorFlow
    at import time), and each ``Step`` subclass registered itself. Known steps come in pipeline
    order; a new step module is found without editing any list."""
    import importlib
    import pkgutil

    import edgepack.steps as package

    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")
    rank = {name: index for index, name in enumerate(STEP_ORDER)}
    return dict(sorted(_REGISTRY.items(), key=lambda item: rank.get(item[0], len(rank))))


def get_step(name: str) -> Step:
    """An instance of the step called ``name`` (KeyError if none)."""
    return registry()[name]()
