"""MeViS, Ref-YouTube-VOS and Ref-DAVIS17 loaders on fixtures in their official layouts; RVOS prompt; J/F scoring
with both aggregations and the missing-prediction rule, checked by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.eval.benchmarks.helpers import (
    MEVIS_A,
    MEVIS_A2,
    MEVIS_B,
    MEVIS_C,
    MEVIS_H,
    MEVIS_W,
    dump,
    frames,
    mevis_fixture,
    rle_box,
)
from ufvideo.data.masks import decode_rle
from ufvideo.errors import DataError
from ufvideo.eval.benchmarks import get_benchmark
from ufvideo.eval.benchmarks.rvos import (
    mevis_layout,
    ref_youtube_vos_layout,
    rvos_parse,
    rvos_score,
)
from ufvideo.eval.registry import FRAME_POOLED, ScoreContext
from ufvideo.eval.types import Prediction

H, W = MEVIS_H, MEVIS_W
A, A2, B, C = MEVIS_A, MEVIS_A2, MEVIS_B, MEVIS_C


def test_mevis_loader_unions_objects_and_keeps_every_frame(tmp_path: Path) -> None:
    samples = list(get_benchmark("mevis_valid_u").samples(mevis_fixture(tmp_path)))
    assert [s.id for s in samples] == ["0ab4afe7fb46/0", "0ab4afe7fb46/1", "0ab4afe7fb46/2"]
    s1 = samples[1]
    assert s1.sam_frames == [0, 1, 2] and s1.teacher_forced and s1.task == "rvos"
    assert [Path(p).name for p in s1.video] == ["00000.jpg", "00001.jpg", "00002.jpg"]
    gt = s1.ground_truth["masks"][0]
    assert np.array_equal(decode_rle(gt[0]), B | C) and np.array_equal(decode_rle(gt[1]), B) and gt[2] is None
    assert samples[0].conversation == [
        {"from": "human", "value": "<video>\nPlease segment the the bird flying away in this image."},
        {"from": "gpt", "value": "Sure, [SEG]."},
    ]


def _predictions(samples: list) -> list[dict]:
    exact = np.stack([A, np.zeros((H, W), bool), A2])
    preds = [
        Prediction(samples[0].id, masks=[exact]),
        Prediction(samples[1].id, masks=[np.zeros((3, H, W), bool)]),
        Prediction(samples[2].id),  # no track at all
    ]
    return [rvos_parse(p, s) for p, s in zip(preds, samples)]


def test_mevis_scores_by_hand(tmp_path: Path) -> None:
    rows = _predictions(list(get_benchmark("mevis_valid_u").samples(mevis_fixture(tmp_path))))
    assert rows[0]["j"] == [1.0, 1.0, 1.0] and rows[0]["f"] == [1.0, 1.0, 1.0]
    assert rows[1]["j"] == [0.0, 0.0, 1.0] and rows[1]["f"] == [0.0, 0.0, 1.0]  # frame 2: both empty -> 1
    assert rows[2]["missing"] is True
    per_expr = rvos_score(rows, ScoreContext())
    assert per_expr.metrics["j"] == pytest.approx(100 * 4 / 9) and per_expr.metrics["jf"] == pytest.approx(100 * 4 / 9)
    assert per_expr.aggregation == "per_expression"
    assert any("scored 0" in n for n in per_expr.notes)
    pooled = rvos_score(rows, ScoreContext(aggregation=FRAME_POOLED))
    assert pooled.metrics["j"] == pytest.approx(100 * 4 / 6) and pooled.aggregation == "frame_pooled"
    assert pooled.details["jf_per_video"] == {"0ab4afe7fb46": pytest.approx(100 * 4 / 9)}


def test_mevis_valid_has_no_ground_truth_and_is_not_scored(tmp_path: Path) -> None:
    samples = list(get_benchmark("mevis_valid_u").samples(mevis_fixture(tmp_path, "valid"), "valid"))
    assert len(samples) == 3 and all(not s.ground_truth for s in samples)
    rows = [rvos_parse(Prediction(s.id, masks=[np.zeros((3, H, W), bool)]), s) for s in samples]
    scores = rvos_score(rows, ScoreContext())
    assert scores.metrics == {"j": None, "f": None, "jf": None}
    assert any("official server" in n for n in scores.notes)
    assert mevis_layout(samples[1], 0, 2) == "0ab4afe7fb46/1/00002.png"


def test_ref_youtube_vos_valid_drops_the_test_videos(tmp_path: Path) -> None:
    root = tmp_path / "ref-youtube-vos"
    meta = {
        "003234408d": {
            "expressions": {"0": {"exp": "a penguin"}, "1": {"exp": "a brown penguin"}},
            "frames": ["00000", "00005"],
        },
        "0043f083b5": {"expressions": {"0": {"exp": "a hidden test video"}}, "frames": ["00000"]},
    }
    dump(root / "meta_expressions/valid/meta_expressions.json", {"videos": meta})
    dump(root / "meta_expressions/test/meta_expressions.json", {"videos": {"0043f083b5": meta["0043f083b5"]}})
    samples = list(get_benchmark("ref_youtube_vos").samples(tmp_path))
    assert [s.id for s in samples] == ["003234408d/0", "003234408d/1"]
    assert samples[0].video[1] == str(root / "valid/JPEGImages/003234408d/00005.jpg")
    assert ref_youtube_vos_layout(samples[1], 0, 1) == "Annotations/003234408d/1/00005.png"


def test_ref_davis17_ground_truth_is_the_palette_object(tmp_path: Path) -> None:
    root = tmp_path / "ref-davis17"
    names = ["00000", "00001"]
    frames(root / "valid/JPEGImages/blackswan", names, H, W)
    for i, name in enumerate(names):
        palette = np.zeros((H, W), np.uint8)
        palette[A] = 1
        palette[B] = 2 if i == 0 else 0
        path = root / "valid/Annotations/blackswan" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray(palette, mode="P")
        image.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * 759)
        image.save(path)
    exps = {"0": {"exp": "a black swan", "obj_id": "1"}, "1": {"exp": "a duck", "obj_id": "2"}}
    dump(
        root / "meta_expressions/valid/meta_expressions.json",
        {"videos": {"blackswan": {"expressions": exps, "frames": names}}},
    )
    swan, duck = list(get_benchmark("ref_davis17").samples(tmp_path))
    swan_row = rvos_parse(Prediction(swan.id, masks=[np.stack([A, A])]), swan)
    duck_row = rvos_parse(Prediction(duck.id, masks=[np.stack([B, B])]), duck)
    assert swan_row["j"] == [1.0, 1.0]
    assert duck_row["j"] == [1.0, 0.0]  # the duck is gone on frame 1; predicting it there scores 0
    with pytest.raises(ValueError, match="blackswan/0: mask track 0 has shape"):
        rvos_parse(Prediction(swan.id, masks=[np.stack([A])]), swan)


def test_missing_anno_id_is_named(tmp_path: Path) -> None:
    root = mevis_fixture(tmp_path)
    dump(root / "mevis/valid_u/mask_dict.json", {"7": [rle_box(H, W, 0, 2, 0, 2), None, None]})
    with pytest.raises(DataError, match="video 0ab4afe7fb46 expression 1: anno_id 6 not in mask_dict"):
        list(get_benchmark("mevis_valid_u").samples(root))
