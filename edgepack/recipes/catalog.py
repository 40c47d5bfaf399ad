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


def validate_recipe(path: str | Path) -> dict:
    """Check a recipe file completely (schema, device, input files) without running anything."""
    loaded = load_recipe(find_recipe(path))
    return {"recipe": str(loaded.path), "name": loaded.recipe.name, "device": loaded.device.name,
            "valid": True, "steps": [planned.step.label(planned.params) for planned in loaded.plan],
            "output": str(loaded.output)}
