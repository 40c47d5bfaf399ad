"""SIGTERM and SIGHUP handled like Ctrl-C, and one temporary folder per run that is always removed.

CI runners, docker and systemd stop a job with SIGTERM. edgepack turns it (and SIGHUP) into an
exception that unwinds like KeyboardInterrupt: every ``finally`` and context manager runs (children
killed, staging and work folders removed), then the process leaves with 128 + the signal number
(143 for SIGTERM). Once the first signal arrives, further SIGINT/SIGTERM/SIGHUP are ignored so the
clean-up is not cut short. The signal is also recorded (``edgepack.util.termination``) in case a
library swallows the exception.

Libraries write temporary files of their own (TensorFlow's autograph, the converter). During a run
``TMPDIR`` and ``tempfile.tempdir`` point into a folder edgepack owns, which is removed on the way
out, whatever the exit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from typing import Iterator

from edgepack.util import termination
from edgepack.util.termination import Terminated

HANDLED = (signal.SIGTERM, signal.SIGHUP)
__all__ = ["Terminated", "termination_handled", "run_temporary_folder", "remove_run_folder",
           "ignore_further_signals"]


def ignore_further_signals() -> None:
    """From now on, SIGINT, SIGTERM and SIGHUP do not interrupt the clean-up."""
    for signum in (signal.SIGINT, *HANDLED):
        signal.signal(signum, signal.SIG_IGN)


def _raise(signum, frame) -> None:
    ignore_further_signals()
    raise termination.record(signum)


def _interrupt(signum, frame) -> None:
    termination.record(signum)  # a library that swallows the KeyboardInterrupt cannot hide the Ctrl-C
    raise KeyboardInterrupt


@contextlib.contextmanager
def termination_handled() -> Iterator[None]:
    """SIGTERM/SIGHUP raise Terminated inside the block, SIGINT KeyboardInterrupt, each recorded (main
    thread only); handlers restored after."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, *HANDLED)}
    for signum in HANDLED:
        signal.signal(signum, _raise)
    if previous[signal.SIGINT] is signal.default_int_handler:
        signal.signal(signal.SIGINT, _interrupt)
    termination.clear()
    try:
        yield
    finally:
        termination.clear()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def run_temporary_folder() -> Iterator[str]:
    """A folder for every temporary file of this run (edgepack's and the libraries'), removed after."""
    folder = tempfile.mkdtemp(prefix="edgepack-run-")
    saved_env, saved_tempdir = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"], tempfile.tempdir = folder, folder
    try:
        yield folder
    finally:
        remove_run_folder(folder, saved_env, saved_tempdir)


def remove_run_folder(folder: str, saved_env: str | None = None, saved_tempdir: str | None = None) -> None:
    """Put TMPDIR back and delete ``folder`` (also called just before os._exit)."""
    if saved_env is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = saved_env
    tempfile.tempdir = saved_tempdir
    shutil.rmtree(folder, ignore_errors=True)
