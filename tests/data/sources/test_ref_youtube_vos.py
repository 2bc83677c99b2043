"""Ref-YouTube-VOS: palette PNG annotations (pixel = object id) -> per-object RLE targets, one record per expression."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tests.data.sources.helpers import box, convert, dump, jpeg_frames, mask_of, palette_png

S = (24, 32)
FRAMES = ["00000", "00005", "00010"]


def _labels(k: int) -> np.ndarray:
    labels = np.zeros(S, np.uint8)
    labels[box(S, 0, 0, 6, 6 + k)] = 1
    if k < 2:
        labels[box(S, 10, 10, 20, 20)] = 2
    return labels


def _fixture(root: Path) -> None:
    for vid in ("003234408d", "0043f083b5", "01c88b5b60"):
        jpeg_frames(root / "train" / "JPEGImages" / vid, FRAMES, S)
    for k, name in enumerate(FRAMES):
        palette_png(root / "train" / "Annotations" / "003234408d" / f"{name}.png", _labels(k))
        palette_png(root / "train" / "Annotations" / "0043f083b5" / f"{name}.png", _labels(k))
    Image.new("RGB", (32, 24)).save(root / "train" / "Annotations" / "0043f083b5" / "00010.png")  # not palette
    palette_png(root / "train" / "Annotations" / "01c88b5b60" / "00000.png", np.zeros((12, 16), np.uint8))
    videos = {
        "003234408d": {
            "frames": FRAMES,
            "expressions": {
                "0": {"exp": "a penguin on the left walking", "obj_id": "1"},
                "1": {"exp": "A brown penguin in the middle.", "obj_id": "2"},
                "2": {"exp": "an object that is not there", "obj_id": "3"},
                "3": {"exp": "bad id", "obj_id": "zero"},
            },
        },
        "0043f083b5": {"frames": FRAMES, "expressions": {"0": {"exp": "x", "obj_id": "1"}}},
        "01c88b5b60": {"frames": FRAMES, "expressions": {"0": {"exp": "y", "obj_id": "1"}}},
        "0bf0d4cdb1": {"frames": FRAMES, "expressions": {"0": {"exp": "z", "obj_id": "1"}}},
    }
    dump(root / "meta_expressions" / "train" / "meta_expressions.json", {"videos": videos})


def test_convert(tmp_path: Path) -> None:
    _fixture(tmp_path / "raw")
    manifest, records, rejects = convert("ref_youtube_vos", tmp_path / "raw", tmp_path / "out", videos_per_unit=2)
    by_id = {r["id"]: r for r in records}
    assert sorted(by_id) == ["ref_youtube_vos/train/003234408d/0", "ref_youtube_vos/train/003234408d/1"]
    left = by_id["ref_youtube_vos/train/003234408d/0"]
    assert left["video"] == [f"train/JPEGImages/003234408d/{f}.jpg" for f in FRAMES]
    assert left["meta"] == {
        "expression": "a penguin on the left walking",
        "video_id": "003234408d",
        "exp_id": "0",
        "obj_id": 1,
    }
    for k in range(3):
        assert np.array_equal(mask_of(left["targets"][0][str(k)], S), box(S, 0, 0, 6, 6 + k))
    middle = by_id["ref_youtube_vos/train/003234408d/1"]["targets"][0]
    assert np.array_equal(mask_of(middle["1"], S), box(S, 10, 10, 20, 20)) and middle["2"] is None
    assert "brown penguin in the middle" in by_id["ref_youtube_vos/train/003234408d/1"]["conversations"][0]["value"]
    got = {(r["index"], r["field"]) for r in rejects}
    assert got == {
        (0, "videos[003234408d].expressions[3].obj_id"),
        (0, "videos[003234408d].expressions[2].masks"),
        (1, "videos[0043f083b5].frames[2]"),
        (2, "videos[01c88b5b60].frames[0]"),
        (3, "videos[0bf0d4cdb1].video"),
    }
    reasons = {r["field"]: r["reason"] for r in rejects}
    assert "expected a palette PNG" in reasons["videos[0043f083b5].frames[2]"]
    assert "disagrees with the frame [24, 32]" in reasons["videos[01c88b5b60].frames[0]"]
    assert manifest["rejects"]["by_source"] == {"ref_youtube_vos": 5}
