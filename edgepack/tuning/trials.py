"""A study's trials as edgepack reports them: figures, gates, settings, the best feasible one."""

from __future__ import annotations

from pydantic import BaseModel

from edgepack.recipes.tune_section import TuneSection

# What a trial shows of each step: the choices tune makes itself, then every searched field (declared
# on the step's params model, so a step added later shows its own).
CHOSEN = {"quantize": ("mode", "io", "max_drop", "promote"), "qat": ("io", "epochs"), "prune": ("structure",)}


def shown_keys(step: str) -> tuple[str, ...]:
    """The keys of ``step``'s params a trial line shows."""
    from edgepack.params import tunable_fields
    from edgepack.steps.base import registry

    step_cls = registry().get(step)
    searched = tuple(tunable_fields(step_cls.params)) if step_cls is not None else ()
    return tuple(dict.fromkeys(CHOSEN.get(step, ()) + searched))


class TrialSummary(BaseModel):
    """One trial: its steps (effective params), gzip size, .tflite bytes (flash), tensor arena (RAM),
    latency p50, drop, and whether it passes."""

    number: int
    state: str
    steps: list[dict] = []
    size_kb: float | None = None
    flash_kb: float | None = None
    ram_kb: float | None = None
    latency_ms: float | None = None
    drop: float | None = None
    feasible: bool = False
    violation: float | None = None
    note: str | None = None
    worker: str | None = None

    def settings(self) -> str:
        """The settings the search chose, compactly: ``prune 0.82 sensitivity · cluster 16 · quantize int8``."""
        parts = []
        for entry in self.steps:
            for name, params in entry.items():
                keys = shown_keys(name)
                if not keys:
                    continue
                shown = [text for key in keys if params.get(key) not in (None, False) and applies(name, key, params)
                         if (text := _value(key, params[key]))]
                parts.append(" ".join([name, *shown]))
        return " · ".join(parts) or "-"


def applies(step: str, key: str, params: dict) -> bool:
    """Whether ``key`` shaped the step: a searched field only under its condition (``target_macs`` for channel
    pruning, ``sparsity`` for unstructured), the rest always."""
    from edgepack.params import tunable_fields
    from edgepack.steps.base import registry

    step_cls = registry().get(step)
    domain = tunable_fields(step_cls.params).get(key) if step_cls is not None else None
    if domain is None:
        return True
    defaults = {name: field.default for name, field in step_cls.params.model_fields.items()}
    return domain.applies({k: getattr(v, "value", v) for k, v in {**defaults, **params}.items()})


def _value(key: str, value) -> str:
    if value is True:
        return key
    if isinstance(value, list):
        return "" if value == ["float"] else f"{key} {','.join(map(str, value))}"
    if key == "target_macs":
        return f"macs {value:g}"
    if key == "structure":
        return "" if value == "unstructured" else str(value)
    if key in ("max_drop", "io", "epochs"):
        return f"{key} {value}"
    return str(value)


def summary_of(trial) -> TrialSummary:
    """An Optuna FrozenTrial as a TrialSummary (figures and constraints from its user attributes)."""
    figures = trial.user_attrs.get("figures", {})
    constraints = trial.user_attrs.get("constraints")
    feasible = trial.state.name == "COMPLETE" and constraints is not None and all(c <= 0 for c in constraints)
    return TrialSummary(number=trial.number, state=trial.state.name, steps=trial.user_attrs.get("steps", []),
                        size_kb=figures.get("size"), flash_kb=figures.get("flash"), ram_kb=figures.get("ram"),
                        latency_ms=figures.get("latency"), drop=figures.get("drop"),
                        feasible=feasible, note=trial.user_attrs.get("note"), worker=trial.user_attrs.get("worker"),
                        violation=None if constraints is None else sum(max(0.0, c) for c in constraints))


def best_trial(rows: list[TrialSummary], space: TuneSection) -> TrialSummary | None:
    """The feasible trial that is best on the objectives in order (size first, by default)."""
    feasible = [r for r in rows if r.feasible]
    key = {"size": lambda r: r.size_kb, "flash": lambda r: r.flash_kb or 1e9, "ram": lambda r: r.ram_kb or 1e9,
           "latency": lambda r: r.latency_ms or 1e9, "drop": lambda r: r.drop or 0.0}
    return min(feasible, key=lambda r: tuple(key[name](r) for name in space.objectives)) if feasible else None
