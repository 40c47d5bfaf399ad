"""Bundle assembly in one place: the model, manifest, resolved recipe, reports and checksums."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from edgepack.bundle.checksums import write_sha256sums
from edgepack.bundle.manifest import Manifest
from edgepack.recipes.result import RunResult
from edgepack.report.render import write_reports

MODEL_FILE = "model.tflite"


def stage_model(stage: Path, model: Path) -> Path:
    """Copy the final .tflite into the staging folder (before accelerator checks that read it there)."""
    target = stage / MODEL_FILE
    shutil.copyfile(model, target)
    return target


def write_bundle(stage: Path, *, result: RunResult, manifest: Manifest, resolved_recipe: dict) -> None:
    """Write manifest.json, recipe.resolved.yaml, report.json/md/html and SHA256SUMS into ``stage``."""
    (stage / "manifest.json").write_text(manifest.model_dump_json(indent=2) + "\n")
    (stage / "recipe.resolved.yaml").write_text(yaml.safe_dump(resolved_recipe, sort_keys=False, allow_unicode=True))
    write_reports(stage, json.loads(result.model_dump_json()))
    write_sha256sums(stage)
