"""The base of every step's parameters, and the search domain a field may declare for ``tune``.

It sits at the bottom of the package so that the engines that own a params model (compress,
evaluation, latency) can define it without importing the step layer. A tunable field declares its
domain beside its default and range, in one place::

    sparsity: float = Field(default=0.5, ge=0.0, lt=1.0, description="...",
                            json_schema_extra=searched(low=0.5, high=0.95))

``tune`` reads the domains from the step registry (a step added in one module is tunable with no
edit elsewhere), a recipe's ``tune: {space: {prune.sparsity: [0.6, 0.9]}}`` overrides one by its
key path, and every value searched is checked by the field itself.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from edgepack.errors import validation_problem


class StepParams(BaseModel):
    """Base of every step's parameters: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_enum_values=False)


class Domain(BaseModel):
    """Where ``tune`` searches one field: a float or int range, or a list of choices."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["float", "int", "choice"]
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()
    digits: int = 3  # a float is rounded to this many decimals (a recipe shows 0.812, not 0.81234...)
    when: tuple[tuple[str, Any], ...] = ()  # searched only in trials whose step has these values (structure: channels)
    corner: Any = None  # the value tune's second trial takes: far toward compression, trained long enough to hold
    fast_corner: Any = None  # the value in the fast corner tune tries when latency is an objective (channels cut deep)

    def applies(self, params: dict) -> bool:
        """Whether the field is searched for a step configured as ``params``."""
        return all(params.get(key) == value for key, value in self.when)

    def with_values(self, values: list) -> "Domain":
        """This domain narrowed or replaced as a recipe's ``tune: space`` writes it: ``[low, high]`` for a
        range, the list of values for choices."""
        if self.kind == "choice":
            if not isinstance(values, list) or not values:
                raise ValueError("give a non-empty list of values")
            return self.model_copy(update={"choices": tuple(dict.fromkeys(values))})
        if not (isinstance(values, list) and len(values) == 2 and all(isinstance(v, (int, float)) for v in values)):
            raise ValueError("give a range as [low, high]")
        low, high = values
        if low > high:
            raise ValueError(f"[{low}, {high}] needs low <= high")
        return self.model_copy(update={"low": low, "high": high})

    def nearest(self, value):
        """``value`` brought inside the domain (a range clips it; a choice it does not offer gives None)."""
        if self.kind == "choice":
            return value if value in self.choices else None
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return None
        clipped = min(max(value, self.low), self.high)
        return int(clipped) if self.kind == "int" else float(clipped)

    def values(self) -> list:
        """The domain's extremes (a range) or its choices: what a field must accept."""
        return [self.low, self.high] if self.kind != "choice" else list(self.choices)

    def suggest(self, trial, name: str):
        """One value drawn by an Optuna ``trial`` under the parameter name ``name``."""
        if self.kind == "choice":
            return trial.suggest_categorical(name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(name, int(self.low), int(self.high))
        return round(trial.suggest_float(name, self.low, self.high), self.digits)


def searched(*, low: float | None = None, high: float | None = None, choices: list | None = None,
             integer: bool = False, when: dict | None = None, corner: Any = None, fast_corner: Any = None) -> dict:
    """The ``json_schema_extra`` of a tunable field: a range (``low``, ``high``) or ``choices``; ``when`` names
    the values of other fields of the step under which the field is searched (e.g. ``{"structure": "channels"}``);
    ``corner`` is the field's value in the compressing corner tune tries second (high sparsity, few clusters,
    the longer fine-tuning such a model needs), None to leave it to the sampler there; ``fast_corner`` its value
    in the fast corner tune tries when latency is an objective (channels removed deep, distilled, int8)."""
    condition = tuple((when or {}).items())
    if choices is not None:
        domain = Domain(kind="choice", choices=tuple(choices), when=condition, corner=corner,
                        fast_corner=fast_corner)
    else:
        domain = Domain(kind="int" if integer else "float", low=low, high=high, when=condition, corner=corner,
                        fast_corner=fast_corner)
    return {"search": domain.model_dump()}


def tunable_fields(params_cls: type[BaseModel]) -> dict[str, Domain]:
    """Each field of ``params_cls`` that declares a search domain, with its domain."""
    found = {}
    for name, field in params_cls.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if "search" in extra:
            found[name] = Domain.model_validate(extra["search"])
    return found


def check_domain(params_cls: type[BaseModel], name: str, domain: Domain) -> None:
    """Raise ValueError unless the field ``name`` of ``params_cls`` accepts every value ``domain`` names
    (its extremes, or each choice), read from the field's own rules, in a step configured as the domain's
    ``when`` says (a channels-only field is checked in a channel step)."""
    try:
        base = params_cls.model_validate(dict(domain.when))
    except ValidationError:
        base = params_cls.model_construct()
    for value in domain.values():
        try:
            params_cls.__pydantic_validator__.validate_assignment(base.model_copy(), name, value)
        except ValidationError as exc:
            reason = validation_problem(exc)[1]
            raise ValueError(f"{value!r} is not a valid value: {reason}") from None
