"""Where device profiles and recipes are found.

Both ship inside the package (``edgepack/devices/builtin``, ``edgepack/recipes/builtin``), so an
installed wheel is complete. A user's own files add to them or override them by name; the first
folder that has ``NAME.yaml`` wins:

1. folders given with ``edgepack --devices-dir DIR`` / ``--recipes-dir DIR`` (in the order given);
2. folders in ``$EDGEPACK_DEVICES`` / ``$EDGEPACK_RECIPES`` (separated by ``os.pathsep``);
3. ``./devices`` / ``./recipes`` in the folder edgepack runs in;
4. the ones shipped with edgepack.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Literal

Kind = Literal["devices", "recipes"]
ENVIRONMENT = {"devices": "EDGEPACK_DEVICES", "recipes": "EDGEPACK_RECIPES"}
_given: dict[str, list[Path]] = {"devices": [], "recipes": []}


def set_search_dirs(kind: Kind, folders: list[str | Path]) -> None:
    """The folders given on the command line (or by a Python caller) for ``kind``, searched first."""
    _given[kind] = [Path(folder) for folder in folders]


def builtin_dir(kind: Kind) -> Path:
    """The folder of the profiles or recipes shipped inside the package."""
    return Path(str(resources.files("edgepack") / kind / "builtin"))


def search_dirs(kind: Kind) -> list[Path]:
    """Every folder searched for ``kind``, first match first (see the module docstring)."""
    from_env = [Path(p) for p in os.environ.get(ENVIRONMENT[kind], "").split(os.pathsep) if p]
    folders = [*_given[kind], *from_env, Path.cwd() / kind, builtin_dir(kind)]
    unique, seen = [], set()
    for folder in folders:
        key = folder.resolve() if folder.exists() else folder
        if key not in seen:
            seen.add(key)
            unique.append(folder)
    return unique


def named_files(kind: Kind) -> dict[str, Path]:
    """``{name: path}`` of every ``NAME.yaml`` in the search folders, the first found for each name."""
    found: dict[str, Path] = {}
    for folder in search_dirs(kind):
        if folder.is_dir():
            for path in sorted(folder.glob("*.yaml")):
                found.setdefault(path.stem, path)
    return dict(sorted(found.items()))


def is_builtin(path: Path, kind: Kind) -> bool:
    """Whether ``path`` is one of the files shipped with edgepack."""
    try:
        return Path(path).resolve().parent == builtin_dir(kind).resolve()
    except OSError:
        return False
