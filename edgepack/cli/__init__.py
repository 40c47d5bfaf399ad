"""The command line: ``edgepack`` (also ``python -m edgepack``)."""

from edgepack.cli.app import cli
from edgepack.cli.commands.evaluate import evaluate_command
from edgepack.cli.commands.inspect import inspect_command
from edgepack.cli.commands.quantize import convert_command, quantize_command

for _command in (inspect_command, quantize_command, convert_command, evaluate_command):
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli.main()
