"""UFVideo-Bench PixRQA / PixHQA / PixTRQA: loaders on fixtures in the inferred layout (null frames in both
conventions), exact prompts, text/time/mask parsing and scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.eval.benchmarks.helpers import box, dump
from ufvideo.data.masks import encode_rle
from ufvideo.eval.benchmarks import get_benchmark
from ufvideo.eval.benchmarks.ufvideo_bench import (
    pixhqa_parse,
    pixhqa_score,
    pixrqa_parse,
    pixrqa_score,
    pixtrqa_parse,
    pixtrqa_score,
    ufvideo_bench_layout,
)
from ufvideo.eval.registry import ScoreContext
from ufvideo.eval.types import Prediction

H, W = 16, 24
A, A2, B = box(H, W, 2, 8, 2, 8), box(H, W, 3, 9, 3, 9), box(H, W, 8, 14, 10, 20)


def _seg(mask: np.ndarray | None) -> dict:
    return {"segmentation": None if mask is None else encode_rle(mask)}


def test_pixrqa(tmp_path: Path) -> None:
    annotation = [{"3": _seg(A), "5": _seg(B), "7": None, "9": _seg(None), "11": _seg(A2)}]
    dump(
        tmp_path / "UFVideo-Bench/PixRQA.json",
        [{"id": 4, "video": "xyz.mp4", "caption": "A dog runs left.", "annotation": annotation}],
    )
    (sample,) = list(get_benchmark("pixrqa").samples(tmp_path))
    assert sample.video == str(tmp_path / "VideoRefer-Bench/Panda-70M-part/xyz.mp4")
    assert list(sample.regions[0]) == [3] and sample.sam_frames == [5, 11]
    assert sample.conversation == [
        {
            "from": "human",
            "value": "<video>\nThere is 1 objects in the video: object_1: [<region>]. Please give a "
            "detailed description of what is the object_1 doing in the video. And please generate the mask in every "
            "frames?",
        }
    ]
    prediction = Prediction(
        sample.id,
        "object_1 is a dog. The segmentation mask of object_1 is [SEG].",
        masks=[np.stack([B, np.zeros((H, W), bool)])],
    )
    row = pixrqa_parse(prediction, sample)
    assert row["pred_text"] == "object_1 is a dog." and row["reference"] == "A dog runs left."
    assert row["objects"][0]["j"] == [1.0, 0.0]
    scores = pixrqa_score([row], ScoreContext())
    assert scores.metrics["j"] == pytest.approx(50.0) and scores.metrics["score_avg"] is None
    assert ufvideo_bench_layout(sample, 0, 1) == "4/0/1.png"


def _question_record(video: str, answer: str) -> dict:
    return {
        "id": 5,
        "video": video,
        "frame_idx": [0, 2, 4],
        "annotation": [{"0": _seg(A), "2": _seg(A), "4": None}, {"0": _seg(B), "2": _seg(None)}],
        "conversations": [
            [
                {"from": "human", "value": "<video>\nWhen does the woman pick up the cup?"},
                {"from": "gpt", "value": answer},
            ]
        ],
    }


def test_pixhqa(tmp_path: Path) -> None:
    answer = "The ball rolls away. The segmentation mask is [SEG] and [SEG]."
    dump(tmp_path / "UFVideo-Bench/PixHQA.json", [_question_record("clip.mp4", answer)])
    (sample,) = list(get_benchmark("pixhqa").samples(tmp_path))
    assert sample.sam_frames == [0, 2]  # frame 4 has no ground truth for any object
    assert sample.conversation == [{"from": "human", "value": "<video>\nWhen does the woman pick up the cup?"}]
    assert sample.video == str(tmp_path / "VideoRefer-Bench/Panda-70M-part/clip.mp4")
    prediction = Prediction(
        sample.id, "It rolls. The segmentation mask is [SEG] [SEG].", masks=[np.stack([A, A]), np.stack([B, B])]
    )
    row = pixhqa_parse(prediction, sample)
    assert row["reference"] == "The ball rolls away." and row["pred_text"] == "It rolls."
    assert [o["j"] for o in row["objects"]] == [[1.0, 1.0], [1.0, 0.0]]
    scores = pixhqa_score([row], ScoreContext())
    assert scores.metrics["j"] == pytest.approx(75.0)


def test_pixtrqa(tmp_path: Path) -> None:
    answer = "It happens in {<TEMP-010><TEMP-055>}. The woman lifts a cup. The segmentation mask is [SEG]."
    record = _question_record("/abs/videos/clip.mp4", answer)
    record["annotation"] = record["annotation"][:1]
    dump(tmp_path / "UFVideo-Bench/PixTRQA.json", [record])
    (sample,) = list(get_benchmark("pixtrqa").samples(tmp_path))
    assert sample.video == "/abs/videos/clip.mp4"
    output = "It happens in {<TEMP-010><TEMP-055>}. A woman drinks. The segmentation mask is [SEG]."
    row = pixtrqa_parse(Prediction(sample.id, output, masks=[np.stack([A, A])]), sample)
    assert row["gt_span"] == pytest.approx([10 / 99, 55 / 99], abs=1e-5)
    assert row["pred_text"] == "A woman drinks." and row["reference"] == "The woman lifts a cup."
    scores = pixtrqa_score([row], ScoreContext())
    assert scores.metrics["miou"] == pytest.approx(100.0) and scores.metrics["r_at_0_7"] == 100.0
    assert scores.metrics["jf"] == pytest.approx(100.0) and scores.metrics["sc"] is None


def test_declarations() -> None:
    assert get_benchmark("pixtrqa").published["miou"] == 49.64
    assert get_benchmark("pixrqa").published["score_avg"] == 3.35
