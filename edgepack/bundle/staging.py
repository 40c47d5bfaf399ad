"""Build a bundle in a staging folder beside its target, then swap it into place.

A failure or Ctrl-C removes the staging folder and never touches the previous bundle. A bundle
whose gates failed goes to ``<target>.failed`` — next to, not over, the previous good one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from edgepack.errors import OutputError
from edgepack.util.termination import raise_if_terminated


def check_bundle_target(target: Path) -> None:
    """Fail (exit 8) before any heavy work when the bundle cannot be written at ``target``."""
    if target.exists() and not target.is_dir():
        raise OutputError(f"output {target} exists and is not a folder", hint="choose another output with -o")
    existing = target.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write the bundle {target}: {existing} is not a writable folder",
                          hint="choose another output folder with -o")


def lock_path(target: Path) -> Path:
    """The lock file of the bundle ``target``: ``.<name>.lock`` beside it, there only while a run holds it."""
    return target.with_name(f".{target.name}.lock")


def _acquire(path: Path, target: Path) -> int:
    while True:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputError(f"another edgepack run is writing the bundle {target} (lock {path.name})",
                              hint="wait for it to finish, or choose another output with -o") from None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # the holder removed the file as we opened it: take the new one


@contextlib.contextmanager
def bundle_lock(target: Path) -> Iterator[Path]:
    """Hold the bundle's lock (exit 8 at once if another run holds it); the lock file goes on release.
    A killed holder's lock is released by the kernel, so a stale file never blocks the next run."""
    path = lock_path(target)
    fd = _acquire(path, target)
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)


@contextlib.contextmanager
def staging_folder(target: Path) -> Iterator[Path]:
    """A fresh folder beside ``target``, under the bundle's lock; removed on the way out unless it
    was moved into place."""
    check_bundle_target(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write the bundle {target}: {exc.strerror}",
                          hint="choose another output folder with -o") from exc
    with bundle_lock(target):
        try:
            stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
        except OSError as exc:
            raise OutputError(f"cannot write the bundle {target}: {exc.strerror}",
                              hint="choose another output folder with -o") from exc
        try:
            yield stage
        finally:
            shutil.rmtree(stage, ignore_errors=True)


def publish(stage: Path, target: Path) -> Path:
    """Move ``stage`` to ``target``, replacing a previous bundle only after the new one is in place."""
    raise_if_terminated()  # never publish a run that was told to stop
    os.chmod(stage, 0o755)
    old = None
    try:
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.previous-", dir=target.parent))
            os.replace(target, old / "bundle")
        os.replace(stage, target)
    except OSError as exc:
        if old is not None and not target.exists():
            os.replace(old / "bundle", target)
        raise OutputError(f"cannot move the bundle into {target}: {exc.strerror}") from exc
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return target


def failed_bundle_path(target: Path) -> Path:
    """Where a bundle whose gates failed is kept: beside the good one."""
    return target.with_name(target.name + ".failed")
