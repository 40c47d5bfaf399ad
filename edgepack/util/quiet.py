"""Keep libraries' own chatter (C++ logs, Keras prints) off the user's terminal unless --debug."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Iterator

DEBUG = False  # set by the CLI's --debug


@contextlib.contextmanager
def captured_native_output() -> Iterator[list[str]]:
    """Send what C++ and Python print to fds 1 and 2 into a buffer (kept out of --json stdout).

    Yields a list that holds the captured text once the block ends. With --debug nothing is
    captured, so the user sees everything TensorFlow says.
    """
    captured: list[str] = []
    if DEBUG:
        yield captured
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = []
    with tempfile.TemporaryFile(mode="w+b") as sink:
        try:
            for fd in (1, 2):
                saved.append((fd, os.dup(fd)))
                os.dup2(sink.fileno(), fd)
            with contextlib.redirect_stdout(_NullWriter()):
                yield captured
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            captured.append(sink.read().decode("utf-8", "replace"))


class _NullWriter:
    """A stdout stand-in that drops what Python code prints (e.g. Keras's 'Saved artifact at')."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
