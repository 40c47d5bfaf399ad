"""Bundle assembly in one place: the model, manifest, resolved recipe, reports and checksums."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Iterator

import yaml

from edgepack.bundle.checksums import write_sha256sums
from edgepack.bundle.manifest import Manifest
from edgepack.errors import OutputError
from edgepack.report.result import RunResult
from edgepack.report.render import write_reports

MODEL_FILE = "model.tflite"


@contextlib.contextmanager
def bundle_writes(target: Path) -> Iterator[None]:
    """Turn a failed write inside the block (a full disk, a read-only folder) into OutputError (exit 8)
    naming the file; the staging folder is removed by its own context and the previous bundle stays."""
    try:
        yield
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise OutputError(f"cannot write the bundle {target}: {exc.strerror or exc}{where}",
                          hint="free some space or choose another output folder with -o; the previous bundle "
                               "was not touched") from exc


def stage_model(stage: Path, model: Path) -> Path:
    """Copy the final .tflite into the staging folder (before accelerator checks that read it there)."""
    target = stage / MODEL_FILE
    shutil.copyfile(model, target)
    return target


def write_bundle(stage: Path, *, result: RunResult, manifest: Manifest, resolved_recipe: dict,
                 device=None) -> None:
    """Write manifest.json, recipe.resolved.yaml, the Model Explorer node data (explorer/), report.json/md/html
    and SHA256SUMS into ``stage``."""
    result.explorer = write_node_data(stage, result, device)
    (stage / "manifest.json").write_text(manifest.model_dump_json(indent=2) + "\n")
    (stage / "recipe.resolved.yaml").write_text(yaml.safe_dump(resolved_recipe, sort_keys=False, allow_unicode=True))
    write_reports(stage, result)
    write_sha256sums(stage)


EXPLORER = "explorer"


def write_node_data(stage: Path, result: RunResult, device) -> list[str]:
    """Model Explorer overlays of the bundled model (precision, Edge TPU / GPU placement, estimated time on
    ``device``, and the int8 error and accuracy control's choices where the run has them) in ``explorer/``;
    their paths relative to the bundle. A model the schema reader cannot read gets none (the report says)."""
    from edgepack.errors import EdgepackError
    from edgepack.explore import explore

    try:
        exploration = explore(stage / MODEL_FILE, stage / EXPLORER, device, result.decisions())
    except EdgepackError:
        return []
    return [Path(path).relative_to(stage).as_posix() for path in exploration.files.values()]
