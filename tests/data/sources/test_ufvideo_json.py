"""Public UFVideo / VideoRefer training JSON: one record of every MODEL.md 4.4 kind, field by field, and rejects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.data.sources.helpers import box, convert, dump, jpeg_frames, mask_of, rle, tiny_video
from ufvideo.data.schema import record_errors
from ufvideo.data.sources import NAMES, get_source
from ufvideo.data.sources.base import RVOS_ANSWERS, Context, rvos_conversation
from ufvideo.data.sources.ufvideo_json import text_task

S = (16, 16)
FRAMES = [f"{k:05d}" for k in range(6)]


def _turns(q: str, a: str) -> list[dict[str, str]]:
    return [{"from": "human", "value": q}, {"from": "gpt", "value": a}]


def _seg(y0: int, x0: int = 0) -> dict[str, Any]:
    return {"segmentation": rle(S, y0, x0, y0 + 4, x0 + 4)}


def _unibench(task: str, frames: dict[str, Any], q: str, a: str, **extra: Any) -> dict[str, Any]:
    dialogue = _turns(f"<video>\n{q}", a) if task == "task1" else [_turns(f"<video>\n{q}", a)]
    record = {"seg": True, "unibench": task, "video": "videos/a.mp4", "annotation": [frames], **extra}
    return {**record, "conversations": dialogue}


def _main_records() -> list[Any]:
    frames = [f"frames/vid1/{name}.jpg" for name in FRAMES]
    mc = "What does she pick up?\n(A) a bottle (B) an egg (C) a knife\nAnswer with the option's letter."
    region = "There are 2 objects in the video: object_1: [<region>], object_2: [<region>]. What is object_1 doing?"
    detail = "Please give a detailed description of the highlighted object [<region>] in the video."
    one = "There is 1 objects in the video: object_1: [<region>]. What is it doing? And please generate the mask?"
    return [
        {"id": "q1", "video": "videos/a.mp4", "conversations": _turns("What happens? <video>", "A dog runs (A).")},
        {"video": "videos/a.mp4", "conversations": _turns(f"<video>\n{mc}", "A"), "data_source": "llava"},
        {
            "video": "videos/a.mp4",
            "height": 16,
            "width": 16,
            "annotation": [{"3": _seg(1), "0": _seg(0)}, {"3": {"segmentation": [[8, 8, 15, 8, 15, 15, 8, 15]]}}],
            "conversations": _turns(f"<video>\n{region}", "object_1 is feeding object_2."),
        },
        {
            "video": "videos/a.mp4",
            "new_id": True,
            "annotation": [{"1": {"segmentation": None}, "5": _seg(5), "2": _seg(2)}],
            "conversations": _turns(f"<video>\n{detail}", "A brown dog runs."),
        },
        {
            "seg": True,
            "video": frames,
            "segmentations": [rle(S, 0, 0, 3, 3), None, rle(S, 2, 2, 6, 6), rle(S, 1, 1, 4, 4), None, None],
            "no_none_frame_idx": [0, 2, 3],
            "conversations": ["The bird  flying away first."],
        },
        _unibench(
            "task1",
            {"4": _seg(4), "0": _seg(0), "2": _seg(2)},
            one,
            "It walks. The mask is [SEG].",
            frame_list=[0, 2, 4],
        ),
        _unibench(
            "task2",
            {"1": _seg(1), "3": _seg(3), "5": _seg(5)},
            "Who sings?",
            "A man. Mask: [SEG].",
            frame_idx=[3, 0, 1],
        ),
        _unibench("task3", {"2": _seg(2)}, "When is he?", "During {<TEMP-020><TEMP-064>}. [SEG].", frame_idx=[2]),
        {
            "video": "videos/a.mp4",
            "conversations": _turns("<video>\nWhen does the door open?", "{<TEMP-018><TEMP-047>}"),
        },
        {
            "video": "videos/a.mp4",
            "conversations": _turns("<video>\nList events.", "{<TEMP-000><TEMP-010>} a, {<TEMP-020><TEMP-099>} b"),
        },
        # rejects from here on (index 10)
        {"image": "coco/1.jpg", "conversations": _turns("<image>\nWhat is it?", "A cat.")},
        {"video": "videos/a.mp4", "conversations": _turns("<image>\nWhat is it?", "A cat.")},
        {"video": "videos/a.mp4"},
        {
            "video": "videos/a.mp4",
            "annotation": [{"0": {"segmentation": [[0, 0, 4, 0, 4, 4]]}}],
            "conversations": _turns(detail, "x"),
        },
        {
            "video": "videos/a.mp4",
            "new_id": 1,
            "annotation": [{"0": _seg(0)}, {"1": _seg(1)}],
            "conversations": _turns(detail, "x"),
        },
        {
            "seg": True,
            "video": frames,
            "segmentations": [None, rle(S, 0, 0, 3, 3)] + [None] * 4,
            "no_none_frame_idx": [0],
            "conversations": ["x"],
        },
        {"seg": True, "unibench": "task9", "video": "videos/a.mp4", "conversations": []},
        {"video": "videos/missing.mp4", "conversations": _turns("<video>\nQ?", "A.")},
        "not an object",
        _unibench(
            "task1", {"0": _seg(0), "2": _seg(2)}, one.replace("1 objects", "2"), "[SEG] [SEG]", frame_list=[0, 2]
        )
        | {"annotation": [{"0": _seg(0), "2": _seg(2)}, {"2": _seg(3)}]},
        {
            "video": "videos/a.mp4",
            "annotation": [{str(k): _seg(k) for k in range(5)}],
            "conversations": _turns(detail, "x"),
        },
        {"video": "videos/a.mp4", "conversations": _turns("<video>\nQ?", "A."), "fps": 2},
    ]


REJECTS = {
    10: "image",
    11: "conversations[0].value",
    12: "conversations",
    13: "annotation[0]['0']",
    14: "annotation",
    15: "no_none_frame_idx",
    16: "unibench",
    17: "video",
    18: "<record>",
    19: "annotation[1]",
    20: "annotation",
    21: "fps",
}


def _fixture(root: Path) -> None:
    tiny_video(root / "videos" / "a.mp4", frames=8, size=S)
    jpeg_frames(root / "frames" / "vid1", FRAMES, S)
    dump(root / "ufvideo_train.json", _main_records())
    (root / "extra.json").write_text('[{"video": "videos/a.mp4", "conversations": [{"from": "human", "value": "Q"}, ')


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict[str, dict], list[dict]]:
    tmp = tmp_path_factory.mktemp("ufvideo_json")
    _fixture(tmp / "raw")
    manifest, records, rejects = convert("ufvideo_json", tmp / "raw", tmp / "out", max_frames=4)
    for record in records:
        assert record_errors(record) == [], record["id"]
    return tmp / "raw", manifest, {r["id"].rsplit("/", 1)[1]: r for r in records}, rejects


def test_registered() -> None:
    assert "ufvideo_json" in NAMES and get_source("ufvideo_json").name == "ufvideo_json"


def test_video_qa_and_temporal(converted) -> None:
    _, _, by, _ = converted
    qa, mc, tvg, dvc = by["0"], by["1"], by["8"], by["9"]
    assert qa["id"] == "ufvideo_json/ufvideo_train/0" and qa["source"] == "ufvideo_json" and qa["task"] == "qa"
    assert qa["video"] == "videos/a.mp4" and qa["meta"] == {"kind": "text", "orig_id": "q1"}
    assert qa["conversations"] == _turns("<video>\nWhat happens?", "A dog runs (A).")  # <video> moved to the head
    assert set(qa) == {"id", "source", "task", "video", "conversations", "meta"}
    assert mc["task"] == "mcqa" and mc["meta"] == {"kind": "text", "orig_id": "1", "data_source": "llava"}
    assert tvg["task"] == "tvg" and tvg["conversations"][1]["value"] == "{<TEMP-018><TEMP-047>}"
    assert dvc["task"] == "dvc"


@pytest.mark.parametrize(
    ("turns", "task"),
    [
        (_turns("Which? (A) red (B) blue", "B"), "mcqa"),
        (_turns("Which?\nA. red\nB. blue", "(A)"), "mcqa"),
        (_turns("Which? (A) red (B) blue", "Blue, I think."), "qa"),
        (_turns("Is (A) here?", "A"), "qa"),
        (_turns("When?", "At {<TEMP-001><TEMP-009>}.") + _turns("And then?", "{<TEMP-010><TEMP-020>}"), "tvg"),
        (_turns("Events?", "<TEMP-000><TEMP-010> a; <TEMP-020><TEMP-030> b"), "dvc"),
        (_turns("What happens in {<TEMP-001><TEMP-009>}?", "A jump."), "caption"),
    ],
)
def test_text_task(turns: list[dict[str, str]], task: str) -> None:
    assert text_task(turns) == task


def test_referring_modes(converted) -> None:
    _, _, by, _ = converted
    multi, single = by["2"], by["3"]
    assert multi["task"] == single["task"] == "referring"
    assert multi["region_mode"] == "multi" and (multi["height"], multi["width"]) == S
    assert [list(r) for r in multi["regions"]] == [["0", "3"], ["3"]]
    assert np.array_equal(mask_of(multi["regions"][0]["3"], S), box(S, 1, 0, 5, 4))
    polygon = mask_of(multi["regions"][1]["3"], S)
    assert polygon[10, 10] and not polygon[2, 2]  # the polygon became a compressed RLE
    assert isinstance(multi["regions"][1]["3"]["counts"], str)
    assert single["region_mode"] == "single" and list(single["regions"][0]) == ["5"]  # first non-null key, JSON order
    assert np.array_equal(mask_of(single["regions"][0]["5"], S), box(S, 5, 0, 9, 4))


def test_rvos_record(converted) -> None:
    raw, _, by, _ = converted
    rvos = by["4"]
    assert rvos["task"] == "rvos" and rvos["video"] == [f"frames/vid1/{n}.jpg" for n in FRAMES]
    assert rvos["num_frames"] == 6 and (rvos["height"], rvos["width"]) == S
    (target,) = rvos["targets"]
    assert list(target) == [str(k) for k in range(6)] and [k for k, m in target.items() if m is None] == ["1", "4", "5"]
    assert np.array_equal(mask_of(target["2"], S), box(S, 2, 2, 6, 6))
    ctx = Context("ufvideo_json", raw, "train", "train", 0, None, raw)
    assert rvos["conversations"] == rvos_conversation("The bird  flying away first.", ctx.rng(rvos["id"]))
    assert "the bird flying away first" in rvos["conversations"][0]["value"]
    assert rvos["conversations"][1]["value"] in RVOS_ANSWERS
    assert rvos["meta"]["expression"] == "The bird  flying away first." and rvos["meta"]["kind"] == "rvos"


def test_unibench_tasks(converted) -> None:
    _, _, by, _ = converted
    t1, t2, t3 = by["5"], by["6"], by["7"]
    assert (t1["task"], t2["task"], t3["task"]) == ("pixrqa", "pixhqa", "pixtrqa")
    assert (
        t1["regions"] == [{"0": _seg(0)["segmentation"]}] and t1["region_mode"] == "single"
    )  # earliest, not set order
    assert t1["targets"] == [{"2": _seg(2)["segmentation"], "4": _seg(4)["segmentation"]}]
    assert t1["conversations"][1]["value"].endswith("[SEG].") and t1["video"] == "videos/a.mp4"
    assert t2["targets"] == [{"0": None, "1": _seg(1)["segmentation"], "3": _seg(3)["segmentation"]}]
    assert "regions" not in t2 and t2["conversations"][0]["value"] == "<video>\nWho sings?"  # first nested dialogue
    assert t3["targets"] == [{"2": _seg(2)["segmentation"]}] and "<TEMP-020>" in t3["conversations"][1]["value"]


def test_rejects_name_file_index_field(converted) -> None:
    _, manifest, by, rejects = converted
    main = {r["index"]: r for r in rejects if r["file"] == "ufvideo_train.json"}
    assert {i: r["field"] for i, r in main.items()} == REJECTS
    assert "image branch" in main[10]["reason"] and "image branch" in main[11]["reason"]
    assert "exactly one object" in main[14]["reason"] and "max_frames=4" in main[20]["reason"]
    assert [(r["file"], r["field"]) for r in rejects if r["file"] != "ufvideo_train.json"] == [("extra.json", "<json>")]
    assert sorted(by) == [str(k) for k in range(10)]
    assert manifest["recipe"]["stats"]["kept"] == {"ufvideo_train": 10}


def test_one_file_and_sampling(tmp_path: Path) -> None:
    _fixture(tmp_path / "raw")
    manifest, records, rejects = convert(
        "ufvideo_json", tmp_path / "raw", tmp_path / "out", files=["ufvideo_train.json"], sample={"ufvideo_train": 3}
    )
    assert len(records) == 3 and all(r["id"].startswith("ufvideo_json/ufvideo_train/") for r in records)
    assert all(r["file"] == "ufvideo_train.json" for r in rejects)
    assert manifest["recipe"]["stats"]["converted"] == {"ufvideo_train": 11}  # max_frames default 150 keeps #20
