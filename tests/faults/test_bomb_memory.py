"""Peak memory of a fresh process refusing each bomb, measured from the child's own RSS (< 200 MB)."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
PEAK_RSS_LIMIT_MB = 200
CHILD = """
import json, resource, sys
kind, path = sys.argv[1], sys.argv[2]
outcome = "ok"
try:
    if kind == "yaml":
        from edgepack.util.yamlfile import load_yaml
        load_yaml(path)
    else:
        from edgepack.loading.data import DataSpec, load_data
        load_data(DataSpec(source=path))
except Exception as exc:
    outcome = type(exc).__name__
print(json.dumps({"outcome": outcome, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def laughs(path: Path) -> Path:
    lines = ['a0: &a0 "lol"'] + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    path.write_text("\n".join(lines) + "\n")
    return path


def npz_bomb(path: Path, megabytes: int = 256) -> Path:
    """An .npz whose x.npy member is a bzip2 stream of ``megabytes`` MiB of zeros (a few KB on disk)."""
    header = np.lib.format.header_data_from_array_1_0(np.zeros(megabytes << 17))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_BZIP2) as archive:
        with archive.open("x.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, header)
            chunk = bytes(1 << 20)
            for _ in range(megabytes):
                member.write(chunk)
        archive.writestr("y.npy", b"")
    return path


@pytest.mark.parametrize("kind, build, error", [("yaml", laughs, "ConfigError"), ("npz", npz_bomb, "DataError")])
def test_a_bomb_is_refused_in_a_fresh_process_with_little_memory(tmp_path, kind, build, error):
    path = build(tmp_path / f"bomb.{kind}")
    assert path.stat().st_size < 1_000_000
    done = subprocess.run([sys.executable, "-c", CHILD, kind, str(path)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["outcome"] == error, done.stderr
    assert result["peak_mb"] < PEAK_RSS_LIMIT_MB, result
