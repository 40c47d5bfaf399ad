"""The HTML report, opened in a real headless Chromium: it renders, the plots and figures are there."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from edgepack.report.render import write_reports

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def sample_result(passed: bool = True) -> dict:
    samples = [1.0 + 0.01 * (i % 17) for i in range(60)]
    return {
        "name": "demo", "recipe": "recipes/demo.yaml", "device": "host-cpu", "bundle": "dist/demo", "passed": passed,
        "summary": "3 gate(s), 0 failed", "metric": "accuracy", "reference": 0.9711, "final": 0.9667, "drop": 0.44,
        "drop_unit": "percentage points", "size_bytes": 24_000, "gzip_size_bytes": 9_000,
        "stages": [{"name": "float (Keras)", "size_bytes": 500_000, "gzip_size_bytes": 460_000, "metric": 0.9711, "seconds": 0},
                   {"name": "prune 0.75", "size_bytes": 500_000, "gzip_size_bytes": 150_000, "metric": 0.9689, "seconds": 4},
                   {"name": "int8 .tflite", "size_bytes": 24_000, "gzip_size_bytes": 9_000, "metric": 0.9667, "seconds": 3}],
        "gates": [{"gate": "max_accuracy_drop", "threshold": 1.0, "value": 0.44, "unit": "percentage points",
                   "passed": True, "note": None},
                  {"gate": "max_latency_ms", "threshold": 20, "value": 1.08, "unit": "ms p50", "passed": passed,
                   "note": None}],
        "latency": {"estimated": False, "estimate_source": None,
                    "runtime": {"name": "ai-edge-litert", "version": "2.3.0"},
                    "latency_ms": {"count": 60, "mean": 1.08, "std": 0.05, "min": 1.0, "p50": 1.08, "p90": 1.14,
                                   "p99": 1.16, "max": 1.16, "samples_ms": samples}},
        "tflite": {}, "provenance": {"edgepack": "0.1.0", "created": "2026-11-22T14:00:00+00:00"},
    }


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by scripts/test-deps.sh (make test)")
def test_report_renders_in_chromium_with_plots_and_key_figures(tmp_path):
    write_reports(tmp_path, sample_result())
    url = (tmp_path / "report.html").as_uri()
    profile = tmp_path / "chrome-profile"
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert dom.count('class="plot"') == 3
    for plot in ('id="latency"', 'id="size"', 'id="metric"'):
        assert plot in dom
    assert "0.440 percentage points" in dom and "1.080 ms p50" in dom and "ai-edge-litert 2.3.0" in dom
    assert 'id="verdict"' in dom and "PASS" in dom
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}",
                    "--window-size=1000,1600", url], capture_output=True, timeout=120, check=True)
    from PIL import Image

    with Image.open(shot) as image:
        colors = image.convert("RGB").getcolors(maxcolors=1 << 20)
    bar_pixels = sum(count for count, rgb in colors if rgb in {(59, 125, 216), (216, 129, 59), (46, 155, 95)})
    assert bar_pixels > 2000, "the bars of the plots were not drawn"


def test_markdown_report_has_gates_and_stages(tmp_path):
    write_reports(tmp_path, sample_result(passed=False))
    text = (tmp_path / "report.md").read_text()
    assert "| max_latency_ms | 20 ms p50 | 1.080 | FAIL |" in text
    assert "| prune 0.75 |" in text


def test_a_negative_drop_is_called_an_improvement(tmp_path):
    result = sample_result()
    result["drop"], result["final"] = -0.889, 0.98
    write_reports(tmp_path, result)
    assert "-0.889 percentage points (the .tflite scores better)" in (tmp_path / "report.md").read_text()
