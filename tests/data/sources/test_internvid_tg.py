"""internvid-tg (DisTime layout): `tgt` seconds / probed duration -> `<TEMP-NNN>` spans; bad spans rejected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.data.sources.helpers import convert, dump, tiny_video


def _rec(video: str, tgt: list[float], answer: str = "The event is depicted at <TIME_STAMP>.", **extra: Any) -> dict:
    query = "<video>\nGive you a textual query: 'A man waxes a ski.'. When does it occur? Please return the timestamp."
    return {
        "video": video,
        "tgt": tgt,
        "conversations": [{"from": "human", "value": query}, {"from": "gpt", "value": answer}],
        **extra,
    }


def _fixture(root: Path) -> None:
    tiny_video(root / "internvid" / "ab12.mp4", frames=40, fps=4)  # 10 s
    items = [
        _rec("internvid/ab12.mp4", [1.0, 5.0]),
        _rec("internvid/ab12.mp4", [0.0, 2.5, 2.5, 10.4], answer="First <TIME_STAMP>, then <TIME_STAMP>."),
        _rec("internvid/ab12.mp4", [3.0, 2.0]),
        _rec("internvid/ab12.mp4", [1.0, 15.0]),
        _rec("internvid/ab12.mp4", [1.0]),
        _rec("internvid/missing.mp4", [1.0, 2.0]),
        _rec("internvid/ab12.mp4", [1.0, 2.0], answer="No placeholder."),
        _rec("internvid/ab12.mp4", [30.0, 60.0], duration=120.0),
    ]
    dump(root / "internvid_86k_distime.json", items)
    (root / "extra.jsonl").write_text(json.dumps(_rec("internvid/ab12.mp4", [5.0, 10.0])) + "\n{broken\n")


def test_convert(tmp_path: Path) -> None:
    _fixture(tmp_path / "raw")
    manifest, records, rejects = convert("internvid_tg", tmp_path / "raw", tmp_path / "out")
    by_id = {r["id"]: r for r in records}
    one = by_id["internvid_tg/internvid_86k_distime/0"]
    assert one["task"] == "tvg" and one["video"] == "internvid/ab12.mp4"
    assert one["conversations"][1]["value"] == "The event is depicted at {<TEMP-010><TEMP-050>}."  # 1/10, 5/10
    assert one["conversations"][0]["value"].startswith("<video>\nGive you a textual query")
    assert (one["duration"], one["num_frames"], one["fps"], one["height"], one["width"]) == (10.0, 40, 4.0, 16, 16)
    assert one["meta"] == {"orig_id": "0", "tgt_seconds": [1.0, 5.0]}
    dvc = by_id["internvid_tg/internvid_86k_distime/1"]
    assert dvc["task"] == "dvc"  # the 10.4 s end overruns by less than the tolerance and is clipped
    assert dvc["conversations"][1]["value"] == "First {<TEMP-000><TEMP-025>}, then {<TEMP-025><TEMP-099>}."
    given = by_id["internvid_tg/internvid_86k_distime/7"]
    assert given["duration"] == 120.0 and "{<TEMP-025><TEMP-050>}" in given["conversations"][1]["value"]
    assert by_id["internvid_tg/extra/0"]["conversations"][1]["value"].endswith("{<TEMP-050><TEMP-099>}.")
    assert len(records) == 4
    got = {(r["file"], r["index"], r["field"]) for r in rejects}
    main = "internvid_86k_distime.json"
    assert got == {
        (main, 2, "tgt[0:2]"),
        (main, 3, "tgt[0:2]"),
        (main, 4, "tgt"),
        (main, 5, "video"),
        (main, 6, "conversations"),
        ("extra.jsonl", 1, "<json>"),
    }
