"""What produced an artifact: tool and library versions, written beside every result."""

from __future__ import annotations

import datetime as _dt
import json
import platform
from importlib import metadata
from pathlib import Path

from edgepack import __version__
from edgepack.util.files import write_bytes_atomic

LIBRARIES = ("tensorflow", "tf-keras", "keras", "tensorflow-model-optimization", "ai-edge-litert",
             "tflite-runtime", "numpy")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that can change a result."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def provenance() -> dict:
    """Tool, libraries, Python and platform, and the time."""
    return {
        "edgepack": __version__,
        "libraries": library_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def sidecar_path(artifact: str | Path) -> Path:
    """Where the resolved configuration of ``artifact`` is written: ``<artifact>.edgepack.json``."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".edgepack.json")


def write_sidecar(artifact: str | Path, record: dict) -> Path:
    """Write ``record`` (plus provenance) beside ``artifact`` so the result can be reproduced."""
    path = sidecar_path(artifact)
    body = {**record, "provenance": provenance()}
    write_bytes_atomic(path, (json.dumps(body, indent=2, default=str) + "\n").encode())
    return path
