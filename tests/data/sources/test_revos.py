"""ReVOS: one mask_dict.json for all splits, per-split meta files, type_id 0/1 kept and 2 skipped."""

from __future__ import annotations

from pathlib import Path

from tests.data.sources.helpers import convert, dump, jpeg_frames
from tests.data.sources.test_mevis import FRAMES, S, _masks


def test_revos_type_ids(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    jpeg_frames(root / "JPEGImages" / "MOSE" / "0a7a", FRAMES, S)
    dump(root / "mask_dict.json", _masks())
    dump(root / "mask_dict_foreground.json", {})
    exp = {
        "0": {"exp": "the car that moves first", "obj_id": [1], "anno_id": [7], "type_id": 0},
        "1": {"exp": "which animal would pull a cart?", "obj_id": [2], "anno_id": [6, 8], "type_id": 1},
        "2": {"exp": "the unicorn", "obj_id": [], "anno_id": [], "type_id": 2},
        "3": {"exp": "odd", "obj_id": [1], "anno_id": [7], "type_id": 5},
    }
    video = {"height": 24, "width": 32, "frames": FRAMES, "expressions": exp}
    dump(root / "meta_expressions_train_.json", {"videos": {"MOSE/0a7a": video}})
    manifest, records, rejects = convert("revos", root, tmp_path / "out")
    assert [r["id"] for r in records] == ["revos/train/MOSE/0a7a/0", "revos/train/MOSE/0a7a/1"]
    assert [r["meta"]["type_id"] for r in records] == [0, 1]
    assert records[0]["video"][0] == "JPEGImages/MOSE/0a7a/00000.jpg"
    assert manifest["recipe"]["stats"]["skipped"] == {"type_id 2: no-target expression (nothing to segment)": 1}
    assert [(r["field"], r["index"]) for r in rejects] == [("videos[MOSE/0a7a].expressions[3].type_id", 0)]
