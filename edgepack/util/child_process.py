"""Run a command in a child process group with a time limit; Ctrl-C and timeouts kill the whole group.

A crash in the runtime or a delegate (a signal) kills only the child, never edgepack: the caller gets
the return code and decides what it means.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass

_PR_SET_PDEATHSIG = 1


def _load_prctl():
    """libc's prctl, looked up once here: the function that runs between fork and exec then only calls C
    (no import, no lock another thread of the parent might hold at the fork)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()


def die_with_parent():
    """A ``preexec_fn`` under which the child is killed (SIGKILL) when edgepack dies, however it dies (a
    signal, ``os._exit``, SIGKILL): the kernel's parent-death signal, so no cleanup code has to run. None
    where there is no prctl (the child then outlives a killed parent, as before)."""
    if _PRCTL is None:
        return None
    parent = os.getpid()

    def arm():
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm


@dataclass
class ChildResult:
    """What a finished child left: output, exit status (``-N`` when killed by signal N)."""

    stdout: str
    stderr: str
    returncode: int
    timed_out: bool = False


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.kill()
    except ProcessLookupError:
        pass


def run_child(command: list[str], *, timeout: float, keep_stdin_open: bool = False,
              env: dict | None = None) -> ChildResult:
    """Run ``command`` in its own session (so the terminal's Ctrl-C reaches only edgepack, which then
    kills the child). ``keep_stdin_open`` gives the child a pipe that closes when edgepack stops
    (the ssh runner watches it). On KeyboardInterrupt the child's group is killed and the
    interrupt re-raised. Raises FileNotFoundError when the program does not exist."""
    process = subprocess.Popen(command, stdin=subprocess.PIPE if keep_stdin_open else subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                               env=env, preexec_fn=die_with_parent())
    try:
        if keep_stdin_open:
            # communicate() would close stdin at once; read both pipes without writing instead.
            stdout, stderr, timed_out = _communicate_keeping_stdin(process, timeout)
            return ChildResult(_text(stdout), _text(stderr), process.returncode, timed_out)
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        stdout, stderr = process.communicate()
        return ChildResult(_text(stdout), _text(stderr), process.returncode, timed_out=True)
    except BaseException:  # KeyboardInterrupt above all: no child outlives edgepack
        _kill_group(process)
        process.wait()
        raise
    finally:
        if process.stdin:
            try:
                process.stdin.close()
            except OSError:
                pass
    return ChildResult(_text(stdout), _text(stderr), process.returncode)


def _communicate_keeping_stdin(process: subprocess.Popen, timeout: float):
    import threading

    chunks = {"out": [], "err": []}

    def drain(stream, key):
        for block in iter(lambda: stream.read(65536), b""):
            chunks[key].append(block)

    threads = [threading.Thread(target=drain, args=(process.stdout, "out"), daemon=True),
               threading.Thread(target=drain, args=(process.stderr, "err"), daemon=True)]
    for thread in threads:
        thread.start()
    timed_out = False
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        process.wait()
        timed_out = True
    for thread in threads:
        thread.join(timeout=5)
    return b"".join(chunks["out"]), b"".join(chunks["err"]), timed_out


def _text(data) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data
