"""The command line: ``edgepack`` (also ``python -m edgepack``).

Every module in ``edgepack.cli.commands`` lists its Click commands in ``COMMANDS``. The group finds
them through ``edgepack.cli.index`` (the modules' source, read without importing them) and imports
a command's module only when that command is used, so ``edgepack --help`` stays fast; a new
command is one new module and touches no shared file.
"""

from edgepack.cli.app import cli


def main() -> None:
    """Console-script entry point."""
    cli.main()
