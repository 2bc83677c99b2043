"""Ref-DAVIS17 from the raw downloads: text files (latin-1 annot2, name fixes), split lists, palette PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.data.sources.helpers import box, convert, jpeg_frames, mask_of, palette_png

S = (24, 32)
NAMES = ["00000", "00001"]


def _fixture(root: Path) -> None:
    davis = root / "DAVIS"
    (davis / "ImageSets" / "2017").mkdir(parents=True)
    (davis / "ImageSets" / "2017" / "train.txt").write_text("classic-car\nbike-packing\nno-frames\n")
    (davis / "ImageSets" / "2017" / "val.txt").write_text("blackswan\n")
    for video in ("classic-car", "bike-packing", "blackswan"):
        jpeg_frames(davis / "JPEGImages" / "480p" / video, NAMES, S)
        for k, name in enumerate(NAMES):
            labels = np.zeros(S, np.uint8)
            labels[box(S, 0, 0, 4 + k, 4)] = 1
            labels[box(S, 10, 10, 14, 14)] = 2
            palette_png(davis / "Annotations_unsupervised" / "480p" / video / f"{name}.png", labels)
    text = root / "davis_text_annotations"
    text.mkdir()
    (text / "Davis17_annot1.txt").write_text(
        'clasic-car 1 "a silver car"\nbike-packing 2 "a man riding a bike"\nblackswan 1 "a black swan"\n'
        'broken line without quotes\nno-frames 1 "ghost"\nclasic-car 1 "the same slot again"\n',
        encoding="utf-8",
    )
    (text / "Davis17_annot1_full_video.txt").write_text('clasic-car 1 "a silver car driving away"\n')
    (text / "Davis17_annot2.txt").write_bytes('clasic-car 1 "a car in front of a café"\n'.encode("latin-1"))
    (text / "Davis17_annot2_full_video.txt").write_bytes('clasic-car 2 "a woman near the car"\n'.encode("latin-1"))


def test_convert_train(tmp_path: Path) -> None:
    _fixture(tmp_path / "raw")
    manifest, records, rejects = convert("ref_davis17", tmp_path / "raw", tmp_path / "out")
    by_id = {r["id"]: r for r in records}
    assert sorted(by_id) == [
        "ref_davis17/train/bike-packing/0",  # object 2 is this video's first object: exp_id 4 * 0 + slot 0
        "ref_davis17/train/classic-car/0",  # clasic-car (misspelled in the text) -> classic-car
        "ref_davis17/train/classic-car/1",
        "ref_davis17/train/classic-car/2",
        "ref_davis17/train/classic-car/7",  # second object, fourth slot: 4 * 1 + 3
    ]
    car = by_id["ref_davis17/train/classic-car/2"]
    assert car["meta"] == {
        "expression": "a car in front of a café",
        "video_id": "classic-car",
        "exp_id": "2",
        "obj_id": 1,
        "annotator": 2,
        "kind": "first_frame",
    }
    assert "a car in front of a café" in car["conversations"][0]["value"]  # latin-1 decoded
    assert car["video"] == [f"DAVIS/JPEGImages/480p/classic-car/{n}.jpg" for n in NAMES]
    assert np.array_equal(mask_of(car["targets"][0]["1"], S), box(S, 0, 0, 5, 4))
    woman = by_id["ref_davis17/train/classic-car/7"]  # object 2, annot2 full-video
    assert np.array_equal(mask_of(woman["targets"][0]["0"], S), box(S, 10, 10, 14, 14))
    assert by_id["ref_davis17/train/bike-packing/0"]["meta"]["obj_id"] == 2
    assert manifest["counts"]["by_split"] == {"train": 5}
    assert not any("blackswan" in r["id"] for r in records)
    got = {(r["file"], r["index"], r["field"]) for r in rejects}
    assert got == {
        ("davis_text_annotations/Davis17_annot1.txt", 4, "line"),
        ("DAVIS/ImageSets/2017/train.txt", 2, "no-frames.video"),
        ("<merge>", 1, "id"),  # a second annot1 line for the same object: same exp_id, kept once
    }
    assert "duplicate id ref_davis17/train/classic-car/0" in next(r["reason"] for r in rejects if r["field"] == "id")


def test_convert_val(tmp_path: Path) -> None:
    _fixture(tmp_path / "raw")
    manifest, records, _ = convert("ref_davis17", tmp_path / "raw", tmp_path / "out", split="val")
    assert [r["id"] for r in records] == ["ref_davis17/val/blackswan/0"]
    assert manifest["counts"]["by_split"] == {"val": 1}
