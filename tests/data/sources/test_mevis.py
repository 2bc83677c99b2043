"""MeViS: meta_expressions + mask_dict.json -> RVOS records; anno_id unions, templates, splits and rejects."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.data.sources.helpers import box, convert, dump, jpeg_frames, mask_of, rle
from ufvideo.data.sources.base import RVOS_ANSWERS, RVOS_QUESTIONS

S = (24, 32)
FRAMES = ["00000", "00001", "00002"]


def _masks() -> dict[str, list]:
    return {
        "7": [rle(S, 0, 0, 4, 4), None, rle(S, 2, 2, 8, 8)],
        "6": [rle(S, 10, 10, 14, 14), rle(S, 0, 0, 5, 5), None],
        "8": [None, rle(S, 6, 6, 9, 12), None],
        "9": [rle((12, 16), 0, 0, 4, 4), None, None],
        "10": [None, None, None],
    }


def _mevis(root: Path, split: str = "train") -> None:
    base = root / split
    for vid in ("vid_a", "vid_c"):
        jpeg_frames(base / "JPEGImages" / vid, FRAMES, S)
    jpeg_frames(base / "JPEGImages" / "vid_b", FRAMES[:2], S)
    dump(base / "mask_dict.json", _masks())
    exp = {
        "0": {"exp": "The bird flying away.", "obj_id": [1], "anno_id": [7]},
        "1": {"exp": "two birds standing still", "obj_id": [0, 2], "anno_id": [6, 8]},
        "2": {"exp": "a ghost", "obj_id": [3], "anno_id": [99]},
        "3": {"exp": "nothing", "obj_id": [], "anno_id": []},
        "4": {"exp": "never visible", "obj_id": [5], "anno_id": [10]},
    }
    videos = {
        "vid_a": {"vid_id": 1, "frames": FRAMES, "expressions": exp},
        "vid_b": {"vid_id": 2, "frames": FRAMES, "expressions": {"0": {"exp": "x", "obj_id": [1], "anno_id": [7]}}},
        "vid_c": {"vid_id": 3, "frames": FRAMES, "expressions": {"0": {"exp": "y", "obj_id": [1], "anno_id": [9]}}},
    }
    dump(base / "meta_expressions.json", {"videos": videos})


def test_mevis(tmp_path: Path) -> None:
    _mevis(tmp_path / "raw")
    manifest, records, rejects = convert("mevis", tmp_path / "raw", tmp_path / "out", workers=2, videos_per_unit=1)
    by_id = {r["id"]: r for r in records}
    assert sorted(by_id) == ["mevis/train/vid_a/0", "mevis/train/vid_a/1"]
    one = by_id["mevis/train/vid_a/0"]
    assert one["task"] == "rvos" and one["source"] == "mevis"
    assert one["video"] == [f"train/JPEGImages/vid_a/{f}.jpg" for f in FRAMES]
    assert (one["height"], one["width"], one["num_frames"]) == (*S, 3)
    question, answer = one["conversations"][0]["value"], one["conversations"][1]["value"]
    assert question in {"<video>\n" + q.format(expr="the bird flying away") for q in RVOS_QUESTIONS}
    assert answer in RVOS_ANSWERS
    assert one["targets"][0]["1"] is None and set(one["targets"][0]) == {"0", "1", "2"}
    assert one["meta"] == {
        "expression": "The bird flying away.",
        "video_id": "vid_a",
        "exp_id": "0",
        "anno_id": [7],
        "obj_id": [1],
    }
    union = by_id["mevis/train/vid_a/1"]["targets"][0]
    assert np.array_equal(mask_of(union["1"], S), box(S, 0, 0, 5, 5) | box(S, 6, 6, 9, 12))
    assert np.array_equal(mask_of(union["0"], S), box(S, 10, 10, 14, 14)) and union["2"] is None
    got = {(r["file"], r["index"], r["field"]): r["reason"] for r in rejects}
    meta = "train/meta_expressions.json"
    assert set(got) == {
        (meta, 0, "videos[vid_a].expressions[2].anno_id"),
        (meta, 0, "videos[vid_a].expressions[3].anno_id"),
        (meta, 0, "videos[vid_a].expressions[4].masks"),
        (meta, 1, "videos[vid_b].frames[2]"),
        (meta, 2, "videos[vid_c].expressions[0].anno_id"),
    }
    assert "anno_id 99 is not in mask_dict.json" in got[(meta, 0, "videos[vid_a].expressions[2].anno_id")]
    assert "disagrees with the frame size [24, 32]" in got[(meta, 2, "videos[vid_c].expressions[0].anno_id")]
    again, _, _ = convert("mevis", tmp_path / "raw", tmp_path / "again", workers=1)
    assert again["digest"] == manifest["digest"]  # seeded templates, independent of workers and unit size


def test_mevis_valid_u_goes_to_val(tmp_path: Path) -> None:
    _mevis(tmp_path / "raw", split="valid_u")
    manifest, _, _ = convert("mevis", tmp_path / "raw", tmp_path / "out", split="valid_u")
    assert manifest["counts"]["by_split"] == {"val": 2}
