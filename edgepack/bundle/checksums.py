"""``SHA256SUMS`` in the format ``sha256sum -c`` reads, and ``edgepack verify``."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from edgepack.errors import ModelError
from edgepack.util.files import sha256_file

SUMS = "SHA256SUMS"


def write_sha256sums(folder: Path) -> Path:
    """Hash every file in ``folder`` (recursively, sorted) into ``folder/SHA256SUMS``."""
    lines = [f"{sha256_file(path)}  {path.relative_to(folder).as_posix()}"
             for path in sorted(folder.rglob("*")) if path.is_file() and path.name != SUMS]
    target = folder / SUMS
    target.write_text("\n".join(lines) + "\n")
    return target


class Verification(BaseModel):
    """What ``verify`` checked."""

    bundle: str
    files: int
    ok: bool
    problems: list[str]
    name: str | None = None
    model_sha256: str | None = None


def verify_bundle(folder: str | Path) -> Verification:
    """Check every checksum, that no file is missing or unlisted, and that the manifest agrees."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"bundle not found: {folder}", hint="give the folder that 'edgepack run' wrote")
    sums = folder / SUMS
    if not sums.is_file():
        raise ModelError(f"{folder} has no {SUMS}, so it is not an edgepack bundle or it is damaged")
    problems, listed = [], {}
    for number, line in enumerate(sums.read_text().splitlines(), start=1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            problems.append(f"{SUMS} line {number} is malformed")
            continue
        listed[name] = digest
    for name, digest in listed.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} is listed but missing")
        elif sha256_file(path) != digest:
            problems.append(f"{name} does not match its checksum")
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != SUMS and path.relative_to(folder).as_posix() not in listed:
            problems.append(f"{path.relative_to(folder).as_posix()} is not listed in {SUMS}")
    manifest, name, model_sha = folder / "manifest.json", None, None
    try:
        data = json.loads(manifest.read_text())
        name, model_sha = data.get("name"), data.get("model", {}).get("sha256")
        if model_sha and (folder / "model.tflite").is_file() and sha256_file(folder / "model.tflite") != model_sha:
            problems.append("model.tflite does not match the sha256 in manifest.json")
    except (OSError, ValueError, AttributeError):
        problems.append("manifest.json is missing or not valid JSON")
    return Verification(bundle=str(folder), files=len(listed), ok=not problems, problems=problems,
                        name=name, model_sha256=model_sha)
