"""LLaVA-Video-178K: bucket folders of cap/oe/mc JSON lists -> qa/mcqa records, with the published sampling."""

from __future__ import annotations

from pathlib import Path

from tests.data.sources.helpers import convert, dump, tiny_video

BUCKET = "0_30_s_academic_v0_1"


def _turns(q: str, a: str) -> list[dict[str, str]]:
    return [{"from": "human", "value": f"<image>\n{q}"}, {"from": "gpt", "value": a}]


def _fixture(root: Path) -> None:
    for name in ("a", "b", "c", "d", "e"):
        tiny_video(root / "academic_source" / "Charades" / f"{name}.mp4", frames=2)
    tiny_video(root / "30_60_s_youtube_v0_1" / "liwei_youtube_videos" / "y.mp4", frames=2)  # extracted in place
    oe = [
        {
            "id": f"v{i}",
            "data_source": BUCKET,
            "video": f"academic_source/Charades/{n}.mp4",
            "conversations": _turns(f"What happens {i}?", f"Answer {i}."),
        }
        for i, n in enumerate("abcde")
    ]
    oe[1]["conversations"] += [{"from": "human", "value": "And then?"}, {"from": "gpt", "value": "It ends."}]
    oe.append({"id": "bad", "video": "academic_source/Charades/a.mp4"})  # no conversations
    oe.append({"id": "gone", "video": "academic_source/Charades/zz.mp4", "conversations": _turns("q", "a")})
    oe.append({"id": "odd", "video": "academic_source/Charades/a.mp4", "conversations": _turns("q", "a"), "x": 1})
    dump(root / BUCKET / f"{BUCKET.replace('_v0_1', '')}_oe_v0_1_qa_processed.json", oe)
    mc = [
        {
            "id": "v0",
            "data_source": BUCKET,
            "video": "academic_source/Charades/a.mp4",
            "conversations": _turns(
                "What does the person pick up?\nA. A cup\nB. A book\nPlease respond with only the "
                "letter of the correct answer.",
                "B.",
            ),
        },
        {
            "id": "v1",
            "data_source": BUCKET,
            "video": "academic_source/Charades/b.mp4",
            "conversations": [{"from": "gpt", "value": "A."}, {"from": "human", "value": "<image>\nQ?"}],
        },
    ]
    dump(root / BUCKET / "0_30_s_academic_mc_v0_1_qa_processed.json", mc)
    dump(root / BUCKET / f"{BUCKET}_cap_processed.json", [{"id": "c", "video": "a.mp4", "conversations": []}])
    yt = [
        {
            "id": "y",
            "data_source": "30_60_s_youtube_v0_1",
            "video": "liwei_youtube_videos/y.mp4",
            "conversations": _turns("Describe.", "A road."),
        }
    ]
    dump(root / "30_60_s_youtube_v0_1" / "30_60_s_youtube_oe_v0_1_qa_processed.json", yt)
    (root / "30_60_s_youtube_v0_1" / "truncated_mc_qa.json").write_text(
        '[{"id": "t", "video": "liwei_youtube_videos/y.mp4", "conversations": [{"from": "human", "value": "Q"}, '
        '{"from": "gpt", "value": "A"}]}, {"id": "u", "vid'
    )
    dump(root / "30_60_s_youtube_v0_1" / "notes.json", [])


def test_convert_fields_and_rejects(tmp_path: Path) -> None:
    _fixture(tmp_path / "raw")
    manifest, records, rejects = convert("llava_video_178k", tmp_path / "raw", tmp_path / "out", open_ended=None)
    by_id = {r["id"]: r for r in records}
    mc = by_id["llava_video_178k/0_30_s_academic_mc_v0_1_qa_processed/0"]
    assert mc["task"] == "mcqa" and mc["source"] == "llava_video_178k"
    assert mc["video"] == "academic_source/Charades/a.mp4"
    assert mc["conversations"][0]["value"].startswith("<video>\nWhat does the person pick up?\nA. A cup")
    assert "<image>" not in mc["conversations"][0]["value"]
    assert mc["conversations"][1] == {"from": "gpt", "value": "B."}
    assert mc["meta"] == {"orig_id": "v0", "data_source": BUCKET}
    multi = by_id["llava_video_178k/0_30_s_academic_oe_v0_1_qa_processed/1"]
    assert multi["task"] == "qa" and len(multi["conversations"]) == 4
    yt = by_id["llava_video_178k/30_60_s_youtube_oe_v0_1_qa_processed/0"]
    assert yt["video"] == "30_60_s_youtube_v0_1/liwei_youtube_videos/y.mp4"  # found inside the bucket folder
    assert by_id["llava_video_178k/truncated_mc_qa/0"]["task"] == "mcqa"
    assert manifest["counts"]["by_task"] == {"mcqa": 2, "qa": 6}
    assert not any("cap_processed" in r["id"] for r in records)  # captions are not in the UFVideo mix
    got = {(r["file"].rsplit("/", 1)[-1], r["index"], r["field"]) for r in rejects}
    oe_file = "0_30_s_academic_oe_v0_1_qa_processed.json"
    assert got == {
        (oe_file, 5, "conversations"),
        (oe_file, 6, "video"),
        (oe_file, 7, "x"),
        ("0_30_s_academic_mc_v0_1_qa_processed.json", 1, "conversations[0].from"),
        ("truncated_mc_qa.json", 1, "<json>"),
        ("notes.json", 0, "<file>"),
    }
    assert all(r["source"] == "llava_video_178k" and r["reason"] for r in rejects)
    assert "missing video" in next(r["reason"] for r in rejects if r["field"] == "video")


def test_published_sampling_is_seeded(tmp_path: Path) -> None:
    _fixture(tmp_path / "raw")
    first, records, _ = convert("llava_video_178k", tmp_path / "raw", tmp_path / "a", open_ended=3)
    assert first["counts"]["by_task"] == {"mcqa": 2, "qa": 3}  # 3 of the 6 open-ended, every multiple-choice
    assert first["recipe"]["stats"]["converted"] == {"multi_choice": 2, "open_ended": 6}
    again, _, _ = convert("llava_video_178k", tmp_path / "raw", tmp_path / "b", workers=2, open_ended=3)
    assert again["digest"] == first["digest"]  # independent of the worker count
    picks = set()
    for seed in range(6):
        cfg_out = tmp_path / f"s{seed}"
        from ufvideo.data.convert import ConvertConfig, run

        m = run(
            ConvertConfig("llava_video_178k", str(tmp_path / "raw"), str(cfg_out), seed=seed, options={"open_ended": 3})
        )
        picks.add(m["digest"])
    assert len(picks) > 1
