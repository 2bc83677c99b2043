"""VideoRefer-700K: single-frame / multi-frame modes, mask normalisation, published sampling and rejects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as coco

from tests.data.sources.helpers import box, convert, dump, mask_of, rle, tiny_video

S = (16, 16)


def _rec(q: str, a: str, annotation: list[dict[str, Any]], video: str = "videos/a.mp4", **extra: Any) -> dict:
    turns = [{"from": "human", "value": f"<video>\n{q}"}, {"from": "gpt", "value": a}]
    return {"id": extra.pop("id", 0), "video": video, "conversations": turns, "annotation": annotation, **extra}


def _seg(value: Any) -> dict[str, Any]:
    return {"segmentation": value}


def _uncompressed(mask: np.ndarray) -> dict[str, Any]:
    counts, current, run = [], False, 0
    for pixel in mask.flatten(order="F"):
        if bool(pixel) != current:
            counts.append(run)
            current, run = not current, 0
        run += 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": counts}


def _fixture(root: Path) -> None:
    tiny_video(root / "videos" / "a.mp4", frames=8, size=S)
    (root / "videos" / "frames" / "vid1").mkdir(parents=True)
    q = "Please give a detailed description of the highlighted object [<region>] in the video."
    detailed = [
        _rec(
            q,
            "A dog runs.",
            [{"0": _seg(rle(S, 0, 0, 4, 4)), "3": _seg(rle(S, 1, 1, 5, 5)), "5": _seg(rle(S, 2, 2, 6, 6))}],
            height=16,
            width=16,
        ),
        _rec(
            q, "A cat sits.", [{"2": _seg([[0, 0, 8, 0, 8, 8, 0, 8]]), "4": _seg(None), "6": None}], height=16, width=16
        ),
        _rec(q, "Bad size.", [{"0": _seg(rle((8, 8), 0, 0, 2, 2))}], height=16, width=16),
        _rec(q, "No size.", [{"0": _seg([[0, 0, 4, 0, 4, 4]])}]),
        _rec(q, "Gone.", [{"0": _seg(rle(S, 0, 0, 4, 4))}], video="videos/missing.mp4"),
    ]
    dump(root / "videorefer-detailed-caption-125k.json", detailed)
    short = [_rec("What is [<region>]?", f"Object {i}.", [{"1": _seg(rle(S, i, i, 9, 9))}]) for i in range(3)]
    short.append(_rec("Compare [<region>] and [<region>].", "Two.", [{"1": _seg(rle(S, 0, 0, 3, 3))}]))
    dump(root / "videorefer-short-caption-500k.json", short)
    qa = [
        _rec(
            "What is <object0><region> doing to <object1><region>?",
            "Feeding it.",
            [
                {"0": _seg(_uncompressed(box(S, 0, 0, 6, 6))), "4": _seg(rle(S, 0, 0, 7, 7))},
                {"4": _seg(rle(S, 8, 8, 12, 12))},
            ],
            video="videos/frames/vid1",
        ),
        _rec("Where does [<region>] go?", "Left.", [{str(k): _seg(rle(S, 0, 0, 3, 3)) for k in range(4)}]),
        _rec("Is [<region>] moving?", "Yes.", [{"2": _seg(rle(S, 0, 0, 3, 3))}], video="a.mp4"),  # under videos/
    ]
    dump(root / "videorefer-qa-75k.json", qa)


def test_modes_masks_and_rejects(tmp_path: Path) -> None:
    _fixture(tmp_path / "raw")
    manifest, records, rejects = convert(
        "videorefer_700k", tmp_path / "raw", tmp_path / "out", single_short=None, max_frames=3
    )
    by_id = {r["id"]: r for r in records}
    single = by_id["videorefer_700k/detailed/0/single"]
    multi = by_id["videorefer_700k/detailed/0/multi"]
    assert single["task"] == multi["task"] == "referring" and single["video"] == "videos/a.mp4"
    assert single["region_mode"] == "single" and multi["region_mode"] == "multi"
    assert single["conversations"][0]["value"].count("<region>") == 1
    (frame,) = single["regions"][0]
    assert frame in {"0", "3", "5"} and single["regions"][0][frame] == multi["regions"][0][frame]
    assert list(multi["regions"][0]) == ["0", "3", "5"]
    assert np.array_equal(mask_of(multi["regions"][0]["3"], S), box(S, 1, 1, 5, 5))
    assert (single["height"], single["width"]) == S and single["meta"] == {"orig_id": "0", "kind": "detailed"}
    cat = by_id["videorefer_700k/detailed/1/multi"]
    assert list(cat["regions"][0]) == ["2"]  # null entries dropped
    polygon = coco.decode(coco.merge(coco.frPyObjects([[0, 0, 8, 0, 8, 8, 0, 8]], 16, 16))).astype(bool)
    assert np.array_equal(mask_of(cat["regions"][0]["2"], S), polygon)
    qa = by_id["videorefer_700k/qa/0/multi"]
    assert qa["video"] == "videos/frames/vid1" and len(qa["regions"]) == 2
    assert isinstance(qa["regions"][0]["0"]["counts"], str)  # uncompressed input is stored compressed
    assert np.array_equal(mask_of(qa["regions"][0]["0"], S), box(S, 0, 0, 6, 6))
    assert not any(r["id"].startswith("videorefer_700k/qa/") and r["region_mode"] == "single" for r in records)
    assert by_id["videorefer_700k/qa/2/multi"]["video"] == "videos/a.mp4"
    assert manifest["recipe"]["stats"]["kept"] == {
        "multi_detailed": 2,
        "multi_qa": 2,
        "single_detailed": 2,
        "single_short": 3,
    }
    got = {(r["file"].split("-")[1], r["index"], r["field"]) for r in rejects}
    assert got == {
        ("detailed", 2, "annotation[0]['0'].size"),
        ("detailed", 3, "annotation[0]['0']"),
        ("detailed", 4, "video"),
        ("short", 3, "regions"),
        ("qa", 1, "annotation"),
    }


def test_published_sampling(tmp_path: Path) -> None:
    _fixture(tmp_path / "raw")
    manifest, records, _ = convert(
        "videorefer_700k", tmp_path / "raw", tmp_path / "a", single_short=2, multi_detailed=0
    )
    assert manifest["recipe"]["stats"]["kept"] == {"multi_qa": 3, "single_detailed": 2, "single_short": 2}
    again, _, _ = convert("videorefer_700k", tmp_path / "raw", tmp_path / "b", single_short=2, multi_detailed=0)
    assert again["digest"] == manifest["digest"]
