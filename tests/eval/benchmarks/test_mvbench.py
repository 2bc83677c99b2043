"""MVBench: the 20-task loader on a fixture in the public layout, the exact prompt, and parse + score."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.eval.benchmarks.helpers import dump, frames, text
from ufvideo.eval.benchmarks import get_benchmark
from ufvideo.eval.benchmarks.mvbench import TASKS, mvbench_parse, mvbench_score, task_slug
from ufvideo.eval.registry import ScoreContext

CUP = ["Put down the cup.", "Opened the door.", "Sat on the bed.", "Took the towel."]


def _fixture(root: Path) -> Path:
    mv = root / "mvbench"
    for spec in TASKS.values():
        dump(mv / "json" / spec.json, [])
    dump(
        mv / "json" / "action_sequence.json",
        [
            {
                "video": "ZS9XR.mp4",
                "question": "What happened after the person took the cup?",
                "candidates": CUP,
                "answer": "Put down the cup.",
                "start": 11.1,
                "end": 19.6,
            },
            {
                "video": "AB12C.mp4",
                "question": "What did the person do first?",
                "candidates": ["Sat.", "Stood."],
                "answer": "Stood.",
                "start": 0.0,
                "end": 5.5,
            },
        ],
    )
    dump(
        mv / "json" / "object_shuffle.json",
        [
            {
                "video": "video_1.mp4",
                "question": "Where is the ball?",
                "candidates": ["left", "middle", "right"],
                "answer": "right",
            }
        ],
    )
    dump(
        mv / "json" / "episodic_reasoning.json",
        [
            {
                "video": "s01e02_seg01_clip_03",
                "question": "Why did Ross leave?",
                "candidates": ["Angry", "Late"],
                "answer": "Late",
                "start": 1.0,
                "end": 9.0,
            }
        ],
    )
    frames(mv / "video" / "tvqa" / "frames_fps3_hq" / "s01e02_seg01_clip_03", ["00002", "00001", "00003"])
    return root


def test_task_table_is_the_public_one() -> None:
    assert len(TASKS) == 20
    bounded = sorted(name for name, t in TASKS.items() if t.bounded)
    assert bounded == sorted(
        ["Action Sequence", "Action Prediction", "Object Interaction", "Action Localization", "Episodic Reasoning"]
    )
    assert [name for name, t in TASKS.items() if t.frames] == ["Episodic Reasoning"]


def test_loader_reads_every_task_file_with_bounds_and_frame_folders(tmp_path: Path) -> None:
    samples = list(get_benchmark("mvbench").samples(_fixture(tmp_path)))
    assert [s.id for s in samples] == [
        "action_sequence/0",
        "action_sequence/1",
        "object_shuffle/0",
        "episodic_reasoning/0",
    ]
    first, _, shuffle, tvqa = samples
    assert first.video == str(tmp_path / "mvbench/video/star/Charades_v1_480/ZS9XR.mp4")
    assert first.clip == (11.1, 19.6) and first.fps is None
    assert first.ground_truth["answer_idx"] == 0 and samples[1].ground_truth["answer_idx"] == 1
    assert shuffle.clip is None and shuffle.video.endswith("perception/videos/video_1.mp4")
    assert tvqa.fps == 3.0 and tvqa.clip == (1.0, 9.0)
    assert [Path(p).name for p in tvqa.video] == ["00001.jpg", "00002.jpg", "00003.jpg"]


def test_prompt_snapshot(tmp_path: Path) -> None:
    sample = next(get_benchmark("mvbench").samples(_fixture(tmp_path)))
    assert sample.conversation == [
        {
            "from": "human",
            "value": "<video>\nQuestion: What happened after the person took the cup?\nOptions:\n"
            "(A) Put down the cup.\n(B) Opened the door.\n(C) Sat on the bed.\n(D) Took the towel.\n"
            "Answer with the option's letter from the given choices directly and only give the best option.",
        }
    ]


def test_parse_and_score_reproduce_the_public_parser(tmp_path: Path) -> None:
    samples = list(get_benchmark("mvbench").samples(_fixture(tmp_path)))
    outputs = ["(A) Put down the cup.", "Based on the video, (B)", "(C)", "I think it was late"]
    rows = [mvbench_parse(text(s.id, o), s) for s, o in zip(samples, outputs)]
    # "Based on ..." parses as B (the capital B of "Based"), which is right by accident; the option-text
    # fallback finds "Late" (index 1) in the last output.
    assert [r["pred_idx"] for r in rows] == [0, 1, 2, 1]
    scores = mvbench_score(rows, ScoreContext())
    assert scores.metrics["accuracy"] == pytest.approx(100.0)
    wrong = mvbench_parse(text(samples[2].id, "(a)"), samples[2])  # lower case: no match, fallback index 2 = C
    assert wrong["pred_idx"] == 2
    mixed = mvbench_score([rows[0], mvbench_parse(text(samples[1].id, "A"), samples[1]), rows[2]], ScoreContext())
    assert mixed.metrics["accuracy"] == pytest.approx(200 / 3)
    assert mixed.metrics[f"accuracy_{task_slug('Action Sequence')}"] == pytest.approx(50.0)
    assert mixed.details["per_task_accuracy"] == {"action_sequence": 50.0, "object_shuffle": 100.0}


def test_strict_mode_does_not_guess(tmp_path: Path) -> None:
    sample = list(get_benchmark("mvbench").samples(_fixture(tmp_path)))[0]
    assert mvbench_parse(text(sample.id, "Based on the video, (B)"), sample, strict=True)["pred_idx"] == -1
    assert mvbench_parse(text(sample.id, "B"), sample, strict=True)["pred_idx"] == 1


def test_declaration() -> None:
    bench = get_benchmark("mvbench")
    assert bench.published["accuracy"] == 67.3 and bench.task == "mcqa"
    assert len([m for m in bench.metrics if m.startswith("accuracy_")]) == 20
