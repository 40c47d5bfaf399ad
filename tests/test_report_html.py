"""The HTML report, opened in a real headless Chromium: it renders, the plots and figures are there, and
the charts are drawn from the data (positions checked against the axis each chart declares)."""

from __future__ import annotations

import math
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest

from edgepack.report import render
from edgepack.report.result import RunResult

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def write_reports(folder, result: dict):
    """The renderer takes a RunResult; the dicts here are report.json documents, read as a RunResult."""
    return render.write_reports(folder, RunResult.model_validate(result))


def render_markdown(result: dict) -> str:
    return render.render_markdown(RunResult.model_validate(result))


def latency_result(stats: dict, *, estimated: bool = False, source: str | None = None) -> dict:
    """A profile result (LatencyResult as report.json holds it) around ``stats``."""
    return {"model": "model.tflite", "device": "host-cpu", "where": "estimate" if estimated else "local",
            "estimated": estimated, "estimate_source": source,
            "runtime": {"name": "ai-edge-litert", "version": "2.3.0"}, "latency_ms": stats,
            "size_bytes": 24_000, "gzip_size_bytes": 9_000, "inputs": "random rows", "settings": {}}


def sensitivity_result(ranking: list[str], layers: list[dict], int8_drop: float | None = None) -> dict:
    """A sensitivity result (as ``edgepack sensitivity --json`` writes it) with the given per-layer rows."""
    return {"model": "m.keras", "data": "val.npz", "samples": 100, "metric": "accuracy",
            "drop_unit": "percentage points", "reference": 0.97, "int8_drop": int8_drop, "ranking": ranking,
            "layers": [{"class_name": "Dense", "weights": 10, **layer} for layer in layers], "seconds": 1.0}


def latency_stats(samples: list[float]) -> dict:
    """The statistics the latency probe records, with the samples kept."""
    array = np.asarray(samples)
    return {"count": len(samples), "mean": float(array.mean()), "std": float(array.std()), "min": float(array.min()),
            "p50": float(np.percentile(array, 50)), "p90": float(np.percentile(array, 90)),
            "p99": float(np.percentile(array, 99)), "max": float(array.max()), "samples_ms": list(samples)}


def sample_result(passed: bool = True) -> dict:
    samples = [1.0 + 0.01 * (i % 17) for i in range(60)]
    return {
        "name": "demo", "recipe": "recipes/demo.yaml", "device": "host-cpu", "bundle": "dist/demo", "passed": passed,
        "summary": "3 gate(s), 0 failed", "metric": "accuracy", "reference": 0.9711, "final": 0.9667, "drop": 0.44,
        "drop_unit": "percentage points", "size_bytes": 24_000, "gzip_size_bytes": 9_000,
        "stages": [{"name": "float (Keras)", "format": "Keras .keras", "size_bytes": 500_000,
                    "gzip_size_bytes": 460_000, "metric": 0.9711, "seconds": 0},
                   {"name": "prune 0.75", "format": "Keras .keras", "size_bytes": 500_000, "gzip_size_bytes": 150_000,
                    "metric": 0.9689, "seconds": 4},
                   {"name": "int8 .tflite", "format": ".tflite", "size_bytes": 24_000, "gzip_size_bytes": 9_000,
                    "metric": 0.9667, "seconds": 3}],
        "gates": [{"gate": "max_accuracy_drop", "threshold": 1.0, "value": 0.44, "unit": "percentage points",
                   "passed": True, "note": None},
                  {"gate": "max_latency_ms", "threshold": 20, "value": float(np.percentile(samples, 50)),
                   "unit": "ms p50", "passed": passed, "note": None}],
        "latency": latency_result(latency_stats(samples)),
        "tflite": {"full_integer": True},
        "provenance": {"edgepack": "0.1.0", "created": "2026-11-22T14:00:00+00:00", "python": "3.11",
                       "platform": "Linux"},
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
    p50 = float(np.percentile(sample_result()["latency"]["latency_ms"]["samples_ms"], 50))
    assert "0.440 percentage points" in dom and f"{p50:.3f} ms p50" in dom and "ai-edge-litert 2.3.0" in dom
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
    p50 = sample_result()["latency"]["latency_ms"]["p50"]
    assert f"| max_latency_ms | 20 ms p50 | {p50:.3f} | FAIL |" in text
    assert "| prune 0.75 |" in text


def test_a_negative_drop_is_called_an_improvement(tmp_path):
    result = sample_result()
    result["drop"], result["final"] = -0.889, 0.98
    write_reports(tmp_path, result)
    assert "-0.889 percentage points (the .tflite scores better)" in (tmp_path / "report.md").read_text()


# --- the charts, read back from the DOM Chromium built -------------------------------------------------------

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by scripts/test-deps.sh")


class Element:
    def __init__(self, tag: str, attrs: dict, svg: str | None, level: int):
        self.tag, self.attrs, self.svg, self.text, self.level = tag, attrs, svg, "", level

    def num(self, name: str) -> float:
        return float(self.attrs[name])


class Dom(HTMLParser):
    """Every element of a page with its attributes, the id of the <svg> it is in, and its own text."""

    VOID = {"meta", "br", "img", "input", "link", "hr", "col", "area", "base", "source", "wbr"}

    def __init__(self, html: str):
        super().__init__()
        self.elements: list[Element] = []
        self.stack: list[Element] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        svg = next((e.attrs.get("id") for e in reversed(self.stack) if e.tag == "svg"), None)
        element = Element(tag, dict(attrs), svg, len(self.stack))
        self.elements.append(element)
        if tag not in self.VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID and self.stack and self.stack[-1].tag == tag:
            self.stack.pop()

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop().tag == tag:
                break

    def handle_data(self, data):
        if self.stack:
            self.stack[-1].text += data

    def find(self, tag: str, svg: str | None = None, **attrs) -> list[Element]:
        return [e for e in self.elements if e.tag == tag and (svg is None or e.svg == svg)
                and all(e.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def one(self, tag: str, **attrs) -> Element:
        found = self.find(tag, **attrs)
        assert len(found) == 1, f"{len(found)} <{tag}> matching {attrs}"
        return found[0]


def chromium_dom(tmp_path, result: dict) -> Dom:
    """Write the reports for ``result`` and return the DOM headless Chromium built from report.html."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    write_reports(tmp_path, result)
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'chrome-profile'}", "--dump-dom",
                          (tmp_path / "report.html").as_uri()], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    return Dom(dom)


def axis_x(svg: Element, value: float) -> float:
    """Where ``value`` sits on the x axis the chart declares (data-scale, data-domain, data-range)."""
    lo, hi = (float(v) for v in svg.attrs["data-domain"].split())
    start, end = (float(v) for v in svg.attrs["data-range"].split())
    f = math.log10 if svg.attrs["data-scale"] == "log" else (lambda v: v)
    return start + (f(value) - f(lo)) / (f(hi) - f(lo)) * (end - start)


def with_samples(samples: list[float]) -> dict:
    result = sample_result()
    result["latency"]["latency_ms"] = latency_stats(samples)
    return result


def skewed_samples() -> list[float]:
    """A tight peak near 5 µs and a few slow runs up to 0.18 ms, as a small model on a busy CPU gives."""
    rng = np.random.default_rng(7)
    return [float(v) for v in np.exp(rng.normal(np.log(0.0057), 0.05, 400))] + [0.012, 0.03, 0.18]


@needs_chromium
def test_latency_p50_marker_sits_at_the_p50_of_the_samples(tmp_path):
    samples = sample_result()["latency"]["latency_ms"]["samples_ms"]
    dom = chromium_dom(tmp_path, sample_result())
    svg, p50 = dom.one("svg", id="latency"), float(np.percentile(samples, 50))
    for stat in ("p50", "p90", "p99"):
        marker = dom.one("line", data_stat=stat)
        expected = float(np.percentile(samples, int(stat[1:])))
        assert marker.num("data-value") == pytest.approx(expected, rel=1e-4)
        assert marker.num("x1") == pytest.approx(axis_x(svg, expected), abs=0.05)
    marker_x = dom.one("line", data_stat="p50").num("x1")
    holding = [b for b in dom.find("rect", "latency", **{"class": "bin"})
               if b.num("data-lo") <= p50 <= b.num("data-hi")]
    assert holding and any(b.num("x") - 0.5 <= marker_x <= b.num("x") + b.num("width") + 1.5 for b in holding)


@needs_chromium
def test_latency_histogram_bars_match_a_numpy_histogram_of_the_samples(tmp_path):
    samples = sample_result()["latency"]["latency_ms"]["samples_ms"]
    dom = chromium_dom(tmp_path, sample_result())
    svg = dom.one("svg", id="latency")
    assert svg.attrs["data-scale"] == "linear" and int(svg.attrs["data-samples"]) == len(samples)
    counts, edges = np.histogram(samples, bins=int(svg.attrs["data-bins"]))
    bars = dom.find("rect", "latency", **{"class": "bin"})
    assert [int(b.attrs["data-count"]) for b in bars] == counts.tolist()
    assert [b.num("data-lo") for b in bars] == pytest.approx(edges[:-1].tolist(), rel=1e-5)
    tallest = max(b.num("height") for b in bars)
    assert [b.num("height") / tallest for b in bars] == pytest.approx((counts / counts.max()).tolist(), abs=0.01)


@needs_chromium
def test_latency_axis_turns_log_when_the_slowest_run_is_over_20x_the_fastest(tmp_path):
    samples = skewed_samples()
    dom = chromium_dom(tmp_path, with_samples(samples))
    svg = dom.one("svg", id="latency")
    assert svg.attrs["data-scale"] == "log"
    bins = int(svg.attrs["data-bins"])
    counts, _ = np.histogram(samples, bins=np.geomspace(min(samples), max(samples), bins + 1))
    bars = dom.find("rect", "latency", **{"class": "bin"})
    assert [int(b.attrs["data-count"]) for b in bars] == counts.tolist() and sum(counts) == len(samples)
    p50 = float(np.percentile(samples, 50))
    assert dom.one("line", data_stat="p50").num("x1") == pytest.approx(axis_x(svg, p50), abs=0.05)
    assert dom.find("rect", "latency", **{"class": "bin"})[-1].attrs["data-count"] == "1"  # the 0.18 ms run


@needs_chromium
def test_without_samples_the_report_says_so_instead_of_drawing_a_histogram(tmp_path):
    result = sample_result()
    del result["latency"]["latency_ms"]["samples_ms"]
    dom = chromium_dom(tmp_path / "stats", result)
    assert not dom.find("rect", **{"class": "bin"})
    assert "No timing samples in this report" in dom.one("span", id="latency-none").text
    assert dom.one("line", data_stat="p50").num("data-value") == result["latency"]["latency_ms"]["p50"]
    result["latency"].update(estimated=True, estimate_source="device profile figures")
    dom = chromium_dom(tmp_path / "estimate", result)
    assert not dom.find("svg", id="latency") and "estimate, not a measurement" in dom.one("p", id="latency-none").text


@needs_chromium
def test_metric_axis_starts_above_zero_when_every_value_is_above_half_with_the_gate_drawn(tmp_path):
    result = sample_result()
    dom = chromium_dom(tmp_path, result)
    svg = dom.one("svg", id="metric")
    lo, hi = (float(v) for v in svg.attrs["data-domain"].split())
    values = [stage["metric"] for stage in result["stages"]]
    assert 0.5 < lo < min(values) and max(values) < hi <= 1.0
    gate = dom.one("line", **{"class": "gate"})
    assert gate.num("data-value") == pytest.approx(0.9711 - 0.01)
    assert gate.num("x1") == pytest.approx(axis_x(svg, 0.9611), abs=0.05)
    points = dom.find("circle", "metric", **{"class": "point"})
    assert [p.num("data-value") for p in points] == pytest.approx(values)
    assert [p.num("cx") for p in points] == pytest.approx([axis_x(svg, v) for v in values], abs=0.05)
    assert points[0].num("cx") - points[2].num("cx") > 100, "0.44 points apart must be far apart"
    assert any("gate ≥ 96.11%" in t.text for t in dom.find("text", "metric"))


@needs_chromium
def test_metric_axis_starts_at_zero_when_a_value_is_at_or_below_half(tmp_path):
    result = sample_result()
    result["stages"][1]["metric"] = 0.42
    svg = chromium_dom(tmp_path, result).one("svg", id="metric")
    assert float(svg.attrs["data-domain"].split()[0]) == 0.0


@needs_chromium
def test_size_bars_name_their_format_and_the_note_says_formats_are_not_like_for_like(tmp_path):
    dom = chromium_dom(tmp_path, sample_result())
    bars = dom.find("rect", "size", **{"class": "bar"})
    assert [b.attrs["data-format"] for b in bars] == ["Keras .keras", "Keras .keras", ".tflite"]
    labels = [t.text for t in dom.find("text", "size", **{"class": "format"})]
    assert labels == ["Keras .keras", "Keras .keras", ".tflite"]
    assert [b.num("data-value") for b in bars] == [460_000, 150_000, 9_000]
    note = dom.one("figcaption", **{"class": "size-note"}).text
    assert "not like for like" in note


@needs_chromium
def test_page_basics_headings_in_order_table_headers_scoped_charts_labelled_print_css(tmp_path):
    result = sample_result()
    result["layers"] = sample_layers()
    dom = chromium_dom(tmp_path, result)
    levels = [int(e.tag[1]) for e in dom.elements if e.tag in ("h1", "h2", "h3", "h4")]
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(b - a <= 1 for a, b in zip(levels, levels[1:])), levels
    assert dom.find("th") and all(th.attrs.get("scope") in ("row", "col") for th in dom.find("th"))
    svgs = dom.find("svg")
    assert len(svgs) == 4
    for svg in svgs:
        assert svg.attrs.get("role") == "img" and len(svg.attrs.get("aria-label", "")) > 20
        first_child = next(e for e in dom.elements if e.svg == svg.attrs["id"])
        assert first_child.tag == "title" and first_child.text
    style = dom.one("style").text
    assert "@page" in style and "A4" in style and "break-inside:avoid" in style
    html = (tmp_path / "report.html").read_text()
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html
    assert "<script" not in html


def sample_layers() -> list[dict]:
    """Three layers in the shape edgepack.report.layers documents."""
    return [{"name": "conv2d", "class": "Conv2D", "params": 160, "sparsity": 0.25, "distinct_values": 121,
             "ops": [{"index": 0, "op": "CONV_2D", "type": "int8", "edgetpu": True, "gpu": None}]},
            {"name": "flatten", "class": "Flatten", "params": 0, "sparsity": None, "distinct_values": None,
             "ops": [{"index": 1, "op": "RESHAPE", "type": "int8", "edgetpu": True, "gpu": None}]},
            {"name": "dense", "class": "Dense", "params": 6410, "sparsity": 0.8, "distinct_values": 16,
             "ops": [{"index": 2, "op": "FULLY_CONNECTED", "type": "float32", "edgetpu": False, "gpu": None}]}]


@needs_chromium
def test_per_layer_table_has_one_row_per_layer_with_its_sparsity(tmp_path):
    result = sample_result()
    result["layers"] = sample_layers()
    result["sensitivity"] = sensitivity_result(["dense", "conv2d"], int8_drop=2.0,
                                               layers=[{"layer": "dense", "int8_error": 0.31, "int8_drop_if_float": 0.2,
                                                        "prune_drop": {"0.9": 3.0}, "cluster_drop": {"8": 1.0}},
                                                       {"layer": "conv2d", "int8_error": 0.05,
                                                        "int8_drop_if_float": 1.9, "prune_drop": {},
                                                        "cluster_drop": {}}])
    result["mixed_precision"] = {"patterns": ["dense"], "float_layers": ["dense"], "layers_total": 3, "control": None}
    dom = chromium_dom(tmp_path, result)
    rows = [e for e in dom.find("tr") if "data-layer" in e.attrs]
    assert [r.attrs["data-layer"] for r in rows] == ["conv2d", "flatten", "dense"]
    assert [r.attrs["data-sparsity"] for r in rows] == ["0.25", "-", "0.8"]
    header = [th.text for th in dom.elements if th.tag == "th" and th.attrs.get("scope") == "col"]
    for column in ("sparsity", "distinct values", "ops (type)", "Edge TPU", "int8 error", "accuracy control"):
        assert column in header
    assert "GPU delegate" not in header, "no op has GPU data, so no GPU column"
    cells = [e.text for e in dom.elements if e.tag in ("td", "th") and e.level > rows[2].level
             and dom.elements.index(e) > dom.elements.index(rows[2])][:10]
    assert cells[:7] == ["dense", "Dense", "6,410", "80.0%", "16", "FULLY_CONNECTED float32", "no"]
    assert "kept float (--float-ops)" in cells
    assert [b.num("data-value") for b in dom.find("rect", "layer-sparsity")] == [0.25, 0.8]


def test_without_layers_there_is_no_per_layer_section(tmp_path):
    write_reports(tmp_path, sample_result())
    assert 'id="layers"' not in (tmp_path / "report.html").read_text()
    assert "## Per layer" not in (tmp_path / "report.md").read_text()


def test_markdown_has_the_per_layer_table_and_the_stage_formats():
    result = sample_result()
    result["layers"] = sample_layers()
    text = render_markdown(result)
    assert "| dense | Dense | 6,410 | 80.0% | 16 | FULLY_CONNECTED float32 | no |" in text
    assert "| int8 .tflite | .tflite |" in text and "not like for like" in text
