"""The exceptions edgepack raises, each carrying its exit code from the contract.

Library code raises these; one place (``edgepack.cli.app``) turns them into a one-line message
on stderr and the exit code. A message says what was wrong, where, and what to do.
"""

from __future__ import annotations


class EdgepackError(Exception):
    """Base class. ``exit_code`` 1 means an internal error (a bug)."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The message and the hint joined into the single line shown to the user."""
        text = self.message if not self.hint else f"{self.message}; {self.hint}"
        return " ".join(text.split())

    def __str__(self) -> str:
        return self.one_line()


class ConfigError(EdgepackError):
    """Usage or configuration error: bad flag, recipe or device file invalid."""

    exit_code = 2


class DataError(EdgepackError):
    """Bad data: unreadable, wrong shape or dtype, pickled arrays, empty."""

    exit_code = 3


class ModelError(EdgepackError):
    """Model rejected: unreadable, corrupt, unsafe, unsupported op."""

    exit_code = 4


class RuntimeUnavailable(EdgepackError):
    """Runtime or delegate unavailable, crashed or timed out."""

    exit_code = 5


class RemoteError(EdgepackError):
    """Remote device failure: SSH unreachable, auth, missing runtime on the device."""

    exit_code = 6


class GateFailed(EdgepackError):
    """A quality gate failed (accuracy drop, latency, size)."""

    exit_code = 7


class OutputError(EdgepackError):
    """Output could not be written."""

    exit_code = 8


EXIT_INTERRUPTED = 130


def validation_problem(exc) -> tuple[str, str]:
    """The first problem of a pydantic ``ValidationError``: its key path (``a.b.0``; "" at the top) and its
    message without pydantic's ``Value error, `` prefix, for a one-line error."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "__root__")
    return where, first.get("msg", str(exc)).removeprefix("Value error, ")
