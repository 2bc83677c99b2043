"""Report rendering: metrics grouped by task with published numbers, a self-contained HTML page with the controls
and a gallery (parsed always, rendered in headless Chromium where installed), and real PNG plots with matplotlib
and with the Pillow fallback."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.eval.benchmarks.helpers import oracle_prediction
from ufvideo.data.synthetic import SynthConfig
from ufvideo.data.synthetic import run as synth_run
from ufvideo.eval.report import render
from ufvideo.eval.run import EvalConfig, run
from ufvideo.eval.summary import groups, judge_note, other_notes
from ufvideo.eval.types import Prediction, Sample
from ufvideo.files import write_json

DOC = {
    "benchmark": "mvbench",
    "checkpoint": {"uri": "runs/ckpt", "digest": "ab" * 32},
    "metrics": {"accuracy": 60.0, "accuracy_action_sequence": 75.0, "sc": None},
    "aggregation": None,
    "num_samples": 40,
    "published": {"accuracy": 67.3, "accuracy_action_sequence": 81.5, "accuracy_action_antonym": 95.0},
    "notes": ["accuracy = micro average <over> questions"],
}
DETAILS = {
    "per_task_accuracy": {"action_sequence": 75.0, "action_antonym": 45.0},
    "jf_per_video": {f"vid{i}": float(i) for i in range(70)},
    "ious": [0.0, 0.05, 0.55, 0.99, 1.0],
}


def _write(tmp_path: Path) -> Path:
    write_json(tmp_path / "metrics.json", DOC)
    write_json(tmp_path / "details.json", DETAILS)
    return tmp_path


def test_metrics_are_grouped_by_task_with_the_headline_first() -> None:
    doc = {
        "benchmark": "synthetic",
        "metrics": {
            "qa_accuracy": 50.0,
            "rvos_j": 40.0,
            "rvos_jf": 45.0,
            "caption_sc": None,
            "caption_score_avg": None,
            "caption_cider": 3.5,
            "tvg_miou": None,
        },
        "published": {"rvos_jf": 62.8},
        "headline": ["qa_accuracy", "rvos_jf", "caption_cider"],
        "notes": ["judge metrics not computed: no judge configured (set ...)", "J/F aggregation: per_expression"],
    }
    found = {g.task: g for g in groups(doc)}
    assert list(found) == ["qa", "caption", "rvos", "tvg"]
    assert [r.name for r in found["rvos"].rows] == ["rvos_jf", "rvos_j"] and found["rvos"].rows[0].headline
    assert found["rvos"].rows[0].difference == pytest.approx(-17.8)
    assert [r.name for r in found["caption"].rows] == ["caption_cider"]  # judge metrics folded away
    assert found["tvg"].rows == [] and found["tvg"].not_computed == ["tvg_miou"]
    note = judge_note(doc)
    assert note is not None and note.startswith("2 metrics need a judge") and note.endswith("for caption.")
    assert other_notes(doc) == ["J/F aggregation: per_expression"]
    single = groups({"benchmark": "charades_sta", "metrics": {"r_at_0_3": 1.0, "miou": 2.0}, "headline": ["miou"]})
    assert [(g.task, [r.name for r in g.rows]) for g in single] == [("charades_sta", ["miou", "r_at_0_3"])]


@pytest.mark.parametrize("backend", ["matplotlib", "pillow"])
def test_render(tmp_path: Path, backend: str) -> None:
    files = render(_write(tmp_path), backend=backend)
    plots = {k[len("plot_") :]: Path(v) for k, v in files.items() if k.startswith("plot_")}
    assert set(plots) == {"per_task_accuracy", "jf_per_video", "iou_histogram", "vs_published"}
    for path in plots.values():
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width >= 400
    markdown = Path(files["report_md"]).read_text()
    assert "| **accuracy** | 60.00 | 67.30 | -7.30 |" in markdown
    assert "not computed here: accuracy_action_antonym" in markdown
    assert "![jf_per_video](plots/jf_per_video.png)" in markdown
    page = Path(files["report_html"]).read_text()
    assert "&lt;over&gt;" in page and "<over>" not in page  # notes are escaped
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 4 and 'src="plots/' not in page
    assert base64.b64decode(images[0]).startswith(b"\x89PNG")


def test_render_without_details(tmp_path: Path) -> None:
    write_json(tmp_path / "metrics.json", {**DOC, "published": {}})
    files = render(tmp_path, backend="pillow")
    assert not any(k.startswith("plot_") for k in files)
    assert "# Evaluation: mvbench" in Path(files["report_md"]).read_text()


# ---------------------------------------------------------------- the report of a real evaluation, in a browser


class _Page(HTMLParser):
    """The parts of the report a reader relies on: task sections, headline rows, gallery cards and their images."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def classes(self, tag: str, name: str) -> int:
        return sum(1 for t, a in self.tags if t == tag and name in (a.get("class") or "").split())


def _half_right(model: Any, processor: Any, samples: list[Sample], batch_size: int) -> Iterator[Prediction]:
    """Ground-truth answers and masks for every other sample, a wrong answer and no masks for the rest: the
    gallery then has a best and a worst end to show."""
    for i, sample in enumerate(samples):
        yield oracle_prediction(sample) if i % 2 == 0 else Prediction(id=sample.id, text="no idea")


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    synth = tmp_path_factory.mktemp("synth")
    synth_run(SynthConfig(out=str(synth), videos=8, width=64, height=64, num_frames=16, fps=8))
    out = tmp_path_factory.mktemp("eval")
    cfg = EvalConfig(
        checkpoint="",
        data_root=str(synth),
        out=str(out),
        track=False,
        controls=["shuffled_video", "blind_prior"],
    )
    run(cfg, predict=_half_right, model_loader=lambda c: (None, None))
    return out


def test_report_of_an_evaluation_has_groups_controls_and_a_gallery(evaluated: Path) -> None:
    entries = json.loads((evaluated / "gallery.json").read_text())
    tasks = {e["task"] for e in entries}
    assert {"qa", "rvos", "tvg", "caption"} <= tasks
    rvos = [e for e in entries if e["task"] == "rvos"]
    assert {e["kind"] for e in rvos} == {"best", "worst"}
    best = next(e for e in rvos if e["kind"] == "best")
    assert best["score"] == pytest.approx(1.0) and best["masks"] == "kept"
    with Image.open(evaluated / best["image"]) as image:  # frames with truth and prediction drawn in
        pixels = np.asarray(image.convert("RGB"))
    assert (np.abs(pixels.astype(int) - [255, 0, 200]).sum(-1) < 60).any(), "no predicted-mask outline"
    tvg = next(e for e in entries if e["task"] == "tvg" and e["kind"] == "worst")
    assert tvg["prediction"] == "no idea" and tvg["score"] == 0.0 and "<TEMP-" in tvg["answer"]

    page = _Page()
    page.feed((evaluated / "report.html").read_text())
    assert page.classes("section", "task") >= 8 and page.classes("tr", "headline") >= 8
    assert page.classes("div", "best") >= 7 and page.classes("div", "worst") >= 7
    images = [a["src"] for t, a in page.tags if t == "img"]
    assert images and all((src or "").startswith("data:image/png;base64,") for src in images)
    text = " ".join(page.text)
    assert "Controls" in text and "blind prior" in text and "video dependence" in text
    assert text.count("need a judge") == 1 and "<td>n/a</td>" not in (evaluated / "report.html").read_text()
    assert not [a for t, a in page.tags if t in ("img", "script", "link") and "src" in a and "data:" not in a["src"]]


def test_report_renders_in_headless_chromium(evaluated: Path, tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed: the report's browser rendering is not checked (apt-get install chromium)")
    shot = tmp_path / "report.png"
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,2400"]
    subprocess.run(
        [*command, f"--screenshot={shot}", (evaluated / "report.html").resolve().as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
    )
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape[:2] == (2400, 1280)
    not_white = (pixels < 240).any(-1)
    assert not_white.mean() > 0.05, f"the page looks blank ({not_white.mean():.1%} of pixels drawn)"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200  # text, tables and embedded pictures, not one colour
