"""The Click group, and the one place that turns exceptions into exit codes and one-line messages."""

from __future__ import annotations

import errno
import os
import sys
import traceback

import click

from edgepack import __version__
from edgepack.cli.signals import (Terminated, ignore_further_signals, remove_run_folder, run_temporary_folder,
                                  termination_handled)
from edgepack.errors import EXIT_INTERRUPTED, EdgepackError
from edgepack.util import quiet, termination
from edgepack.util.extras import missing_extra

DEBUG_HINT = "run again with --debug for the traceback"
# Errors that mean "this output cannot be written here", wherever they are raised (a work folder too).
OUTPUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}
EXIT_OUTPUT = 8


def _fail(message: str, code: int) -> None:
    click.echo(f"edgepack: error: {message}", err=True)
    sys.exit(code)


class EdgepackGroup(click.Group):
    """A Click group whose ``main`` maps every failure to the contract's exit codes, and whose
    commands load on first use (``edgepack.cli.index`` says which module holds each)."""

    def list_commands(self, ctx) -> list[str]:
        from edgepack.cli.index import command_index

        return sorted(set(command_index()) | set(self.commands))

    def get_command(self, ctx, name: str):
        if name not in self.commands:
            from edgepack.cli.index import command_index

            entry = command_index().get(name)
            if entry is None:
                return None
            import importlib

            for command in getattr(importlib.import_module(entry.module), "COMMANDS", []):
                self.add_command(command)
        return self.commands.get(name)

    def format_commands(self, ctx, formatter) -> None:
        """The command list of ``--help``, from the index (no command module is imported)."""
        from edgepack.cli.index import command_index

        limit = formatter.width - 6 - max((len(name) for name in command_index()), default=0)
        rows = [(entry.name, click.utils.make_default_short_help(entry.short_help, limit))
                for entry in command_index().values()]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def command_named(self, args) -> str | None:
        """The command as typed (the first word that names one), for messages raised outside Click."""
        words = sys.argv[1:] if args is None else [str(a) for a in args]
        return next((word for word in words if word in self.list_commands(None)), None)

    def all_commands(self, ctx=None) -> dict:
        """Every command, loaded (for tests and documentation that walk them all)."""
        return {name: self.get_command(ctx, name) for name in self.list_commands(ctx)}

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        debug = "--debug" in (sys.argv[1:] if args is None else list(args))
        quiet.DEBUG = debug
        with run_temporary_folder() as run_tmp, termination_handled():
            try:
                result = super().main(args=args, prog_name=prog_name or "edgepack", complete_var=complete_var,
                                      standalone_mode=False, **extra)
                termination.raise_if_terminated()  # a signal whose exception a library swallowed
            except click.exceptions.Exit as exc:
                sys.exit(exc.exit_code)
            except Terminated as exc:
                _leave(str(exc), exc.exit_code, debug=debug, in_process=args is not None, run_tmp=run_tmp)
            except (click.exceptions.Abort, KeyboardInterrupt):
                ignore_further_signals()  # a second signal must not cut the clean-up short
                _leave("interrupted", EXIT_INTERRUPTED, debug=debug, in_process=args is not None, run_tmp=run_tmp)
            except click.ClickException as exc:
                where = f" (see '{exc.ctx.command_path} --help')" if getattr(exc, "ctx", None) else ""
                _fail(" ".join(exc.format_message().split()) + where, exc.exit_code)
            except EdgepackError as exc:
                _leave_if_signalled(debug=debug, in_process=args is not None, run_tmp=run_tmp)
                if debug:
                    traceback.print_exc()
                _fail(exc.one_line(), exc.exit_code)
            except OSError as exc:
                _leave_if_signalled(debug=debug, in_process=args is not None, run_tmp=run_tmp)
                if debug:
                    traceback.print_exc()
                if exc.errno not in OUTPUT_ERRNOS:
                    _fail(f"internal error: {type(exc).__name__}: {exc}; {DEBUG_HINT}", 1)
                _fail(f"cannot write {exc.filename or 'a file'}: {exc.strerror}; free some space or choose another "
                      f"output with -o", EXIT_OUTPUT)
            except Exception as exc:  # a bug: say so, briefly
                _leave_if_signalled(debug=debug, in_process=args is not None, run_tmp=run_tmp)
                if debug:
                    traceback.print_exc()
                if (missing := missing_extra(exc, self.command_named(args))) is not None:
                    _fail(missing.one_line(), missing.exit_code)
                _fail(f"internal error: {type(exc).__name__}: {exc}; {DEBUG_HINT}", 1)
        sys.exit(result if isinstance(result, int) else 0)


def _leave_if_signalled(*, debug: bool, in_process: bool, run_tmp: str) -> None:
    """Leave as the termination signal says when one arrived and a library turned its exception into
    another error (Keras wraps what a layer call raises): the signal, not the error it caused, is the
    outcome (exit 128 + N)."""
    signum = termination.pending()
    if signum is not None:
        stopped = Terminated(signum)
        _leave(str(stopped), stopped.exit_code, debug=debug, in_process=in_process, run_tmp=run_tmp)


def _leave(message: str, code: int, *, debug: bool, in_process: bool, run_tmp: str) -> None:
    """Leave after Ctrl-C or a termination signal; the finally blocks have cleaned up by now."""
    if debug:
        traceback.print_exc()
    if in_process:  # called from Python (tests, scripts): a normal SystemExit
        _fail(message, code)
    # The real process: leave with os._exit, because CPython kills itself with SIGINT at exit
    # (status -2, not 130) when the interrupt passed through code run by PyRun_String, as
    # TensorFlow's start-up code is. os._exit skips the with-blocks, so the run's folder goes first.
    click.echo(f"edgepack: error: {message}", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    remove_run_folder(run_tmp)
    os._exit(code)


@click.group(name="edgepack", cls=EdgepackGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks and TensorFlow's own log.")
@click.option("--devices-dir", multiple=True, metavar="DIR",
              help="Look for device profiles by name here first (repeatable; then $EDGEPACK_DEVICES, ./devices, "
                   "edgepack's own).")
@click.option("--recipes-dir", multiple=True, metavar="DIR",
              help="Look for recipes by name here first (repeatable; then $EDGEPACK_RECIPES, ./recipes, "
                   "edgepack's own).")
@click.version_option(__version__, prog_name="edgepack")
def cli(debug: bool, devices_dir: tuple[str, ...], recipes_dir: tuple[str, ...]) -> None:
    """Package Keras models for edge devices: compress, convert, evaluate, profile."""
    from edgepack import resources

    quiet.DEBUG = debug
    resources.set_search_dirs("devices", list(devices_dir))
    resources.set_search_dirs("recipes", list(recipes_dir))
