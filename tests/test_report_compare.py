"""``edgepack report BUNDLE...``: several bundles compared on one page, as JSON and as Markdown.

The bundles here are fake: folders holding only a report.json made from ``sample_result`` variants,
which is all the command reads. The end-to-end check (``edgepack run`` on two device recipes, then
``edgepack report dist/*``) is to be added with real bundles by whoever may run TensorFlow here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import assert_one_line_error
from test_report_html import CHROMIUM, FLAGS, Dom, latency_result, latency_stats, sample_result

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by scripts/test-deps.sh")


def _bundle(folder, result: dict):
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps(result))
    return folder


@pytest.fixture
def bundles(tmp_path) -> list:
    """Three bundles: a host CPU one that passes, a Raspberry Pi one that fails its latency gate, and an
    Edge TPU one whose latency is an estimate."""
    rng = np.random.default_rng(3)
    host = sample_result()
    host.update(name="digits-host", device="host-cpu")
    pi = sample_result(passed=False)
    pi.update(name="digits-pi4", device="raspberry-pi-4", gzip_size_bytes=7_000, final=0.9611, drop=1.0)
    pi["latency"]["latency_ms"] = latency_stats([float(v) for v in rng.normal(24.0, 1.5, 120)])
    pi["gates"][1].update(value=pi["latency"]["latency_ms"]["p50"], passed=False)
    coral = sample_result()
    coral.update(name="digits-coral", device="coral-usb", gzip_size_bytes=12_000)
    coral["latency"] = latency_result({"count": 0, "p50": 0.4, "p90": 0.4, "p99": 0.4, "min": 0.4, "max": 0.4},
                                      estimated=True, source="device profile")
    coral["latency"]["runtime"] = {"name": "tflite-runtime"}
    dist = tmp_path / "dist"
    return [_bundle(dist / r["name"], r) for r in (host, pi, coral)]


def test_report_help_names_its_arguments_and_options(run):
    result = run("report", "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split()).replace("- ", "-")  # Click wraps report-compare.html at its hyphen
    for word in ("BUNDLE...", "-o, --output PAGE.html", "--json", "--markdown", "report-compare.html"):
        assert word in text


@needs_chromium
def test_comparison_page_lists_every_bundle_given_with_charts_side_by_side(run, bundles, tmp_path):
    page = tmp_path / "out" / "compare.html"
    result = run("report", *bundles, "-o", page)
    assert result.exit_code == 0, result.stderr
    assert str(page) in result.stdout
    html = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'chrome-profile'}", "--dump-dom",
                           page.as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout
    dom = Dom(html)
    given = [str(b) for b in bundles]
    assert [r.attrs["data-bundle"] for r in dom.find("tr") if "data-bundle" in r.attrs] == given
    sections = [s.attrs["data-bundle"] for s in dom.find("section")]
    assert sections == given + given, "one latency and one size chart per bundle"
    latency = [dom.one("svg", id=f"latency-{i}") for i in (0, 1)]
    assert latency[0].attrs["data-domain"] == latency[1].attrs["data-domain"], "small multiples share one axis"
    assert "estimate, not a measurement" in dom.one("p", id="latency-2-none").text
    assert len(dom.find("svg", id="size-by-bundle")) == 1 and all(dom.find("svg", id=f"size-{i}") for i in range(3))
    assert all(th.attrs.get("scope") in ("row", "col") for th in dom.find("th"))
    assert all(svg.attrs.get("role") == "img" and svg.attrs.get("aria-label") for svg in dom.find("svg"))
    verdict = dom.one("p", id="verdict").text
    assert "2 of 3 bundle(s) pass" in verdict and str(bundles[2]) in verdict  # the smallest passing


def test_default_page_is_report_compare_html_in_the_current_folder(run, bundles, tmp_path):
    result = run("report", *bundles, cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "report-compare.html").is_file()


def test_json_prints_one_document_comparing_the_bundles(run, bundles, tmp_path):
    result = run("report", *bundles, "--json", "-o", tmp_path / "c.html")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    rows = document["bundles"]
    assert [row["bundle"] for row in rows] == [str(b) for b in bundles]
    assert [row["device"] for row in rows] == ["host-cpu", "raspberry-pi-4", "coral-usb"]
    assert [row["passed"] for row in rows] == [True, False, True]
    assert rows[1]["gates"] == {"passed": 1, "total": 2, "failed": ["max_latency_ms"]}
    assert rows[0]["latency_samples"] == 60 and rows[2]["latency_estimated"] is True
    assert rows[1]["latency_ms"]["p90"] > rows[1]["latency_ms"]["p50"] > 20
    assert document["passing"] == [str(bundles[0]), str(bundles[2])]
    assert document["smallest"] == str(bundles[0]) and document["fastest"] == str(bundles[2])
    assert document["page"] == str(tmp_path / "c.html") and (tmp_path / "c.html").is_file()


def test_markdown_prints_a_table_row_per_bundle(run, bundles, tmp_path):
    result = run("report", *bundles, "--markdown", "-o", tmp_path / "c.html")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("| bundle | device | verdict | accuracy | drop | p50 | p90 | size (gzip) |")
    rows = [line for line in lines[2:] if line.startswith("| ")]
    assert [row.split(" | ")[0][2:] for row in rows] == [str(b) for b in bundles]
    assert "| raspberry-pi-4 | FAIL | 96.11% | 1.000 pts |" in rows[1] and "failed: max_latency_ms" in rows[1]
    assert "(est.)" in rows[2] and "comparison page" not in result.stdout


@pytest.mark.parametrize("what", ["empty folder", "missing", "file"])
def test_a_path_that_is_not_a_bundle_is_refused_in_one_line_naming_it(run, bundles, tmp_path, what):
    bad = tmp_path / "not-a-bundle"
    if what == "empty folder":
        bad.mkdir()
    elif what == "file":
        bad.write_text("x")
    result = run("report", bundles[0], bad, "-o", tmp_path / "c.html")
    assert_one_line_error(result, 2, f"{bad} is not an edgepack bundle")
    assert not (tmp_path / "c.html").exists() and result.stdout == ""


def test_a_report_json_that_is_not_a_run_report_is_bad_data(run, bundles, tmp_path):
    broken = _bundle(tmp_path / "broken", {"name": "x"})
    result = run("report", bundles[0], broken, "--json", "-o", tmp_path / "c.html")
    assert_one_line_error(result, 3, str(broken / "report.json"), "not an edgepack run report")
    assert result.stdout == ""
    (broken / "report.json").write_text("{not json")
    assert_one_line_error(run("report", broken, "-o", tmp_path / "c.html"), 3, "cannot read")


def test_a_page_that_cannot_be_written_is_an_output_error(run, bundles, tmp_path):
    assert_one_line_error(run("report", *bundles, "-o", tmp_path), 8, "is a folder")


def test_json_and_markdown_together_is_a_usage_error(run, bundles, tmp_path):
    result = run("report", *bundles, "--json", "--markdown", "-o", tmp_path / "c.html")
    assert_one_line_error(result, 2, "--json and --markdown")


def test_report_command_does_not_import_tensorflow(bundles, tmp_path):
    code = ("import sys\nfrom edgepack.cli import cli\ntry:\n    cli.main(sys.argv[1:])\nexcept SystemExit as exc:\n"
            "    assert exc.code == 0, exc.code\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, "report", *map(str, bundles), "--json", "-o",
                           str(tmp_path / "c.html")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "False False"
