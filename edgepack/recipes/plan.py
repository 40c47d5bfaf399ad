"""A recipe's steps as a checked plan: kinds in order, each step's rules, implicit steps added, auto
choices made. ``recipes validate`` and ``run`` both go through here, so validate refuses whatever run
would refuse before heavy work."""

from __future__ import annotations

from dataclasses import dataclass

from edgepack.recipes.schema import entry_name, entry_params
from edgepack.steps.base import ModelKind, Step, StepParams, get_step, registry
from edgepack.steps.context import StepSetting

KIND_NAMES = {ModelKind.KERAS: "a Keras model", ModelKind.TFLITE: "a .tflite"}


@dataclass(frozen=True)
class PlannedStep:
    """One step to run: the step, its resolved params, and its place in the recipe (None: implicit)."""

    step: Step
    params: StepParams
    index: int | None

    @property
    def name(self) -> str:
        return self.step.name

    def entry(self) -> dict:
        """``{name: params}`` as written to recipe.resolved.yaml."""
        return {self.name: self.params.model_dump(mode="json")}


@dataclass(frozen=True)
class PlanProblem:
    """A rule that does not hold, with the key path in the recipe where it is."""

    key: tuple
    message: str
    hint: str | None = None


def _order_problem(index: int, name: str, step: Step, current: ModelKind, producer: str | None) -> PlanProblem:
    if step.consumes is ModelKind.KERAS and producer:
        message = (f"steps: {producer} must be the last step that changes the model ({name}, step {index + 1}, "
                   f"takes a Keras model and {producer} already made a .tflite)")
    else:
        message = (f"steps: {name} (step {index + 1}) measures the .tflite, but the model is still "
                   f"{KIND_NAMES[current]} at that point; put it after quantize")
    return PlanProblem(("steps", index, name), message)


def plan_steps(entries: list, setting: StepSetting) -> tuple[list[PlannedStep], list[PlanProblem]]:
    """The recipe's entries checked and completed: a float32 quantize when none makes a .tflite, and the
    measuring steps (evaluate, profile) the recipe leaves out, with their defaults."""
    planned, problems, seen = [], [], set()
    current, producer = ModelKind.KERAS, None
    converts_later = any(_converts(get_step(entry_name(entry))) for entry in entries)
    for index, entry in enumerate(entries):
        name, params = entry_name(entry), entry_params(entry)
        step = get_step(name)
        if step.measures and step.consumes is ModelKind.TFLITE and current is ModelKind.KERAS and not converts_later:
            conversion = _implicit(current, seen | set(registry()), setting)  # the conversion alone
            problems += _implicit_problems(conversion, setting)
            planned += conversion
            current, producer = ModelKind.TFLITE, conversion[0].name
        if step.consumes is not current:
            problems.append(_order_problem(index, name, step, current, producer))
            continue
        if step.measures and name in seen:
            problems.append(PlanProblem(("steps", index, name), f"steps: {name} appears more than once"))
        problems += [PlanProblem(("steps", index, name, *p.key), f"steps[{index}].{name}: {p.message}", p.hint)
                     for p in step.check(params, setting)]
        planned.append(PlannedStep(step, step.resolve(params, setting), index))
        seen.add(name)
        if step.produces is not current:
            current, producer = step.produces, name
    added = _implicit(current, seen, setting)
    return planned + added, problems + _implicit_problems(added, setting) + _later_problems(planned + added)


def _later_problems(planned: list[PlannedStep]) -> list[PlanProblem]:
    """Each step's rules on the steps after it (e.g. pruning for XNNPACK's float kernels before int8)."""
    problems = []
    for position, one in enumerate(planned):
        later = [(other.step, other.params) for other in planned[position + 1:]]
        where = ("steps", one.index, one.name) if one.index is not None else ("steps", one.name)
        problems += [PlanProblem((*where, *p.key), f"steps[{one.index}].{one.name}: {p.message}", p.hint)
                     for p in one.step.check_later(one.params, later)]
    return problems


def _converts(step: Step) -> bool:
    return step.consumes is ModelKind.KERAS and step.produces is ModelKind.TFLITE


def _implicit_problems(added: list[PlannedStep], setting: StepSetting) -> list[PlanProblem]:
    return [PlanProblem(("steps",), f"steps: the implicit {a.name} step ({a.step.label(a.params)}): {p.message}",
                        p.hint) for a in added for p in a.step.check(a.params, setting)]


def _implicit(current: ModelKind, seen: set, setting: StepSetting) -> list[PlannedStep]:
    added = []
    for name, step_cls in registry().items():
        step = step_cls()
        wanted = (current is ModelKind.KERAS and _converts(step)) or \
            (step.measures and step.consumes is ModelKind.TFLITE and name not in seen)
        if wanted and step.consumes is current:
            added.append(PlannedStep(step, step.resolve(step.params(), setting), None))
            if step.produces is ModelKind.TFLITE:
                current = ModelKind.TFLITE
    return added
