"""MVBench (20 multiple-choice video tasks): the public task table, VideoLLaMA2/UFVideo's prompt, its option
parser with fallbacks, and accuracy per task and overall (micro, percent).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from ufvideo.errors import DataError
from ufvideo.eval import metrics as M
from ufvideo.eval.benchmarks.common import video_turns
from ufvideo.eval.benchmarks.roots import benchmark_root
from ufvideo.eval.registry import Benchmark, ScoreContext, Scores
from ufvideo.eval.types import Prediction, Sample, Turn
from ufvideo.files import read_json

log = logging.getLogger(__name__)
FRAMES_FPS = 3.0  # TVQA frame folders are extracted at 3 fps, 1-based %05d.jpg
INSTRUCTION = "Answer with the option's letter from the given choices directly and only give the best option."


class Task(NamedTuple):
    json: str
    folder: str
    frames: bool  # a folder of frames instead of a video file
    bounded: bool  # "start"/"end" seconds select a clip


# Task name -> (json file, video folder under video/, frame folder?, start/end bounds?), the public table.
TASKS: dict[str, Task] = {
    "Action Sequence": Task("action_sequence.json", "star/Charades_v1_480/", False, True),
    "Action Prediction": Task("action_prediction.json", "star/Charades_v1_480/", False, True),
    "Action Antonym": Task("action_antonym.json", "ssv2_video/", False, False),
    "Fine-grained Action": Task("fine_grained_action.json", "Moments_in_Time_Raw/videos/", False, False),
    "Unexpected Action": Task("unexpected_action.json", "FunQA_test/test/", False, False),
    "Object Existence": Task("object_existence.json", "clevrer/video_validation/", False, False),
    "Object Interaction": Task("object_interaction.json", "star/Charades_v1_480/", False, True),
    "Object Shuffle": Task("object_shuffle.json", "perception/videos/", False, False),
    "Moving Direction": Task("moving_direction.json", "clevrer/video_validation/", False, False),
    "Action Localization": Task("action_localization.json", "sta/sta_video/", False, True),
    "Scene Transition": Task("scene_transition.json", "scene_qa/video/", False, False),
    "Action Count": Task("action_count.json", "perception/videos/", False, False),
    "Moving Count": Task("moving_count.json", "clevrer/video_validation/", False, False),
    "Moving Attribute": Task("moving_attribute.json", "clevrer/video_validation/", False, False),
    "State Change": Task("state_change.json", "perception/videos/", False, False),
    "Fine-grained Pose": Task("fine_grained_pose.json", "nturgbd/", False, False),
    "Character Order": Task("character_order.json", "perception/videos/", False, False),
    "Egocentric Navigation": Task("egocentric_navigation.json", "vlnqa/", False, False),
    "Episodic Reasoning": Task("episodic_reasoning.json", "tvqa/frames_fps3_hq/", True, True),
    "Counterfactual Inference": Task("counterfactual_inference.json", "clevrer/video_validation/", False, False),
}


def task_slug(task: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", task.lower()).strip("_")


def _frame_files(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: MVBench frame folder not found")
    return [str(p) for p in sorted(folder.glob("*.jpg"))]


def present_tasks(root: Path) -> dict[str, Task]:
    """The tasks whose file is under `root/json`; a warning names the missing ones (a partial download is
    evaluated on what it has, and the score reports its coverage)."""
    present = {task: spec for task, spec in TASKS.items() if (root / "json" / spec.json).is_file()}
    missing = [spec.json for task, spec in TASKS.items() if task not in present]
    if missing:
        log.warning(
            "MVBench: %d of %d task files missing under %s (%s); evaluating the %d present",
            len(missing),
            len(TASKS),
            root / "json",
            ", ".join(missing),
            len(present),
        )
    return present


def mvbench_load(data_root: Path, split: str = "test") -> Iterator[Sample]:
    """Every question of the task files under `json/`, videos under `video/<folder>`, in the MVBench folder
    (`--data-root` itself, or its `mvbench/` child)."""
    markers = [f"json/{spec.json}" for spec in TASKS.values()]
    root = benchmark_root(data_root, ("mvbench", "MVBench"), markers, "MVBench")
    for task, spec in present_tasks(root).items():
        items = read_json(root / "json" / spec.json)
        for i, item in enumerate(items):
            where = f"{root / 'json' / spec.json}[{i}]"
            missing = [k for k in ("video", "question", "candidates", "answer") if k not in item]
            if missing:
                raise DataError(f"{where}: missing field(s) {', '.join(missing)}")
            location = root / "video" / spec.folder / item["video"]
            video: str | list[str] = _frame_files(location) if spec.frames else str(location)
            clip = (float(item["start"]), float(item["end"])) if spec.bounded and "start" in item else None
            candidates = [str(c) for c in item["candidates"]]
            gt_idx = candidates.index(item["answer"]) if item["answer"] in candidates else -1
            sample = Sample(
                id=f"{task_slug(task)}/{i}",
                benchmark="mvbench",
                task="mcqa",
                video=video,
                conversation=[],
                clip=clip,
                fps=FRAMES_FPS if spec.frames else None,
                ground_truth={"answer_idx": gt_idx},
                meta={"task_type": task, "question": item["question"], "candidates": candidates},
            )
            yield sample


def mvbench_prompt(sample: Sample) -> list[Turn]:
    options = "".join(
        f"({letter}) {c}\n"
        for letter, c in zip(M.option_letters(len(sample.meta["candidates"])), sample.meta["candidates"])
    )
    return video_turns(f"Question: {sample.meta['question']}\nOptions:\n{options}{INSTRUCTION}")


def mvbench_parse(prediction: Prediction, sample: Sample, strict: bool = False) -> dict[str, Any]:
    pred = M.parse_mvbench_answer(prediction.text, sample.meta["candidates"], strict=strict)
    return {
        "task_type": sample.meta["task_type"],
        "pred_text": prediction.text,
        "pred_idx": -1 if pred is None else pred,
        "gt_idx": sample.ground_truth["answer_idx"],
    }


def mvbench_score(rows: list[dict[str, Any]], ctx: ScoreContext) -> Scores:
    if not rows:
        return Scores({"accuracy": None}, ["no samples to score"])
    report = M.mvbench_report((r["task_type"], r["pred_idx"], r["gt_idx"]) for r in rows)
    covered = len(report["per_task"])
    metrics: dict[str, float | None] = {"accuracy": report["overall"], "tasks_covered": float(covered)}
    metrics.update({f"accuracy_{task_slug(t)}": v for t, v in sorted(report["per_task"].items())})
    notes = ["accuracy = micro average over questions (equals the task mean with 200 per task)"]
    if covered < len(TASKS):
        absent = [task_slug(t) for t in TASKS if t not in report["per_task"]]
        notes.append(
            f"coverage: {covered} of {len(TASKS)} tasks; the average is over those only, not comparable with the "
            f"published 20-task number (missing: {', '.join(absent)})"
        )
    return Scores(metrics, notes, {"per_task_accuracy": {task_slug(t): v for t, v in report["per_task"].items()}})


BENCHMARK = Benchmark(
    name="mvbench",
    task="mcqa",
    metrics=("accuracy", "tasks_covered", *(f"accuracy_{task_slug(t)}" for t in TASKS)),
    split="test",
    load=mvbench_load,
    prompt=mvbench_prompt,
    parse=mvbench_parse,
    score=mvbench_score,
    published={
        "accuracy": 67.3,
        "accuracy_action_sequence": 81.5,
        "accuracy_action_antonym": 95.0,
        "accuracy_object_interaction": 89.0,
        "accuracy_counterfactual_inference": 76.0,
    },
    paths={"json": "mvbench/json", "video": "mvbench/video"},
)
