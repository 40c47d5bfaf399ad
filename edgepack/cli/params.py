"""Click options generated from a step's params model: names, types, choices, help and defaults come
from the model, so a default or a range is written once (in the step's module)."""

from __future__ import annotations

import enum
import types
import typing
from typing import Any, Literal

import click
from pydantic import BaseModel
from pydantic.fields import FieldInfo


def _unwrap_optional(annotation) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _shown_default(info: FieldInfo) -> str | None:
    default = info.get_default(call_default_factory=True)
    if default is None or default is False or default == [] or default == {}:
        return None
    if isinstance(default, enum.Enum):
        return str(default.value)
    if isinstance(default, list):
        return ", ".join(str(getattr(item, "value", item)) for item in default)
    return f"{default:g}" if isinstance(default, float) else str(default)


def _click_type(annotation):
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return click.Choice([member.value for member in annotation])
    if typing.get_origin(annotation) is Literal:
        return click.Choice([str(arg) for arg in typing.get_args(annotation)])
    if annotation in (int, float, str):
        return annotation
    raise TypeError(f"no command-line type for {annotation!r}")


def _pairs(value_type):
    def parse(ctx, param, values):
        pairs = {}
        for item in values:
            key, sep, value = item.partition("=")
            try:
                pairs[key] = value_type(value) if sep and key else None
            except ValueError:
                pairs[key] = None
            if pairs[key] is None:
                raise click.BadParameter(f"{item!r} is not NAME=VALUE with a {value_type.__name__} value")
        return pairs or None

    return parse


def option_for(name: str, info: FieldInfo):
    """The click option for one params field (``--name-with-dashes``; the value lands in ``name``)."""
    annotation, optional = _unwrap_optional(info.annotation)
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    flag = extra.get("flag") or f"--{name.replace('_', '-')}"
    help_text = info.description or ""
    shown = _shown_default(info)
    if typing.get_origin(annotation) is dict:
        return click.option(flag, name, multiple=True, metavar=extra.get("metavar") or "NAME=VALUE",
                            callback=_pairs(typing.get_args(annotation)[1]), help=help_text + " (repeatable)")
    if typing.get_origin(annotation) is list:
        return click.option(flag, name, type=_click_type(typing.get_args(annotation)[0]), multiple=True,
                            metavar=extra.get("metavar"), help=help_text + (f"  [default: {shown}]" if shown else ""))
    if annotation is bool:
        if info.default is False and not optional:
            return click.option(flag, name, is_flag=True, default=None, help=help_text)
        return click.option(f"{flag}/--no-{flag[2:]}", name, default=None,
                            help=help_text + (f"  [default: {shown}]" if shown else ""))
    return click.option(flag, name, type=_click_type(annotation), default=None, metavar=extra.get("metavar"),
                        help=help_text + (f"  [default: {shown}]" if shown else ""))


def params_options(params_cls: type[BaseModel], *, exclude: tuple[str, ...] = ()):
    """Decorate a command with one option per field of ``params_cls`` (fields in ``exclude`` left out).

    Options not given arrive as None, so the params model's own defaults apply.
    """

    def decorate(func):
        for name, info in reversed(list(params_cls.model_fields.items())):
            if name not in exclude:
                func = option_for(name, info)(func)
        return func

    return decorate


def given(values: dict) -> dict:
    """The options the user gave (None, or no value of a repeatable option, means "not given": the
    model's default applies)."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in values.items()
            if value is not None and value != ()}


def flag_names(message: str, params_cls: type[BaseModel]) -> str:
    """``message`` (written with recipe key names) with each key followed by a value written as its
    option, e.g. "io int8 needs mode int8" -> "--io int8 needs --mode int8"."""
    import re

    for name, info in params_cls.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        flag = extra.get("flag") or f"--{name.replace('_', '-')}"
        message = re.sub(rf"(?<![\w.\-]){re.escape(name)}(?=( [\w(.-]|$|[,;:)]))", flag, message)
    return message
