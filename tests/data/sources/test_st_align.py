"""ST-Align: `<TEMP-INPUT/OUTPUT>` placeholders + `variables` in [0, 1] -> `<TEMP-NNN>`; stage and task rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.data.sources.helpers import convert, dump, tiny_video


def _rec(q: str, a: str, video: str = "vid/a.mp4", **extra: Any) -> dict[str, Any]:
    turns = [{"from": "human", "value": f"<image>\n{q}"}, {"from": "gpt", "value": a}]
    return {"id": extra.pop("id", "x"), "video": video, "conversations": turns, **extra}


def _vars(inputs: list[float] = (), outputs: list[float] = (), **spatial: list[float]) -> dict[str, list[float]]:
    keys = (
        "spatial_height_input_locations",
        "spatial_height_output_locations",
        "spatial_width_input_locations",
        "spatial_width_output_locations",
    )
    return {
        "temporal_input_locations": list(inputs),
        "temporal_output_locations": list(outputs),
        **{k: spatial.get(k, []) for k in keys},
    }


def _fixture(root: Path) -> None:
    tiny_video(root / "vid" / "a.mp4", frames=2)
    tiny_video(root / "videos" / "internvid" / "b.mp4", frames=2)
    stage2 = [
        _rec(
            "When does 'a man opens the fridge' happen?",
            "It happens at {<TEMP-OUTPUT><TEMP-OUTPUT>}.",
            id="vtime_1",
            type="tvg",
            variables=_vars(outputs=[0.12, 0.47]),
        ),
        _rec("Describe the video.", "A kitchen.", type="caption"),  # general data of stage 2: not in the mix
        _rec(
            "Localize all events.",
            "{<TEMP-OUTPUT>, <TEMP-OUTPUT>}, a man enters. {<TEMP-OUTPUT>, <TEMP-OUTPUT>}, "
            "he sits. {<TEMP-OUTPUT>,<TEMP-OUTPUT>}, he leaves.",
            type="dvc",
            variables=_vars(outputs=[0.0, 0.2, 0.2, 0.5, 0.5, 1.0]),
        ),
        _rec("When?", "At {<TEMP-OUTPUT><TEMP-OUTPUT>}.", variables=_vars(outputs=[0.3])),  # one value short
        _rec("When?", "At {<TEMP-OUTPUT><TEMP-OUTPUT>}.", variables=_vars(outputs=[0.3, 0.4, 0.5])),  # one extra
    ]
    dump(root / "stage2" / "vtime.json", stage2)
    stage3 = [
        _rec("Why did the boy cry?", "He fell.", id="iq1", type="videoqa"),
        _rec("What does he hold?\n(A) a cup\n(B) a pen\nAnswer with the letter.", "B", type="videoqa"),
        _rec("Describe the video in detail.", "A boy plays.", type="video_caption"),
        _rec(
            "What happens during {<TEMP-INPUT><TEMP-INPUT>}?",
            "He waves.",
            type="tr",
            variables=_vars(inputs=[0.5, 0.75]),
            meta={"split": [2.0, 10.0]},
        ),
        _rec(
            "Where is the cup at <TEMP-INPUT>?",
            "At [<WIDTH-OUTPUT>, <HEIGHT-OUTPUT>].",
            type="stvg",
            variables=_vars(inputs=[0.2], spatial_width_output_locations=[0.3], spatial_height_output_locations=[0.4]),
        ),
        _rec(
            "When?",
            "{<TEMP-OUTPUT><TEMP-OUTPUT>}",
            video="b.mp4",
            source="internvid",
            variables=_vars(outputs=[0.0, 0.1]),
        ),
        _rec("Q", "A", video="vid/missing.mp4"),
        _rec("Q", "A", variables={"temporal_locations": [0.1]}),
        _rec("Q", "A", meta={"split": [5.0, 1.0]}),
        {"id": "img", "image": "coco/1.jpg", "conversations": [{"from": "human", "value": "<image>\nQ"}]},
    ]
    dump(root / "stage3" / "intentqa_train.json", stage3)


def test_convert_fields(tmp_path: Path) -> None:
    _fixture(tmp_path / "raw")
    manifest, records, rejects = convert(
        "st_align", tmp_path / "raw", tmp_path / "out", source_dirs={"internvid": "videos/internvid"}
    )
    by_id = {r["id"]: r for r in records}
    tvg = by_id["st_align/stage2/vtime/0"]
    assert tvg["task"] == "tvg" and tvg["video"] == "vid/a.mp4"
    assert tvg["conversations"] == [
        {"from": "human", "value": "<video>\nWhen does 'a man opens the fridge' happen?"},
        {"from": "gpt", "value": "It happens at {<TEMP-012><TEMP-047>}."},
    ]
    assert tvg["meta"] == {"orig_id": "vtime_1", "type": "tvg", "stage": "stage2", "video_source": None}
    dvc = by_id["st_align/stage2/vtime/2"]
    assert dvc["task"] == "dvc"
    assert dvc["conversations"][1]["value"] == (
        "{<TEMP-000><TEMP-020>}, a man enters. {<TEMP-020><TEMP-050>}, he sits. {<TEMP-050><TEMP-099>}, he leaves."
    )
    prefix = "st_align/stage3/intentqa_train/"
    assert [by_id[prefix + str(i)]["task"] for i in range(4)] == ["qa", "mcqa", "caption", "caption"]
    tr = by_id[prefix + "3"]
    assert tr["conversations"][0]["value"] == "<video>\nWhat happens during {<TEMP-050><TEMP-074>}?"
    assert tr["clip"] == [2.0, 10.0]
    assert by_id[prefix + "5"]["video"] == "videos/internvid/b.mp4"
    assert len(records) == 7
    stats = manifest["recipe"]["stats"]
    assert stats["skipped"] == {
        "general record of stage2 (not in the UFVideo mixture)": 1,
        "spatial task (not in the UFVideo mixture)": 1,
        "image record (not in the UFVideo mixture)": 1,
    }
    assert stats["converted"] == {"general": 3, "temporal": 4}
    got = {(r["file"], r["index"], r["field"]) for r in rejects}
    assert got == {
        ("stage2/vtime.json", 3, "variables.temporal_output_locations"),
        ("stage2/vtime.json", 4, "variables.temporal_output_locations"),
        ("stage3/intentqa_train.json", 6, "video"),
        ("stage3/intentqa_train.json", 7, "variables"),
        ("stage3/intentqa_train.json", 8, "meta.split"),
    }


def test_sampling_and_stage_choice(tmp_path: Path) -> None:
    _fixture(tmp_path / "raw")
    manifest, records, _ = convert(
        "st_align", tmp_path / "raw", tmp_path / "out", temporal=2, general_stages=["stage2", "stage3"]
    )
    assert manifest["recipe"]["stats"]["kept"] == {"general": 4, "temporal": 2}
    assert any(r["id"] == "st_align/stage2/vtime/1" for r in records)
