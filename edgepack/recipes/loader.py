"""Load a recipe file: validate it, resolve its paths, and check it and its steps against its device.

Input paths (model, data) are relative to the recipe file (for a recipe shipped inside edgepack:
to the folder edgepack runs in); ``output`` is relative to the folder ``edgepack run`` is started
in (like any build output). Every check here runs before heavy work, and ``recipes validate`` runs
all of them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pydantic import ValidationError

from edgepack import resources
from edgepack.errors import ConfigError
from edgepack.recipes.plan import PlannedStep, plan_steps
from edgepack.recipes.schema import Recipe
from edgepack.steps.context import StepSetting
from edgepack.util.yamlfile import config_error, load_yaml


@dataclass
class LoadedRecipe:
    """A validated recipe with absolute paths, its device profile, its checked plan, and its bundle path."""

    path: Path
    recipe: Recipe
    device: Any  # edgepack.devices DeviceProfile
    device_ref: str
    output: Path
    plan: list[PlannedStep] = field(default_factory=list)
    setting: StepSetting = field(default_factory=StepSetting)

    def resolved_dump(self) -> dict:
        """The recipe as written to recipe.resolved.yaml: every step and default filled in, absolute paths."""
        data = self.recipe.model_dump(mode="json")
        data["device"] = self.device_ref
        data["steps"] = [planned.entry() for planned in self.plan]
        data["output"] = str(self.output)
        return data

    def relative_to_recipe(self, path: str | Path) -> str:
        """``path`` relative to the recipe's folder (how the manifest names the source model)."""
        return Path(os.path.relpath(Path(path).resolve(), self.path.resolve().parent)).as_posix()


def find_recipe(name_or_path: str | Path) -> Path:
    """A recipe file path, or the recipe called NAME in the user's recipe folders or edgepack's own."""
    path = Path(name_or_path)
    if path.exists() or path.suffix in {".yaml", ".yml"} or "/" in str(name_or_path):
        return path
    files = resources.named_files("recipes")
    if str(name_or_path) in files:
        return files[str(name_or_path)]
    raise ConfigError(f"unknown recipe '{name_or_path}'", hint=f"known recipes: {', '.join(files)}; or give a file path")


def list_recipe_files() -> list[Path]:
    """Every recipe found by name (the user's folders first, then the ones shipped with edgepack)."""
    return list(resources.named_files("recipes").values())


def _resolve(base: Path, value: str | None) -> str | None:
    if value is None or (":" in value and not Path(base / value).exists() and not value.startswith(("/", "."))):
        return value  # None, or a package.module:function data spec
    return str((base / value).resolve())


def _device(ref: str, base: Path, where: str):
    from edgepack.devices import load_device

    is_path = ref.endswith((".yaml", ".yml")) or "/" in ref
    target = str((base / ref).resolve()) if is_path else ref
    try:
        return load_device(target), target
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from None


def recipe_inputs(recipe: Recipe) -> list[tuple[tuple[str, ...], str]]:
    """The input files a recipe reads, by key path (model, data.train, data.val), as resolved."""
    checks = [(("model",), recipe.model), (("data", "train"), recipe.data.train), (("data", "val"), recipe.data.val)]
    return [(key, value) for key, value in checks if value and ":" not in Path(value).name]


def _check_inputs_exist(recipe: Recipe, path: Path, line_of: Callable, hint: str) -> None:
    for key, value in recipe_inputs(recipe):
        if not Path(value).exists():
            raise ConfigError(f"{path}:{line_of(key)}: {'.'.join(key)}: {value} does not exist", hint=hint)


def _path_rule(base: Path, builtin: bool, overridden: bool) -> str:
    """The rule that resolved the recipe's input paths, as the hint of a missing one says it."""
    if overridden:
        return f"--model, --train and --val are relative to the folder you run in ({base} for the recipe's own)"
    if builtin:
        return (f"a shipped recipe reads its inputs from the folder you run in ({base}); run there, or give "
                f"--model, --train and --val")
    return f"paths in a recipe are relative to the recipe file's folder ({base})"


def _validated(data: dict, path: Path, line_of: Callable) -> Recipe:
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, path, line_of, data=data, model=Recipe) from None


def _with_overrides(recipe: Recipe, base: Path, *, model, train, val) -> Recipe:
    cwd = Path.cwd()
    updates = {"model": _resolve(base, recipe.model),
               "data": recipe.data.model_copy(update={"train": _resolve(base, recipe.data.train),
                                                      "val": _resolve(base, recipe.data.val)})}
    if model is not None:
        updates["model"] = str((cwd / model).resolve())
    if train is not None:
        updates["data"] = updates["data"].model_copy(update={"train": _resolve(cwd, train)})
    if val is not None:
        updates["data"] = updates["data"].model_copy(update={"val": _resolve(cwd, val)})
    return recipe.model_copy(update=updates)


def _plan(recipe: Recipe, setting: StepSetting, path: Path, line_of: Callable) -> list[PlannedStep]:
    planned, problems = plan_steps(recipe.steps, setting)
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise ConfigError(f"{path}:{line_of(first.key)}: {first.message}{more}", hint=first.hint)
    return planned


def load_recipe(name_or_path: str | Path, *, model: str | Path | None = None, train: str | None = None,
                val: str | None = None, device: str | None = None, output: str | Path | None = None,
                check_files: bool = True) -> LoadedRecipe:
    """Read and check a recipe; command-line overrides (relative to the working folder) win."""
    path = find_recipe(name_or_path)
    data, line_of = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: a recipe must be a YAML mapping of keys")
    recipe = _validated(data, path, line_of)
    cwd = Path.cwd()
    builtin = resources.is_builtin(path, "recipes")
    base = cwd if builtin else path.resolve().parent
    recipe = _with_overrides(recipe, base, model=model, train=train, val=val)
    _validated(recipe.model_dump(mode="json"), path, line_of)  # the cross-field rules again, after the overrides
    if check_files:
        _check_inputs_exist(recipe, path, line_of, _path_rule(base, builtin, bool(model or train or val)))
    device_profile, device_ref = _device(device or recipe.device, cwd if device else base,
                                         f"{path}:{line_of(('device',))}")
    setting = StepSetting(has_train=bool(recipe.data.train), has_val=bool(recipe.data.val), device=device_profile,
                          metric=recipe.metric)
    planned = _plan(recipe, setting, path, line_of)
    target = Path(str(output) if output is not None else recipe.output.replace("{name}", recipe.name))
    return LoadedRecipe(path=path, recipe=recipe, device=device_profile, device_ref=device_ref,
                        output=(cwd / target).resolve(), plan=planned, setting=setting)
