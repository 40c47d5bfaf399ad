"""The command line: ``edgepack`` (also ``python -m edgepack``).

Every module in ``edgepack.cli.commands`` lists its Click commands in ``COMMANDS``; they are added
here, so a new command is one new module and touches no shared file.
"""

import importlib
import pkgutil

from edgepack.cli import commands as _commands
from edgepack.cli.app import cli

for _info in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda m: m.name):
    for _command in getattr(importlib.import_module(f"{_commands.__name__}.{_info.name}"), "COMMANDS", []):
        cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli.main()
