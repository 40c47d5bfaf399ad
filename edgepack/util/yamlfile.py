"""Read YAML configuration files safely, with line numbers for every key, and explain errors by line.

Used by the device profiles (``devices/*.yaml``) and the recipes (``recipes/*.yaml``). Typical use::

    from edgepack.util.yamlfile import load_validated
    profile = load_validated(path, DeviceProfile, what="device profile")

or, in two steps when the data needs work before validation::

    data, line_of = load_yaml(path)            # ConfigError (exit 2) for bad YAML
    try:
        Model.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, path, line_of, model=Model) from None

What the reader guarantees:

- a safe loader (no Python objects), and duplicate keys are errors (PyYAML would keep the last);
- YAML 1.2 scalars where YAML 1.1 surprises people: only ``true``/``false`` are booleans
  (``yes``, ``no``, ``on``, ``off`` stay strings) and ``1e-3`` is a float, not a string;
- ``line_of(("a", "b", 0, "c"))`` gives the 1-based line of that key (or of the nearest
  enclosing key that exists), so every error can name ``file:line`` and the key path ``a.b[0].c``;
- bounded work on hostile files: at most ``MAX_YAML_BYTES`` are read, and a document that would
  expand (aliases counted once per use) to more than ``MAX_YAML_NODES`` values, nests deeper than
  ``MAX_YAML_DEPTH`` or holds a recursive alias is refused while it is being composed, before any
  expanded structure is built ("billion laughs"). Every failure is a ConfigError (exit 2).
"""

from __future__ import annotations

import difflib
import re
import typing
from pathlib import Path
from typing import Any, Callable

import yaml
from pydantic import BaseModel, ValidationError

from edgepack.errors import ConfigError

KeyPath = tuple  # of str (mapping keys) and int (list indices)

__all__ = ["load_yaml", "load_validated", "config_error", "key_path_str", "KeyPath",
           "MAX_YAML_BYTES", "MAX_YAML_NODES", "MAX_YAML_DEPTH"]

MAX_YAML_BYTES = 1 << 20
"""Largest file read (1 MiB). The shipped recipes and device profiles are 1-2 KB."""
MAX_YAML_NODES = 10_000
"""Most values (scalars, lists, mappings) in a document with every alias expanded. The shipped files
have fewer than 100; a billion-laughs document is refused as soon as its count passes this."""
MAX_YAML_DEPTH = 64
"""Deepest nesting of lists and mappings (the shipped files nest 4 deep); keeps recursion bounded."""


class _Refused(Exception):
    """A document edgepack will not build, with the YAML mark of where that became clear."""

    def __init__(self, problem: str, mark, hint: str):
        super().__init__(problem)
        self.problem, self.mark, self.hint = problem, mark, hint


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans and floats, bounded alias expansion and nesting, and
    scalar conversion errors reported as YAML errors (see the module docstring)."""

    def __init__(self, stream):
        super().__init__(stream)
        self._expanded = 0  # values composed so far, an alias counting the whole value it names
        self._anchored_sizes: dict = {}  # id(node) -> expanded size, for finished anchored nodes
        self._depth = 0

    def _count(self, values: int, mark) -> None:
        self._expanded += values
        if self._expanded > MAX_YAML_NODES:
            raise _Refused(f"the document has more than {MAX_YAML_NODES:,} values once its aliases are "
                           f"expanded (each use of an alias counts every value it names)", mark,
                           "a recipe or device profile needs far fewer: write the values out or use fewer aliases")

    def compose_node(self, parent, index):
        """Compose as PyYAML does, counting the expanded size so a billion laughs stops early."""
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None:  # an undefined alias is PyYAML's own error
                size = self._anchored_sizes.get(id(target))
                if size is None:
                    raise _Refused(f"alias '*{event.anchor}' is used inside the value it names (a recursive "
                                   f"alias)", event.start_mark, "write the value out instead of the alias")
                self._count(size, event.start_mark)
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            raise _Refused(f"lists and mappings nest more than {MAX_YAML_DEPTH} levels deep", event.start_mark,
                           "a recipe or device profile nests a few levels at most")
        start = self._expanded
        self._count(1, event.start_mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if getattr(event, "anchor", None) is not None:
            self._anchored_sizes[id(node)] = self._expanded - start
        return node

    def construct_object(self, node, deep=False):
        """PyYAML's construction; a scalar its tag cannot read (``2001-13-45``, ``!!int x``)
        becomes a YAML error at that scalar instead of a ValueError."""
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            shown = repr(node.value)[:60] if isinstance(node, yaml.ScalarNode) else "this value"
            kind = node.tag.rsplit(":", 1)[-1]
            why = "" if isinstance(exc, AttributeError) else f" ({exc})"  # PyYAML's regex did not match
            raise _Refused(f"cannot read {shown} as a YAML {kind}{why}", node.start_mark,
                           "quote the value to make it a string, or fix it") from None


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers
            if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
                   |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def key_path_str(path: KeyPath) -> str:
    """``("steps", 0, "prune")`` -> ``steps[0].prune`` (empty path -> ``(top level)``)."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _walk(node, path: KeyPath, lines: dict, source: str) -> None:
    """Record the line of every key below ``node``; refuse duplicate keys."""
    if isinstance(node, yaml.MappingNode):
        seen: dict = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(f"{source}:{line}: duplicate key '{key_path_str((*path, key))}' "
                                  f"(first given on line {seen[key]})", hint="keep one of them")
            seen[key] = line
            lines[(*path, key)] = line
            _walk(value_node, (*path, key), lines, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _walk(item, (*path, index), lines, source)


def _read_bounded(path: Path) -> str:
    """The text of ``path``, refusing one over ``MAX_YAML_BYTES`` before reading it (and reading at
    most that much, in case the size on disk lies: a device, a growing file)."""
    too_large = ConfigError(f"{path}: the file is larger than {MAX_YAML_BYTES // (1 << 20)} MiB, far too large "
                            f"for a recipe or device profile", hint="check that this is the right file")
    try:
        if path.stat().st_size > MAX_YAML_BYTES:
            raise too_large
        with path.open(encoding="utf-8") as handle:  # text mode: universal newlines, as before
            text = handle.read(MAX_YAML_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found", hint="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc})") from None
    if len(text) > MAX_YAML_BYTES:
        raise too_large
    return text


def load_yaml(path: str | Path) -> tuple[Any, Callable[[KeyPath], int | None]]:
    """Read ``path``: ``(data, line_of)`` where ``line_of(key_path)`` is a 1-based line or None.

    Raises ConfigError (exit 2) naming the file and line for a missing, unreadable or too large
    file (over ``MAX_YAML_BYTES``), bad YAML syntax, duplicate keys, more than one document, a
    scalar its tag cannot read, or a document whose aliases expand past ``MAX_YAML_NODES`` values.
    """
    path = Path(path)
    text = _read_bounded(path)
    try:
        loader = _Loader(text)  # checks every character first: a control character is refused here
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(f"{path}:{line}: invalid YAML: character #x{exc.character:04x} is not allowed in YAML",
                          hint="remove it; the file may be binary or damaged") from None
    try:
        node = loader.get_single_node()
        lines: dict = {(): 1}
        if node is not None:
            _walk(node, (), lines, str(path))
        data = loader.construct_document(node) if node is not None else None
    except _Refused as exc:
        where = f"{path}:{exc.mark.line + 1}" if exc.mark else str(path)
        raise ConfigError(f"{where}: {exc.problem}", hint=exc.hint) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {exc.problem or exc.context}",
                          hint="fix the syntax (indentation, a missing ':' or quote)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from None
    finally:
        loader.dispose()

    def line_of(key_path: KeyPath) -> int | None:
        key_path = tuple(key_path)
        while key_path not in lines:
            key_path = key_path[:-1]
        return lines[key_path]

    return data, line_of


def _data_path(data: Any, loc: tuple, final_key: bool) -> KeyPath:
    """Pydantic's ``loc`` without its internal tags (union members, validators): the keys in the data."""
    path: list = []
    current = data
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(current, dict) and part in current:
            path.append(part)
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            path.append(part)
            current = current[part]
        elif last and final_key and isinstance(current, dict) and isinstance(part, str):
            path.append(part)  # a missing key: named, though it is not in the data
    return tuple(path)


def _models_in(annotation) -> list:
    """The pydantic model classes an annotation can hold (through Optional, list, dict, unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for arg in typing.get_args(annotation):
        found.extend(_models_in(arg))
    return found


def _allowed_keys(model: type[BaseModel] | None, data: Any, path: KeyPath) -> list[str]:
    """The keys the model accepts at the mapping ``path`` points into (best effort)."""
    candidates = [model] if model is not None else []
    current = data
    for part in path:
        current = current[part]
        if isinstance(part, int):
            continue  # a list item: the same candidate models
        next_candidates = []
        for cls in candidates:
            field = cls.model_fields.get(part)
            if field is not None:
                next_candidates.extend(_models_in(field.annotation))
        candidates = next_candidates or candidates  # no field of that name: a key of a dict[str, Model]
    if not candidates:
        return []
    keys = set(current) if isinstance(current, dict) else set()
    best = max(candidates, key=lambda cls: len(keys & set(cls.model_fields)))
    return [field.alias or name for name, field in best.model_fields.items()]


def config_error(exc: ValidationError, path: str | Path, line_of: Callable[[KeyPath], int | None], *,
                 data: Any = None, model: type[BaseModel] | None = None) -> ConfigError:
    """Turn the first error of a pydantic ValidationError into a one-line ConfigError (exit 2):
    ``file:line: key.path: what is wrong`` with a did-you-mean for unknown keys when ``model``
    (the class validated at the top level) and ``data`` (what was validated) are given."""
    errors = exc.errors()
    # An unknown key explains a "missing" one next to it (a typo): report the unknown key first.
    first = next((e for e in errors if e.get("type") == "extra_forbidden"), errors[0])
    kind, loc = first.get("type", ""), tuple(first.get("loc", ()))
    key_path = _data_path(data, loc, final_key=True) if data is not None else tuple(loc)
    line = line_of(key_path)
    where = f"{path}:{line}" if line else str(path)
    name = key_path_str(key_path)
    hint = None
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, data, key_path[:-1]) if data is not None else []
        close = difflib.get_close_matches(str(key_path[-1]), allowed, n=1, cutoff=0.6) if key_path else []
        message = f"unknown key '{name}'"
        if close:
            hint = f"did you mean '{close[0]}'?"
        elif allowed:
            hint = f"allowed keys here: {', '.join(allowed)}"
    elif kind == "missing":
        message = f"missing required key '{name}'"
    else:
        message = f"{name}: {first.get('msg', 'invalid value').removeprefix('Value error, ')}"
        if "input" in first and not isinstance(first["input"], (dict, list)):
            message += f" (got {first['input']!r})"
    return ConfigError(f"{where}: {message}", hint=hint)


def load_validated(path: str | Path, model: type[BaseModel], *, what: str = "file"):
    """Read ``path`` and validate it as ``model``; every failure is a ConfigError naming file:line."""
    data, line_of = load_yaml(path)
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise ConfigError(f"{path}:1: a {what} must be a YAML mapping of keys, but the file is {kind}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, path, line_of, data=data, model=model) from None
