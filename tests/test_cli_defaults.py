"""Every command-line default, choice list and shown default agrees with the params model that owns it.

Options generated from a params model (``cli/params.py``) agree by construction; the hand-written
ones (model, data and output paths aside) must leave their default to the model (None) or repeat it
exactly, and a ``[default: X]`` in their help must show the model's default.
"""

from __future__ import annotations

import enum
import re
import typing

import click
import pytest

from edgepack.cli import cli
from edgepack.cli.params import _shown_default, _unwrap_optional


def models() -> dict[str, list[type]]:
    """The model(s) each command builds its configuration from."""
    from edgepack.evaluation.evaluate import EvaluateConfig
    from edgepack.latency.config import LatencyConfig
    from edgepack.recipes.execute import RunOptions
    from edgepack.steps.cluster import ClusterConfig
    from edgepack.steps.prune import PruneConfig
    from edgepack.steps.qat import QatConfig
    from edgepack.steps.quantize import QuantizeConfig
    from edgepack.steps.sensitivity import SensitivityConfig
    from edgepack.tuning.study import TuneOptions

    return {"evaluate": [EvaluateConfig], "profile": [LatencyConfig], "run": [RunOptions], "cluster": [ClusterConfig],
            "prune": [PruneConfig], "qat": [QatConfig], "quantize": [QuantizeConfig],
            "sensitivity": [SensitivityConfig], "tune": [TuneOptions]}


def allowed(annotation) -> set[str] | None:
    """The values a field accepts, as strings, when it is an enum or a Literal (None otherwise)."""
    annotation, _ = _unwrap_optional(annotation)
    if typing.get_origin(annotation) is list:
        annotation = typing.get_args(annotation)[0]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {str(member.value) for member in annotation}
    if typing.get_origin(annotation) is typing.Literal:
        return {str(arg) for arg in typing.get_args(annotation)}
    return None


def checked_options():
    for name, classes in models().items():
        command = cli.get_command(None, name)
        for param in command.params:
            if not isinstance(param, click.Option):
                continue
            field = next((cls.model_fields[param.name] for cls in classes if param.name in cls.model_fields), None)
            if field is not None:
                yield pytest.param(param, field, id=f"{name} {param.opts[0]}")


@pytest.mark.parametrize("option, field", list(checked_options()))
def test_option_agrees_with_its_field(option, field):
    default = field.get_default(call_default_factory=True)
    plain = default.value if isinstance(default, enum.Enum) else default
    unset = option.default is None or type(option.default).__name__ == "Sentinel"  # click 8.2: UNSET
    assert unset or option.default in (False, (), plain), f"hand-written default {option.default!r} vs {plain!r}"
    shown = re.search(r"\[default: ([^\]]+)\]", option.help or "")
    if shown:
        assert shown.group(1) == _shown_default(field), (shown.group(1), _shown_default(field))
    values = allowed(field.annotation)
    if isinstance(option.type, click.Choice) and values is not None:
        assert set(option.type.choices) == values


def test_every_step_command_is_checked():
    """Each command with a params model has options checked here (a new command must be added above)."""
    checked = {param.values[0].name for param in checked_options()}
    assert len(checked) > 60
    assert set(models()) <= set(cli.list_commands(None))
