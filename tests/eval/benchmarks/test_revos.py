"""ReVOS val: loader on a fixture in the ReVOS-api layout, and referring / reasoning / overall J, F, A, R by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.eval.benchmarks.helpers import box, dump, frames
from ufvideo.data.masks import encode_rle
from ufvideo.eval.benchmarks import get_benchmark
from ufvideo.eval.benchmarks.revos import revos_parse, revos_score
from ufvideo.eval.registry import ScoreContext
from ufvideo.eval.types import Prediction

H, W = 16, 24
A = box(H, W, 2, 8, 2, 8)
VID = "MOSE/0a7a2514"


def _fixture(root: Path) -> Path:
    base = root / "ReVOS"
    frames(base / "JPEGImages" / VID, ["00000", "00005"], H, W)
    exps = {
        "0": {"exp": "the car that moves first", "obj_id": [1], "anno_id": [1042], "type_id": 0},
        "1": {"exp": "which animal pulls a cart?", "obj_id": [2], "anno_id": [1042], "type_id": 1},
        "2": {"exp": "the unicorn", "obj_id": [], "anno_id": [], "type_id": 2},
    }
    meta = {VID: {"height": H, "width": W, "frames": ["00000", "00005"], "expressions": exps}}
    dump(base / "meta_expressions_valid_.json", {"videos": meta})
    dump(base / "mask_dict.json", {"1042": [encode_rle(A), encode_rle(A)]})
    fg = encode_rle(A)
    dump(base / "mask_dict_foreground.json", {VID: {"masks_rle": [fg, fg], "foreground_ratio": [0.1, 0.1]}})
    return root


def test_loader(tmp_path: Path) -> None:
    samples = list(get_benchmark("revos").samples(_fixture(tmp_path)))
    assert [s.id for s in samples] == [f"{VID}/0", f"{VID}/1", f"{VID}/2"]
    assert [s.meta["type_id"] for s in samples] == [0, 1, 2]
    assert samples[2].ground_truth["masks"] == [[None, None]]
    assert samples[0].video[1] == str(tmp_path / "ReVOS/JPEGImages/MOSE/0a7a2514/00005.jpg")


def test_groups_by_hand(tmp_path: Path) -> None:
    ref, rea, none = list(get_benchmark("revos").samples(_fixture(tmp_path)))
    rows = [
        revos_parse(Prediction(ref.id, masks=[np.stack([A, A])]), ref),
        revos_parse(Prediction(rea.id, masks=[np.zeros((2, H, W), bool)]), rea),
        revos_parse(Prediction(none.id, masks=[np.stack([A, A])]), none),
    ]
    scores = revos_score(rows, ScoreContext())
    m = scores.metrics
    assert (m["referring_j"], m["referring_f"], m["referring_a"], m["referring_r"]) == (100.0, 100.0, 100.0, 100.0)
    accuracy = round(100 * (1 - 36 / (H * W)), 2)
    assert (m["reasoning_j"], m["reasoning_f"], m["reasoning_a"], m["reasoning_r"]) == (0.0, 0.0, accuracy, 100.0)
    assert m["j"] == 50.0 and m["jf"] == 50.0 and m["a"] == pytest.approx((100 + accuracy) / 2)
    # A missing track scores 0 on all four, the VISA rule.
    rows[0] = revos_parse(Prediction(ref.id), ref)
    assert revos_score(rows, ScoreContext()).metrics["referring_r"] == 0.0


def test_declaration() -> None:
    bench = get_benchmark("revos")
    assert bench.published["jf"] == 64.8 and "reasoning_jf" in bench.metrics
