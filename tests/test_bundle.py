"""Bundles: checksums that ``sha256sum -c`` accepts, ``verify``, and swaps that never lose the old one."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from conftest import assert_one_line_error
from edgepack.bundle.checksums import verify_bundle, write_sha256sums
from edgepack.bundle.staging import failed_bundle_path, publish, staging_folder
from edgepack.errors import OutputError


def _fill(folder, model=b"model bytes"):
    from edgepack.util.files import sha256_file

    (folder / "model.tflite").write_bytes(model)
    (folder / "manifest.json").write_text(json.dumps({"name": "b", "model": {"sha256": sha256_file(folder / "model.tflite")}}))
    (folder / "report.md").write_text("# report\n")
    write_sha256sums(folder)


def test_sha256sums_pass_coreutils_check(tmp_path):
    _fill(tmp_path)
    if shutil.which("sha256sum"):
        subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=tmp_path, check=True)
    assert verify_bundle(tmp_path).ok


@pytest.mark.parametrize("damage, problem", [
    (lambda f: (f / "report.md").write_text("changed"), "report.md does not match"),
    (lambda f: (f / "report.md").unlink(), "report.md is listed but missing"),
    (lambda f: (f / "extra.txt").write_text("x"), "extra.txt is not listed"),
])
def test_verify_finds_damage_and_exits_4(run, tmp_path, damage, problem):
    _fill(tmp_path)
    damage(tmp_path)
    assert_one_line_error(run("verify", tmp_path), 4, problem)


def test_verify_json_of_a_good_bundle(run, tmp_path):
    _fill(tmp_path)
    result = run("verify", tmp_path, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["ok"] is True


def test_verify_of_a_missing_bundle_is_exit_4(run, tmp_path):
    assert_one_line_error(run("verify", tmp_path / "none"), 4, "bundle not found")


def test_publish_replaces_the_old_bundle_only_once_the_new_one_is_complete(tmp_path):
    target = tmp_path / "dist" / "b"
    with staging_folder(target) as stage:
        _fill(stage, b"first")
        publish(stage, target)
    with staging_folder(target) as stage:
        _fill(stage, b"second")
        publish(stage, target)
    assert (target / "model.tflite").read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["b"]


def test_a_failure_while_staging_leaves_the_previous_bundle_and_no_temporary_folder(tmp_path):
    target = tmp_path / "b"
    with staging_folder(target) as stage:
        _fill(stage, b"good")
        publish(stage, target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    with pytest.raises(KeyboardInterrupt):
        with staging_folder(target) as stage:
            _fill(stage, b"half")
            raise KeyboardInterrupt
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_failed_bundles_go_beside_the_good_one(tmp_path):
    assert failed_bundle_path(tmp_path / "b") == tmp_path / "b.failed"


def test_an_unwritable_target_is_refused_before_work(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError):
        with staging_folder(tmp_path / "file" / "b"):
            pass
