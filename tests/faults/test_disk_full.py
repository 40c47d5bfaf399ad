"""A full disk while writing: exit 8 naming the path, the previous output untouched, nothing left.

The disk is a real 1 MiB tmpfs (needs root to mount; skipped with the reason otherwise), filled up
to a few KB before the run.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import assert_one_line_error

RECIPE = """\
name: q
device: host-cpu
model: {model}
data: {{val: {val}}}
steps:
  - quantize: {{mode: float32}}
  - profile: {{where: estimate}}
output: {output}
"""


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path, leave: int) -> None:
    """Write a filler file so that about ``leave`` bytes stay free."""
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    (folder / "filler").write_bytes(b"\0" * max(0, free - leave))


def tree(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_full_disk_while_writing_the_bundle_is_exit_8_and_keeps_the_previous_bundle(run, digits, small_disk,
                                                                                       tmp_path):
    previous = small_disk / "dist" / "q"
    previous.mkdir(parents=True)
    (previous / "model.tflite").write_bytes(b"the previous, good model")
    (previous / "SHA256SUMS").write_text("kept\n")
    before = tree(previous)
    fill(small_disk, leave=40_000)
    recipe = tmp_path / "q.yaml"
    recipe.write_text(RECIPE.format(model=digits["model"], val=digits["val"], output=previous))
    result = run("run", recipe)
    assert_one_line_error(result, 8, "cannot write the bundle", str(previous), "No space left", progress=True)
    assert tree(previous) == before
    assert sorted(p.name for p in (small_disk / "dist").iterdir()) == ["q"], "no staging folder left"


def test_a_full_disk_under_quantize_o_is_exit_8_and_leaves_no_partial_file(run, digits, small_disk):
    fill(small_disk, leave=20_000)
    out = small_disk / "model.tflite"
    assert_one_line_error(run("quantize", digits["model"], "-o", out), 8, "cannot write", str(out))
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]


def test_a_second_run_to_a_bundle_being_written_is_exit_8_at_once(run, digits, tmp_path):
    import time

    from edgepack.bundle.staging import bundle_lock

    target = tmp_path / "dist" / "q"
    target.parent.mkdir()
    recipe = tmp_path / "q.yaml"
    recipe.write_text(RECIPE.format(model=digits["model"], val=digits["val"], output=target))
    with bundle_lock(target):
        started = time.perf_counter()
        assert_one_line_error(run("run", recipe), 8, "another edgepack run is writing the bundle", progress=True)
        assert time.perf_counter() - started < 30
    assert run("run", recipe).exit_code == 0, "the lock is free again"
    assert run("verify", target).exit_code == 0
    assert sorted(p.name for p in target.parent.iterdir()) == ["q"], "no lock file or staging folder left"
