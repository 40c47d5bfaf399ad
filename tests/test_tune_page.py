"""The study page of ``edgepack tune``, opened in a real headless Chromium: scatter, gates, front, table, escaping."""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_report_html import CHROMIUM, FLAGS

from edgepack.tuning.page import settings_text, study_page, write_study_page
from edgepack.tuning.limits import StopRule
from edgepack.tuning.result import TuneResult
from edgepack.tuning.trials import TrialSummary

GATES = {"max_accuracy_drop": 1.0, "max_size_kb": 50.0, "max_latency_ms": None}
EVIL = "<script>alert(1)</script>"
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by scripts/test-deps.sh")


def _steps(sparsity: float | None = None, allocate: str = "uniform", clusters: int | None = None,
           max_drop: float | None = None, float_ops: list[str] | None = None) -> list[dict]:
    steps: list[dict] = []
    if sparsity is not None:
        steps.append({"prune": {"sparsity": sparsity, "schedule": "polynomial", "structure": "unstructured",
                                "allocate": allocate, "layer_sparsity": {}, "epochs": 2}})
    if clusters is not None:
        steps.append({"cluster": {"clusters": clusters, "init": "kmeans++", "preserve_sparsity": sparsity is not None}})
    steps.append({"quantize": {"mode": "int8", "io": "float32", "samples": 200, "max_drop": max_drop,
                               "float_ops": float_ops or [], "fallback": "none"}})
    return steps + [{"evaluate": {"batch_size": 64}}, {"profile": {"runs": 50, "where": "auto"}}]


def sample_result(sizes: dict[int, float] | None = None) -> TuneResult:
    """Ten trials: six complete (front 0, 1, 3; 4 and 9 fail a gate), two pruned, one failed, one running."""
    done = {  # number: (steps, size KB, latency ms, drop, feasible)
        0: (_steps(0.5, clusters=16), 38.2, 1.10, 0.15, True),
        1: (_steps(), 48.5, 1.45, -0.05, True),
        3: (_steps(0.82, "sensitivity", 16, max_drop=1.0), 21.4, 0.92, 0.62, True),
        4: (_steps(0.93, clusters=8), 14.0, 0.85, 2.8, False),
        6: (_steps(0.6, "sensitivity", float_ops=[EVIL]), 45.0, 1.20, 0.30, True),
        9: (_steps(0.3), 55.0, 1.30, 0.90, False),
    }
    trials = []
    for number, (steps, size, latency, drop, feasible) in done.items():
        size = (sizes or {}).get(number, size)
        trials.append(TrialSummary(number=number, state="COMPLETE", steps=steps, size_kb=size, latency_ms=latency,
                                   drop=drop, feasible=feasible, violation=0.0 if feasible else 1.0))
    trials += [TrialSummary(number=2, state="PRUNED", note="stopped early: prune 0.95 already loses 9.10 (gate 1)"),
               TrialSummary(number=5, state="FAIL", note="ValueError: <b>bad</b> & worse"),
               TrialSummary(number=7, state="PRUNED", note="plan: cluster needs a Keras model"),
               TrialSummary(number=8, state="RUNNING")]
    return TuneResult(study="demo <tune>", storage="postgresql://me:***@db/edgepack", objectives=["size", "drop"],
                      trials=sorted(trials, key=lambda t: -t.number), pareto=[0, 1, 3], best=3, seconds=84.2,
                      stop=StopRule(timeout=600), stopped_by="timeout")


class Dom(HTMLParser):
    """Every element as (tag, attrs, text directly inside it); enough to read circles, titles and lines."""

    def __init__(self, html: str):
        super().__init__()
        self.elements: list[list] = []
        self.stack: list[list] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        element = [tag, dict(attrs), ""]
        self.elements.append(element)
        if tag not in {"line", "rect", "path", "meta", "br"}:
            self.stack.append(element)

    def handle_startendtag(self, tag, attrs):
        self.elements.append([tag, dict(attrs), ""])

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        if self.stack:
            self.stack[-1][2] += data

    def find(self, tag: str, **attrs) -> list[list]:
        return [e for e in self.elements if e[0] == tag and all(e[1].get(k.replace("_", "-")) == v
                                                                 for k, v in attrs.items())]

    def circles(self, chart_id: str = "pareto-size") -> list[tuple[dict, str]]:
        """The trial circles of one chart with the text of their <title> child."""
        out, inside = [], False
        for index, (tag, attrs, _) in enumerate(self.elements):
            if tag == "svg":
                inside = attrs.get("id") == chart_id
            elif inside and tag == "circle" and "data-trial" in attrs:
                title = self.elements[index + 1]
                out.append((attrs, title[2] if title[0] == "title" else ""))
        return out


def chromium_dom(page: Path) -> str:
    profile = page.parent / "chrome-profile"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120, check=True).stdout


def screenshot(page: Path, shot: Path) -> Path:
    profile = page.parent / "chrome-profile"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}",
                    "--window-size=1100,1500", "--hide-scrollbars", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    return shot


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, Dom]:
    page = write_study_page(sample_result(), tmp_path_factory.mktemp("page") / "study.html", gates=GATES)
    return page, Dom(chromium_dom(page))


@needs_chromium
def test_one_circle_per_completed_trial_with_figures(rendered):
    _, dom = rendered
    numbers = sorted(int(attrs["data-trial"]) for attrs, _ in dom.circles())
    assert numbers == [0, 1, 3, 4, 6, 9]
    assert dom.find("h1")[0][2] == "Tune study demo <tune>"


@needs_chromium
def test_the_page_says_which_limit_the_run_had_and_which_ended_it(rendered):
    _, dom = rendered
    assert dom.find("p", id="limits")[0][2] == ("This run: trials until 600 s have passed (no trial limit); "
                                                 "ended by its time limit.")


@needs_chromium
def test_front_circles_are_exactly_the_pareto_trials(rendered):
    _, dom = rendered
    front = sorted(int(a["data-trial"]) for a, _ in dom.circles() if a["data-front"] == "true")
    assert front == [0, 1, 3]
    assert len(dom.find("path", **{"class": "front-line"})) == 1
    assert sorted(a["data-trial"] for a, _ in dom.circles() if a["fill"] == "#fff") == ["4", "9"]  # hollow: infeasible


@needs_chromium
def test_accuracy_gate_line_sits_at_the_gate_value(rendered):
    _, dom = rendered
    svg = dom.find("svg", id="pareto-size")[0][1]
    low, high = map(float, svg["data-y-domain"].split())
    _, top, _, bottom = map(float, svg["data-plot-box"].split())
    line = dom.find("line", data_gate="max_accuracy_drop")[0][1]
    expected = bottom - (1.0 - low) / (high - low) * (bottom - top)
    assert float(line["y1"]) == pytest.approx(expected, abs=0.01) and line["y1"] == line["y2"]
    assert low <= -0.05 < 1.0 < 2.8 <= high and low > -0.05 - (high - low) / 4, "the y range follows the data"
    cy = {int(a["data-trial"]): float(a["cy"]) for a, _ in dom.circles()}
    assert cy[4] < float(line["y1"]) < cy[9] < cy[3], "drops above the gate are drawn above its line"
    assert any("drop ≤ 1 pts" in text for tag, _, text in dom.elements if tag == "text")
    size_gate = dom.find("line", data_gate="max_size_kb")[0][1]
    cx = {int(a["data-trial"]): float(a["cx"]) for a, _ in dom.circles()}
    assert cx[1] < float(size_gate["x1"]) < cx[9] and size_gate["x1"] == size_gate["x2"]


@needs_chromium
def test_every_circle_title_names_its_trial_and_settings(rendered):
    _, dom = rendered
    trials = {t.number: t for t in sample_result().trials}
    for attrs, title in dom.circles():
        number = int(attrs["data-trial"])
        assert title.startswith(f"trial {number}: ")
        assert settings_text(trials[number].steps) in title
    title = dict((a["data-trial"], t) for a, t in dom.circles())["3"]
    assert "prune sparsity 0.82 sensitivity · cluster 16 · quantize int8, max_drop 1" in title
    assert "evaluate" not in title and "profile" not in title


@needs_chromium
def test_recipe_text_is_escaped_and_no_script_runs(rendered):
    page, dom = rendered
    html = page.read_text()
    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not dom.find("script") and not dom.find("b")
    title = dict((a["data-trial"], t) for a, t in dom.circles())["6"]
    assert f"float_ops {EVIL}" in title  # the parser unescapes: the text is shown, not run
    assert any(text == "ValueError: <b>bad</b> & worse" for tag, _, text in dom.elements if tag == "td")


@needs_chromium
def test_table_lists_every_trial_by_number_with_front_rows_marked(rendered):
    _, dom = rendered
    rows = [e for e in dom.find("tr") if "data-trial" in e[1]]
    assert [int(r[1]["data-trial"]) for r in rows] == list(range(10))
    assert sorted(int(r[1]["data-trial"]) for r in rows if "front" in r[1]["class"].split()) == [0, 1, 3]
    assert all(th[1].get("scope") in {"col", "row"} for th in dom.find("th"))
    assert dom.find("tr", **{"class": "front best"})[0][1]["data-trial"] == "3"


@needs_chromium
def test_chart_is_accessible_and_the_best_trial_ringed(rendered):
    _, dom = rendered
    svg = dom.find("svg", id="pareto-size")[0][1]
    assert svg["role"] == "img" and "6 completed trial(s), 3 on the front" in svg["aria-label"]
    assert dom.find("title", id="pareto-size-title")
    ring = dom.find("circle", **{"class": "best-ring"})[0][1]
    best = [a for a, _ in dom.circles() if a["data-trial"] == "3"][0]
    assert (ring["cx"], ring["cy"]) == (best["cx"], best["cy"])
    assert any(text == "best: trial 3" for tag, _, text in dom.elements if tag == "text")
    summary = dom.find("p", id="summary")[0][2]
    assert "10 trial(s) (6 complete, 1 fail, 2 pruned, 1 running)" in summary and "4 feasible" in summary
    assert "best: trial 3" in summary and "me:***@db" in summary


@needs_chromium
def test_page_screenshot_shows_the_front_in_colour(rendered):
    page, _ = rendered
    from PIL import Image

    with Image.open(screenshot(page, page.parent / "shot.png")) as image:
        colors = image.convert("RGB").getcolors(maxcolors=1 << 20)
    front_pixels = sum(count for count, rgb in colors if rgb == (216, 129, 59))
    assert front_pixels > 300, "the front points and step line were not drawn"


def test_log_x_axis_when_sizes_span_more_than_twenty_times():
    wide = Dom(study_page(sample_result(sizes={1: 600.0}), gates=GATES))
    svg = wide.find("svg", id="pareto-size")[0][1]
    assert svg["data-x-scale"] == "log"
    low, high = map(float, svg["data-x-domain"].split())
    assert low <= 14.0 and high >= 600.0
    narrow = Dom(study_page(sample_result(), gates=GATES)).find("svg", id="pareto-size")[0][1]
    assert narrow["data-x-scale"] == "linear"


def test_latency_scatter_only_when_latency_is_an_objective():
    assert 'id="pareto-latency"' not in study_page(sample_result(), gates=GATES)
    result = sample_result().model_copy(update={"objectives": ["size", "latency", "drop"]})
    dom = Dom(study_page(result, gates={**GATES, "max_latency_ms": 1.0}))
    assert len(dom.circles("pareto-latency")) == 6
    assert dom.find("line", data_gate="max_latency_ms")


@needs_chromium
def test_no_completed_trial_says_so_instead_of_a_chart(tmp_path):
    result = TuneResult(study="empty", storage="sqlite:///x.db", objectives=["size", "drop"], seconds=3.0,
                        trials=[TrialSummary(number=0, state="PRUNED", note="stopped early"),
                                TrialSummary(number=1, state="FAIL")], pareto=[], best=None)
    dom = Dom(chromium_dom(write_study_page(result, tmp_path / "empty.html", gates=GATES)))
    assert not dom.find("svg") and not dom.find("circle")
    assert "No trial has completed" in dom.find("p", id="no-completed")[0][2]
    assert "no trial passes the gates" in dom.find("p", id="summary")[0][2]
    assert len([e for e in dom.find("tr") if "data-trial" in e[1]]) == 2
