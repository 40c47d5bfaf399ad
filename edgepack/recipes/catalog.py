"""``recipes list / show / validate``: the recipes found by name (see ``edgepack.resources``) and any file given."""

from __future__ import annotations

from pathlib import Path

from edgepack.recipes.loader import find_recipe, list_recipe_files, load_recipe


def list_recipes() -> list[dict]:
    """Name, device, description and steps of every shipped recipe (read, not run)."""
    from edgepack.util.yamlfile import load_yaml

    rows = []
    for path in list_recipe_files():
        data, _ = load_yaml(path)
        data = data if isinstance(data, dict) else {}
        steps = [next(iter(step)) for step in data.get("steps", []) if isinstance(step, dict) and step]
        rows.append({"name": data.get("name", path.stem), "file": str(path), "device": data.get("device"),
                     "steps": steps, "description": data.get("description", "")})
    return rows


def show_recipe(name_or_path: str) -> dict:
    """The recipe with every default filled in (paths resolved), as recipe.resolved.yaml would hold."""
    return load_recipe(name_or_path, check_files=False).resolved_dump()


def validate_recipe(path: str | Path, *, model: str | None = None, train: str | None = None,
                    val: str | None = None) -> dict:
    """Check a recipe file completely (schema, device, input files) without running anything.

    A shipped recipe named without ``model``/``train``/``val`` reads its inputs from the folder
    ``run`` is started in, so everything but their presence is checked, and ``inputs`` says which files
    it will read from where (``exists`` each); a recipe of your own, or one given inputs, must find them."""
    from edgepack import resources
    from edgepack.recipes.loader import recipe_inputs

    found = find_recipe(path)
    deferred = resources.is_builtin(found, "recipes") and not (model or train or val)
    loaded = load_recipe(found, model=model, train=train, val=val, check_files=not deferred)
    inputs = [{"key": ".".join(key), "path": value, "exists": Path(value).exists()}
              for key, value in recipe_inputs(loaded.recipe)]
    return {"recipe": str(loaded.path), "name": loaded.recipe.name, "device": loaded.device.name,
            "valid": True, "steps": [planned.step.label(planned.params) for planned in loaded.plan],
            "output": str(loaded.output), "inputs": inputs,
            "inputs_checked": not deferred}
