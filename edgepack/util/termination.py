"""A termination signal as an exception, remembered so that a library cannot swallow it.

Python runs a signal handler between bytecodes of whatever the main thread is doing. When that is a
``__del__`` method or a weakref callback (TensorFlow runs many during training), the exception the
handler raises is printed as "Exception ignored" and lost. So the handler also records the signal,
and edgepack checks the record at safe points: every training batch and epoch, before a bundle is
published, and when the command returns.
"""

from __future__ import annotations

import signal

NAMES = {signal.SIGTERM: "terminated", signal.SIGHUP: "hung up", signal.SIGINT: "interrupted"}
_pending: int | None = None


class Terminated(BaseException):
    """A termination signal arrived; ``exit_code`` is 128 + its number."""

    def __init__(self, signum: int):
        super().__init__(NAMES.get(signum, f"signal {signum}"))
        self.signum = signum
        self.exit_code = 128 + signum


def record(signum: int) -> Terminated:
    """Remember that ``signum`` arrived and return the exception to raise for it."""
    global _pending
    _pending = signum
    return Terminated(signum)


def pending() -> int | None:
    """The signal that arrived and has not been acted on, if any."""
    return _pending


def clear() -> None:
    """Forget a recorded signal (once the process has acted on it)."""
    global _pending
    _pending = None


def raise_if_terminated() -> None:
    """Raise Terminated again if a signal arrived but its first exception was swallowed."""
    if _pending is not None:
        raise Terminated(_pending)
