"""Options shared by several commands, and the config-building helper."""

from __future__ import annotations

import click
from pydantic import ValidationError

from edgepack.cli.params import flag_names
from edgepack.errors import ConfigError, validation_problem
from edgepack.loading.spec import DataSpec


def json_option(func):
    """``--json``: print one JSON document on stdout and nothing else."""
    return click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON document.")(func)


def trust_model_option(func):
    return click.option("--trust-model", is_flag=True,
                        help="Load models with Python code (Lambda layers) or SavedModels. Only for models you trust.")(func)


def data_key_options(func):
    """``--x-key``, ``--y-key`` and ``--trust-code``, which shape how DATA is read."""
    func = click.option("--trust-code", is_flag=True,
                        help="Allow DATA of the form package.module:function (imports and runs that code).")(func)
    func = click.option("--y-key", default="y", show_default=True, help="Name of the target array in an .npz.")(func)
    func = click.option("--x-key", default="x", show_default=True, help="Name of the input array in an .npz.")(func)
    return func


def preprocess_option(func):
    """``--preprocess``: what is done to input values as they are read (edgepack.loading.preprocess)."""
    return click.option("--preprocess", metavar="SPEC",
                        help="Preprocess inputs as read (image pixels are 0-255 RGB): a keras.applications family "
                             "(mobilenet_v2, efficientnet, resnet50, ...) or 'scale=1/255 mean=R,G,B std=R,G,B'.")(func)


def data_spec(source: str | None, x_key: str, y_key: str, trust_code: bool,
              preprocess: str | None = None) -> DataSpec | None:
    if source is None:
        return None
    from edgepack.loading.preprocess import parse_preprocess

    return DataSpec(source=source, x_key=x_key, y_key=y_key, trust_code=trust_code,
                    preprocess=parse_preprocess(preprocess))


def build_config(model_cls, **values):
    """Build a pydantic config, turning validation errors into one-line ConfigErrors (exit 2)."""
    try:
        return model_cls(**values)
    except ValidationError as exc:
        where, message = validation_problem(exc)
        message = flag_names(message, model_cls)
        option = f"--{where.replace('_', '-')}: " if where else ""
        raise ConfigError(f"{option}{message}") from None
