"""Report rendering: Markdown table with published numbers, a self-contained HTML page, and real PNG plots with
matplotlib and with the Pillow fallback."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from PIL import Image

from ufvideo.eval.report import metric_rows, render
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


def test_metric_rows_put_published_numbers_alongside() -> None:
    rows = metric_rows(DOC)
    assert rows[0] == ("accuracy", "60.00", "67.30", "-7.30")
    assert ("sc", "n/a", "", "") in rows
    assert rows[-1] == ("accuracy_action_antonym", "n/a", "95.00", "")


@pytest.mark.parametrize("backend", ["matplotlib", "pillow"])
def test_render(tmp_path: Path, backend: str) -> None:
    files = render(_write(tmp_path), backend=backend)
    plots = {k[len("plot_") :]: Path(v) for k, v in files.items() if k.startswith("plot_")}
    assert set(plots) == {"per_task_accuracy", "jf_per_video", "iou_histogram", "vs_published"}
    for path in plots.values():
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width >= 400
    markdown = Path(files["report_md"]).read_text()
    assert "| accuracy | 60.00 | 67.30 | -7.30 |" in markdown
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
