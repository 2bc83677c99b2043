"""Charades-STA: both annotation formats (UFVideo's relative test.json, the official seconds txt with the duration
probed from a real video), the exact prompt, span parsing and R@IoU (strict) / mIoU by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.eval.benchmarks.helpers import dump, text
from ufvideo.data.video import write_video
from ufvideo.errors import DataError
from ufvideo.eval.benchmarks import get_benchmark
from ufvideo.eval.benchmarks.charades import charades_parse, charades_score
from ufvideo.eval.metrics import temporal_iou
from ufvideo.eval.registry import ScoreContext


def _json_fixture(root: Path) -> Path:
    dump(
        root / "charades/test.json",
        [
            {"image_id": "3MSZA.mp4", "caption": "person turn a light on.", "timestamp": [0.2, 0.5]},
            {
                "image_id": "v_AMT7R.mp4",
                "caption": "A person is putting a picture onto the wall.",
                "timestamp": [0, 0.3],
            },
            {"image_id": "AMT7R.mp4", "caption": "person sits", "timestamp": [0.5, 0.9]},
        ],
    )
    return root


def test_json_loader_and_prompt(tmp_path: Path) -> None:
    samples = list(get_benchmark("charades_sta").samples(_json_fixture(tmp_path)))
    assert [s.id for s in samples] == ["3MSZA/0", "AMT7R/1", "AMT7R/2"]
    assert samples[1].video == str(tmp_path / "charades/Charades_v1_480/AMT7R.mp4")  # "v_" prefix stripped
    assert samples[0].ground_truth["span"] == [0.2, 0.5]
    assert samples[1].conversation == [
        {
            "from": "human",
            "value": "<video>\nWhen is a person is putting a picture onto the wall occur in the video? "
            "Only give the start and end timestamp.",
        }
    ]


def test_txt_loader_makes_spans_relative(tmp_path: Path) -> None:
    videos = tmp_path / "charades/Charades_v1_480"
    write_video(videos / "3MSZA.mp4", np.zeros((10, 32, 32, 3), np.uint8), fps=5)  # 2.0 s
    (tmp_path / "charades/charades_sta_test.txt").write_text("3MSZA 0.4 1.0##person turn a light on.\n\n")
    (sample,) = list(get_benchmark("charades_sta").samples(tmp_path))
    assert sample.ground_truth["span"] == pytest.approx([0.2, 0.5])
    assert sample.meta["caption"] == "person turn a light on."
    (tmp_path / "charades/charades_sta_test.txt").write_text("3MSZA 0.4##no end time\n")
    with pytest.raises(DataError, match=r"charades_sta_test.txt:1: expected 'VIDEO start end##sentence'"):
        list(get_benchmark("charades_sta").samples(tmp_path))


def test_parse_and_score_by_hand(tmp_path: Path) -> None:
    samples = list(get_benchmark("charades_sta").samples(_json_fixture(tmp_path)))
    outputs = ["{<TEMP-020><TEMP-050>}", "{0,0.6}", "I am not sure"]
    rows = [charades_parse(text(s.id, o), s) for s, o in zip(samples, outputs)]
    assert rows[0]["pred_span"] == pytest.approx([20 / 99, 50 / 99], abs=1e-5)
    assert rows[2]["pred_span"] is None
    first = temporal_iou(rows[0]["pred_span"], [0.2, 0.5])
    scores = charades_score(rows, ScoreContext())
    assert scores.metrics["r_at_0_3"] == pytest.approx(200 / 3)
    assert scores.metrics["r_at_0_5"] == pytest.approx(100 / 3)  # IoU exactly 0.5 is not a hit (strict ">")
    assert scores.metrics["r_at_0_7"] == pytest.approx(100 / 3)
    assert scores.metrics["miou"] == pytest.approx(100 * (first + 0.5) / 3)
    assert scores.details["ious"][1:] == [0.5, 0.0]
    assert any("1 prediction(s) without a parsable span" in n for n in scores.notes)
