"""A SavedModel folder whose saved_model.pb is damaged is exit 4 with one line (never exit 1)."""

from __future__ import annotations

import os

import pytest

from conftest import assert_one_line_error


@pytest.mark.parametrize("content", [b"", os.urandom(3000), b"\x0a\xff\xff\xff\xff\x0f" + b"x" * 64],
                         ids=["empty", "random", "lying-length"])
def test_a_damaged_saved_model_is_exit_4(run, tmp_path, content):
    folder = tmp_path / "saved"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(content)
    assert_one_line_error(run("inspect", folder, "--trust-model"), 4, str(folder))
    assert_one_line_error(run("quantize", folder, "-o", tmp_path / "x.tflite", "--trust-model"), 4, str(folder))
