"""Find and load device profiles: a name (searched as ``edgepack.resources`` says), or a path."""

from __future__ import annotations

import difflib
from pathlib import Path

from edgepack import resources
from edgepack.devices.schema import DeviceProfile
from edgepack.errors import ConfigError
from edgepack.util.yamlfile import load_validated

DEVICES_DIR = resources.builtin_dir("devices")


def device_files(folder: Path | None = None) -> dict[str, Path]:
    """``{name: path}`` of the profiles found by name (file stem = profile name): the user's folders
    first, then the ones shipped with edgepack; or only those in ``folder`` when given."""
    if folder is None:
        return resources.named_files("devices")
    return {p.stem: p for p in sorted(Path(folder).glob("*.yaml"))} if Path(folder).is_dir() else {}


def _looks_like_path(value: str) -> bool:
    return "/" in value or value.endswith((".yaml", ".yml")) or value.startswith(".")


def load_device_file(path: str | Path) -> DeviceProfile:
    """Load and validate one profile file (ConfigError naming file:line and key on any problem)."""
    return load_validated(path, DeviceProfile, what="device profile")


def load_device(name_or_path: str | Path) -> DeviceProfile:
    """The profile called ``name_or_path`` in ``devices/``, or the profile file at that path.

    An unknown name is a ConfigError (exit 2) that lists the known names.
    """
    value = str(name_or_path)
    if not value.strip():
        raise ConfigError("empty device name", hint=_known_hint())
    path = Path(value)
    if isinstance(name_or_path, Path) or _looks_like_path(value) or (path.is_file() and value not in device_files()):
        if not path.is_file():
            raise ConfigError(f"device profile not found: {value}", hint=_known_hint())
        return load_device_file(path)
    files = device_files()
    if value not in files:
        close = difflib.get_close_matches(value, list(files), n=1, cutoff=0.6)
        did_you_mean = f"did you mean '{close[0]}'? " if close else ""
        raise ConfigError(f"unknown device '{value}'", hint=did_you_mean + _known_hint())
    profile = load_device_file(files[value])
    if profile.name != value:
        raise ConfigError(f"{files[value]}:1: name '{profile.name}' does not match the file name '{value}'",
                          hint=f"set name: {value}")
    return profile


def list_devices(extra: list[str | Path] = ()) -> list[DeviceProfile]:
    """Every profile shipped in ``devices/`` (sorted by name), plus the profile files in ``extra``."""
    return [load_device(name) for name in device_files()] + [load_device_file(p) for p in extra]


def _known_hint() -> str:
    names = list(device_files())
    if not names:
        return "no device profiles found; give the path of a profile file"
    return f"known devices: {', '.join(names)} (or give the path of a .yaml profile)"
