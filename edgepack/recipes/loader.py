"""Load a recipe file: validate it, resolve its paths, and check it against its device profile.

Input paths (model, data) are relative to the recipe file; ``output`` is relative to the folder
``edgepack run`` is started in (like any build output). Every check here runs before heavy work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pydantic import ValidationError

from edgepack.errors import ConfigError
from edgepack.recipes.schema import QuantizeStep, Recipe
from edgepack.util.yamlfile import config_error, load_yaml

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"


@dataclass
class LoadedRecipe:
    """A validated recipe with absolute paths, its device profile, and where its bundle goes."""

    path: Path
    recipe: Recipe
    device: Any  # edgepack.devices DeviceProfile
    device_ref: str
    output: Path

    def resolved_dump(self) -> dict:
        """The recipe as written to recipe.resolved.yaml: every default filled in, absolute paths."""
        data = self.recipe.model_dump(mode="json")
        data["device"] = self.device_ref
        data["output"] = str(self.output)
        return data


def find_recipe(name_or_path: str | Path) -> Path:
    """A recipe file path, or the file ``recipes/NAME.yaml`` shipped with edgepack."""
    path = Path(name_or_path)
    if path.exists() or path.suffix in {".yaml", ".yml"} or "/" in str(name_or_path):
        return path
    shipped = RECIPES_DIR / f"{name_or_path}.yaml"
    if shipped.exists():
        return shipped
    known = ", ".join(p.stem for p in list_recipe_files())
    raise ConfigError(f"unknown recipe '{name_or_path}'", hint=f"known recipes: {known}; or give a file path")


def list_recipe_files() -> list[Path]:
    return sorted(RECIPES_DIR.glob("*.yaml"))


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


def _check_against_device(recipe: Recipe, device, path: Path, line_of: Callable) -> None:
    modes = {getattr(m, "value", m) for m in device.modes}
    accelerator = getattr(device.accelerator, "value", device.accelerator)
    params = recipe.quantize_params
    index = next((i for i, s in enumerate(recipe.steps) if isinstance(s, QuantizeStep)), None)
    key = ("steps", index, "quantize", "mode") if index is not None else ("steps",)
    where = f"{path}:{line_of(key)}"
    if params.mode.value not in modes:
        raise ConfigError(f"{where}: quantize mode {params.mode.value} is not run by device {device.name} "
                          f"(it runs: {', '.join(sorted(modes))})", hint="choose one of the device's modes")
    if accelerator == "edgetpu" and (params.mode.value != "int8" or params.io.value == "float32"):
        raise ConfigError(f"{where}: device {device.name} is an Edge TPU, which needs a full-integer model with "
                          f"integer input and output", hint="use quantize: {mode: int8, io: int8} (or io: uint8)")


def _check_inputs_exist(recipe: Recipe, path: Path, line_of: Callable) -> None:
    checks = [(("model",), recipe.model), (("data", "train"), recipe.data.train), (("data", "val"), recipe.data.val)]
    for key, value in checks:
        if value and ":" not in Path(value).name and not Path(value).exists():
            raise ConfigError(f"{path}:{line_of(key)}: {'.'.join(key)}: {value} does not exist",
                              hint="paths in a recipe are relative to the recipe file")


def load_recipe(name_or_path: str | Path, *, model: str | Path | None = None, train: str | None = None,
                val: str | None = None, device: str | None = None, output: str | Path | None = None,
                check_files: bool = True) -> LoadedRecipe:
    """Read and check a recipe; command-line overrides (relative to the working folder) win."""
    path = find_recipe(name_or_path)
    data, line_of = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: a recipe must be a YAML mapping of keys")
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, path, line_of, data=data, model=Recipe) from None
    base, cwd = path.resolve().parent, Path.cwd()
    updates = {"model": _resolve(base, recipe.model),
               "data": recipe.data.model_copy(update={"train": _resolve(base, recipe.data.train),
                                                      "val": _resolve(base, recipe.data.val)})}
    if model is not None:
        updates["model"] = str((cwd / model).resolve())
    if train is not None:
        updates["data"] = updates["data"].model_copy(update={"train": _resolve(cwd, train)})
    if val is not None:
        updates["data"] = updates["data"].model_copy(update={"val": _resolve(cwd, val)})
    recipe = recipe.model_copy(update=updates).resolved()
    try:
        Recipe.model_validate(recipe.model_dump())  # the cross-field rules again, after the overrides
    except ValidationError as exc:
        raise config_error(exc, path, line_of, data=data, model=Recipe) from None
    if check_files:
        _check_inputs_exist(recipe, path, line_of)
    device_profile, device_ref = _device(device or recipe.device,
                                         cwd if device else base, f"{path}:{line_of(('device',))}")
    _check_against_device(recipe, device_profile, path, line_of)
    target = Path(str(output) if output is not None else recipe.output.replace("{name}", recipe.name))
    return LoadedRecipe(path=path, recipe=recipe, device=device_profile, device_ref=device_ref,
                        output=(cwd / target).resolve())
