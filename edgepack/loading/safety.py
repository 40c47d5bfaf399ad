"""Refuse saved Keras configs that would run Python code when deserialized.

Keras's own ``safe_mode`` is not enough: tf_keras ignores it for ``.h5`` files and runs a Lambda's
code while loading. So edgepack walks the saved config itself, before anything is deserialized.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

UNSAFE_CLASSES = {
    "Lambda": "holds Python code",
    "TFSMLayer": "loads and runs a SavedModel from another path",
}
TRUSTED_MODULE_PREFIXES = ("keras", "tf_keras", "tensorflow", "builtins")


@dataclass(frozen=True)
class UnsafeObject:
    """One object in a saved config that edgepack will not deserialize without --trust-model."""

    key_path: str
    class_name: str
    name: str | None
    why: str

    def describe(self) -> str:
        """A phrase such as "Lambda layer 'double' (config.layers[1]) holds Python code"."""
        label = f"{self.class_name} layer '{self.name}'" if self.name else f"object '{self.class_name}'"
        return f"{label} at {self.key_path} {self.why}"


def _walk(node: Any, path: str) -> Iterator[tuple[str, dict]]:
    if isinstance(node, dict):
        if "class_name" in node:
            yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}[{index}]")


def find_unsafe_objects(config: Any) -> list[UnsafeObject]:
    """Every Lambda-like layer and every object from a non-Keras Python module in ``config``."""
    found = []
    for path, node in _walk(config, "config"):
        class_name = str(node.get("class_name"))
        inner = node.get("config")
        name = inner.get("name") if isinstance(inner, dict) else None
        module = node.get("module")
        if class_name in UNSAFE_CLASSES:
            found.append(UnsafeObject(path, class_name, name, UNSAFE_CLASSES[class_name]))
        elif isinstance(module, str) and not module.startswith(TRUSTED_MODULE_PREFIXES):
            found.append(UnsafeObject(path, class_name, name,
                                      f"is custom code from Python module '{module}'"))
        elif isinstance(inner, dict) and inner.get("function_type") in {"lambda", "function"} \
                and class_name not in UNSAFE_CLASSES:
            found.append(UnsafeObject(path, class_name, name, "holds a Python function"))
    return found
