"""VideoRefer-Bench-D (judge-scored object descriptions) and VideoRefer-Bench-Q (object multiple choice), each in
single-frame mode (the mask on `frame_idx` only) and multi-frame mode (every annotated frame).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ufvideo.errors import DataError
from ufvideo.eval import metrics as M
from ufvideo.eval.benchmarks.common import frame_masks, judge_scores, video_turns
from ufvideo.eval.benchmarks.roots import benchmark_root
from ufvideo.eval.registry import Benchmark, ScoreContext, Scores
from ufvideo.eval.types import Prediction, Rle, Sample, Turn
from ufvideo.files import read_json

ROOT = "VideoRefer-Bench"
D_QUESTION = "Please give a detailed description of the highlighted object [<region>] in the video."
Q_INSTRUCTION = ". Answer with the option's letter from the given choices directly."
Q_TYPES = {
    "Basic Questions": "basic",
    "Sequential Questions": "sequential",
    "Relationship Questions": "relationship",
    "Reasoning Questions": "reasoning",
    "Future Predictions": "future",
}


def _regions(record: dict[str, Any], mode: str, where: str) -> list[dict[int, Rle]]:
    """One `{frame: RLE}` per object: only `frame_idx` in single mode, every annotated frame in multi mode."""
    regions = []
    for k, annotation in enumerate(record["annotation"]):
        masks = {f: r for f, r in frame_masks(annotation).items() if r is not None}
        if mode == "single":
            key = int(record["frame_idx"])
            if key not in masks:
                raise DataError(f"{where}: object {k} has no mask on frame_idx {key}")
            masks = {key: masks[key]}
        if not masks:
            raise DataError(f"{where}: object {k} has no mask on any frame")
        regions.append(masks)
    return regions


def videorefer_d_load(data_root: Path, split: str = "single") -> Iterator[Sample]:
    root = benchmark_root(data_root, (ROOT,), ("VideoRefer-Bench-D.json",), "VideoRefer-Bench-D")
    path = root / "VideoRefer-Bench-D.json"
    for i, record in enumerate(read_json(path)):
        where = f"{path}[{i}]"
        sample = Sample(
            id=str(record.get("id", i)),
            benchmark=f"videorefer_d_{split}",
            task="caption",
            video=str(root / "Panda-70M-part" / record["video"]),
            conversation=[],
            regions=_regions(record, split, where),
            region_mode=split,
            ground_truth={"caption": record["caption"]},
            meta={"video": record["video"]},
        )
        yield sample


def videorefer_d_prompt(sample: Sample) -> list[Turn]:
    return video_turns(D_QUESTION)


def videorefer_d_parse(prediction: Prediction, sample: Sample, strict: bool = False) -> dict[str, Any]:
    return {"video": sample.meta["video"], "reference": sample.ground_truth["caption"], "pred_text": prediction.text}


def videorefer_d_score(rows: list[dict[str, Any]], ctx: ScoreContext) -> Scores:
    return judge_scores(rows, ctx)


def _frames(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: VideoRefer-Bench-Q frame folder not found")
    return [str(p) for p in sorted(folder.iterdir()) if p.suffix.lower() in (".jpg", ".jpeg", ".png")]


def videorefer_q_load(data_root: Path, split: str = "single") -> Iterator[Sample]:
    root = benchmark_root(data_root, (ROOT,), ("VideoRefer-Bench-Q.json",), "VideoRefer-Bench-Q")
    path = root / "VideoRefer-Bench-Q.json"
    for i, record in enumerate(read_json(path)):
        where = f"{path}[{i}]"
        regions = _regions(record, split, where)
        if record["Question"].count("<region>") != len(regions):
            raise DataError(f"{where}: {record['Question'].count('<region>')} <region> tags, {len(regions)} objects")
        sample = Sample(
            id=str(record.get("id", i)),
            benchmark=f"videorefer_q_{split}",
            task="mcqa",
            video=_frames(root / record["video"]),
            conversation=[],
            regions=regions,
            region_mode=split,
            ground_truth={"answer": record["Answer"]},
            meta={
                "video": record["video"],
                "type": record["type"],
                "question": record["Question"],
                "options": list(record["options"]),
            },
        )
        yield sample


def videorefer_q_prompt(sample: Sample) -> list[Turn]:
    question = sample.meta["question"].replace("<region>", "[<region>]")
    return video_turns(question + " " + " ".join(sample.meta["options"]) + Q_INSTRUCTION)


def videorefer_q_parse(prediction: Prediction, sample: Sample, strict: bool = False) -> dict[str, Any]:
    return {
        "type": sample.meta["type"],
        "pred_text": prediction.text,
        "pred": M.parse_videorefer_q_answer(prediction.text, strict=strict),
        "answer": sample.ground_truth["answer"],
    }


def videorefer_q_score(rows: list[dict[str, Any]], ctx: ScoreContext) -> Scores:
    if not rows:
        return Scores({"accuracy": None}, ["no samples to score"])
    report = M.videorefer_q_report((r["type"], r["pred"], r["answer"]) for r in rows)
    metrics: dict[str, float | None] = {"accuracy": 100 * report["overall"]}
    for qtype, value in sorted(report["per_type"].items()):
        metrics[f"accuracy_{Q_TYPES.get(qtype, qtype.lower().replace(' ', '_'))}"] = 100 * value
    notes = ["accuracy = micro average over questions; letters compared case-insensitively"]
    if report["unparsed"]:
        notes.append(f"{report['unparsed']} output(s) the public parser would crash on, counted wrong")
    per_type = {Q_TYPES.get(t, t): 100 * v for t, v in report["per_type"].items()}
    return Scores(metrics, notes, {"per_task_accuracy": per_type})


_D_PUBLISHED = {
    "single": {"score_avg": 3.59, "sc": 4.53, "ad": 3.48, "td": 3.26, "hd": 3.09},
    "multi": {"score_avg": 3.61, "sc": 4.56, "ad": 3.40, "td": 3.35, "hd": 3.15},
}
_Q_PUBLISHED = {
    "single": (74.9, 80.9, 73.3, 62.7, 86.7, 78.9),
    "multi": (77.9, 83.8, 75.8, 64.7, 91.6, 82.5),
}
_Q_METRICS = ("accuracy", *(f"accuracy_{v}" for v in Q_TYPES.values()))

VIDEOREFER_D_SINGLE = Benchmark(
    name="videorefer_d_single",
    task="caption",
    metrics=("sc", "ad", "td", "hd", "score_avg", "score_avg_no_td"),
    split="single",
    load=videorefer_d_load,
    prompt=videorefer_d_prompt,
    parse=videorefer_d_parse,
    score=videorefer_d_score,
    published=_D_PUBLISHED["single"],
    paths={"annotations": f"{ROOT}/VideoRefer-Bench-D.json", "videos": f"{ROOT}/Panda-70M-part"},
    judged=True,
)

VIDEOREFER_Q_SINGLE = Benchmark(
    name="videorefer_q_single",
    task="mcqa",
    metrics=_Q_METRICS,
    split="single",
    load=videorefer_q_load,
    prompt=videorefer_q_prompt,
    parse=videorefer_q_parse,
    score=videorefer_q_score,
    published=dict(zip(_Q_METRICS, _Q_PUBLISHED["single"], strict=True)),
    paths={"annotations": f"{ROOT}/VideoRefer-Bench-Q.json", "frames": f"{ROOT}/MeViS, {ROOT}/DAVIS"},
)

VIDEOREFER_D_MULTI = Benchmark(
    name="videorefer_d_multi",
    task="caption",
    metrics=("sc", "ad", "td", "hd", "score_avg", "score_avg_no_td"),
    split="multi",
    load=videorefer_d_load,
    prompt=videorefer_d_prompt,
    parse=videorefer_d_parse,
    score=videorefer_d_score,
    published=_D_PUBLISHED["multi"],
    paths={"annotations": f"{ROOT}/VideoRefer-Bench-D.json", "videos": f"{ROOT}/Panda-70M-part"},
    judged=True,
)

VIDEOREFER_Q_MULTI = Benchmark(
    name="videorefer_q_multi",
    task="mcqa",
    metrics=_Q_METRICS,
    split="multi",
    load=videorefer_q_load,
    prompt=videorefer_q_prompt,
    parse=videorefer_q_parse,
    score=videorefer_q_score,
    published=dict(zip(_Q_METRICS, _Q_PUBLISHED["multi"], strict=True)),
    paths={"annotations": f"{ROOT}/VideoRefer-Bench-Q.json", "frames": f"{ROOT}/MeViS, {ROOT}/DAVIS"},
)
