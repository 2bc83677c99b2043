"""VideoRefer-Bench-D and -Q: loaders on fixtures in the HF layout, single vs multi-frame regions, exact
prompts, the public letter parser and per-type accuracy; Bench-D without a judge reports null metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.eval.benchmarks.helpers import dump, frames, rle_box, text
from ufvideo.errors import DataError
from ufvideo.eval.benchmarks import get_benchmark
from ufvideo.eval.benchmarks.videorefer import (
    videorefer_d_parse,
    videorefer_d_score,
    videorefer_q_parse,
    videorefer_q_score,
)
from ufvideo.eval.registry import ScoreContext

H, W = 16, 24


def _q_fixture(root: Path) -> Path:
    vr = root / "VideoRefer-Bench"
    frames(vr / "DAVIS/JPEGImages/480p/aerobatics", ["00001", "00000", "00002"], H, W)
    frames(vr / "MeViS/valid_u/JPEGImages/0ab4afe7fb46", ["00000", "00001"], H, W)
    annotation = [{"0": {"segmentation": rle_box(H, W, 0, 4, 0, 4)}, "2": {"segmentation": rle_box(H, W, 2, 6, 2, 6)}}]
    dump(
        vr / "VideoRefer-Bench-Q.json",
        [
            {
                "id": 0,
                "video": "DAVIS/JPEGImages/480p/aerobatics",
                "Question": "What is <object3><region> not wearing?",
                "type": "Basic Questions",
                "options": ["(A) A helmet", "(B) A hat", "(C) Sunglasses", "(D) A watch"],
                "Answer": "(A) A helmet",
                "frame_idx": "2",
                "annotation": annotation,
            },
            {
                "id": 1,
                "video": "MeViS/valid_u/JPEGImages/0ab4afe7fb46",
                "Question": "Does <object0><region> move before <object1><region>?",
                "type": "Sequential Questions",
                "options": ["(A) Yes", "(B) No"],
                "Answer": "(B) No",
                "frame_idx": "1",
                "annotation": [
                    {"1": {"segmentation": rle_box(H, W, 0, 2, 0, 2)}},
                    {
                        "0": {"segmentation": rle_box(H, W, 5, 9, 5, 9)},
                        "1": {"segmentation": rle_box(H, W, 5, 9, 6, 10)},
                    },
                ],
            },
        ],
    )
    return root


def test_q_loader_single_and_multi_regions(tmp_path: Path) -> None:
    root = _q_fixture(tmp_path)
    single = list(get_benchmark("videorefer_q_single").samples(root, "single"))
    multi = list(get_benchmark("videorefer_q_single").samples(root, "multi"))
    assert [s.id for s in single] == ["0", "1"]
    assert [Path(p).name for p in single[0].video] == ["00000.jpg", "00001.jpg", "00002.jpg"]
    assert list(single[0].regions[0]) == [2] and single[0].region_mode == "single"
    assert list(multi[0].regions[0]) == [0, 2] and multi[0].region_mode == "multi"
    assert [list(r) for r in single[1].regions] == [[1], [1]]
    assert [list(r) for r in multi[1].regions] == [[1], [0, 1]]


def test_q_prompt_snapshot(tmp_path: Path) -> None:
    sample = next(get_benchmark("videorefer_q_single").samples(_q_fixture(tmp_path), "single"))
    assert sample.conversation == [
        {
            "from": "human",
            "value": "<video>\nWhat is <object3>[<region>] not wearing? (A) A helmet (B) A hat (C) Sunglasses "
            "(D) A watch. Answer with the option's letter from the given choices directly.",
        }
    ]


def test_q_region_count_must_match_the_question(tmp_path: Path) -> None:
    root = _q_fixture(tmp_path)
    path = root / "VideoRefer-Bench/VideoRefer-Bench-Q.json"
    path.write_text(path.read_text().replace("<object3><region>", "<object3>"))
    with pytest.raises(DataError, match=r"VideoRefer-Bench-Q.json\[0\]: 0 <region> tags, 1 objects"):
        list(get_benchmark("videorefer_q_single").samples(root, "single"))


def test_q_parse_and_score(tmp_path: Path) -> None:
    a, b = list(get_benchmark("videorefer_q_single").samples(_q_fixture(tmp_path), "single"))
    rows = [videorefer_q_parse(text(a.id, "(A) A helmet"), a), videorefer_q_parse(text(b.id, "b"), b)]
    assert [r["pred"] for r in rows] == ["A", "b"]
    scores = videorefer_q_score(rows, ScoreContext())
    assert scores.metrics == {"accuracy": 100.0, "accuracy_basic": 100.0, "accuracy_sequential": 100.0}
    rows[1] = videorefer_q_parse(text(b.id, "..."), b)  # the public script would crash: counted wrong, noted
    scores = videorefer_q_score(rows, ScoreContext())
    assert scores.metrics["accuracy"] == 50.0 and scores.metrics["accuracy_sequential"] == 0.0
    assert any("crash" in n for n in scores.notes)


def _d_fixture(root: Path) -> Path:
    ann = [{"3": {"segmentation": rle_box(H, W, 1, 5, 1, 5)}, "9": {"segmentation": rle_box(H, W, 2, 6, 2, 6)}}]
    dump(
        root / "VideoRefer-Bench/VideoRefer-Bench-D.json",
        [
            {
                "id": 7,
                "video": "abc_0:00:01.000_0:00:09.000.mp4",
                "caption": "A dog runs.",
                "frame_idx": "9",
                "annotation": ann,
            }
        ],
    )
    return root


def test_d_loader_prompt_and_null_judge_metrics(tmp_path: Path) -> None:
    root = _d_fixture(tmp_path)
    (sample,) = list(get_benchmark("videorefer_d_single").samples(root, "single"))
    (multi,) = list(get_benchmark("videorefer_d_single").samples(root, "multi"))
    assert sample.video == str(root / "VideoRefer-Bench/Panda-70M-part/abc_0:00:01.000_0:00:09.000.mp4")
    assert list(sample.regions[0]) == [9] and list(multi.regions[0]) == [3, 9]
    assert sample.conversation == [
        {
            "from": "human",
            "value": "<video>\nPlease give a detailed description of the highlighted object [<region>] in the video.",
        }
    ]
    row = videorefer_d_parse(text(sample.id, "A brown dog runs."), sample)
    scores = videorefer_d_score([row], ScoreContext())
    assert set(scores.metrics) == {"sc", "ad", "td", "hd", "score_avg", "score_avg_no_td"}
    assert all(v is None for v in scores.metrics.values())
    assert any("no judge configured" in n for n in scores.notes)


def test_d_scores_come_from_the_judge(tmp_path: Path) -> None:
    class FakeJudge:
        def score(self, reference: str, prediction: str) -> dict[str, int] | None:
            return {"sc": 5, "ad": 4, "td": 3, "hd": 2} if "dog" in prediction else None

        def describe(self) -> str:
            return "fake"

        def usage(self) -> dict[str, int]:
            return {"requests": 2}

    (sample,) = list(get_benchmark("videorefer_d_single").samples(_d_fixture(tmp_path), "single"))
    rows = [videorefer_d_parse(text(sample.id, "A dog."), sample), videorefer_d_parse(text(sample.id, "?"), sample)]
    scores = videorefer_d_score(rows, ScoreContext(judge=FakeJudge()))
    assert scores.metrics["score_avg"] == pytest.approx(3.5) and scores.metrics["score_avg_no_td"] == pytest.approx(
        11 / 3
    )
    assert any("1 item(s) got no parsable judgment" in n for n in scores.notes)


def test_declarations() -> None:
    assert get_benchmark("videorefer_q_multi").published["accuracy"] == 77.9
    assert get_benchmark("videorefer_q_single").published["accuracy_future"] == 78.9
    assert get_benchmark("videorefer_d_multi").published["score_avg"] == 3.61
