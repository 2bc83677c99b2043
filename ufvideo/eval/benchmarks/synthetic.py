"""The synthetic test split (a curated directory from `ufvideo data synth`), scored per task kind with the same
metric functions as the public benchmarks: exact-match accuracy (qa, mcqa), J/F (mask tasks), R@IoU/mIoU (spans),
dense-caption event precision/recall over tIoU 0.3-0.9 (dvc, as ActivityNet Captions' densevid_eval) and the judge
for free text (caption, referring, dvc and the UFVideo-Bench style descriptions). Free text also gets CIDEr-D
against the exact synthetic reference, so it is scored even where no judge endpoint is configured.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ufvideo.data.shards import MANIFEST, iter_records
from ufvideo.data.shards import data_root as dataset_data_root
from ufvideo.eval import metrics as M
from ufvideo.eval.benchmarks.common import (
    cider_scores,
    event_scores,
    jf_scores,
    judge_scores,
    mask_row,
    merge_scores,
    span_scores,
    text_before,
)
from ufvideo.eval.registry import Benchmark, ScoreContext, Scores
from ufvideo.eval.types import Prediction, Sample, Turn

MASK_MARKER = "The segmentation mask"
TEXT_TASKS = ("caption", "referring", "dvc", "pixrqa", "pixhqa", "pixtrqa")
MASK_TASKS = ("rvos", "pixrqa", "pixhqa", "pixtrqa")
SPAN_TASKS = ("tvg", "pixtrqa")
EVENT_TASKS = ("dvc",)
ACCURACY_TASKS = ("qa", "mcqa")
# One or two numbers per task that say whether it was learned (the report's and the demo's summary rows).
HEADLINE = (
    "qa_accuracy",
    "mcqa_accuracy",
    "caption_cider",
    "referring_cider",
    "rvos_jf",
    "tvg_miou",
    "dvc_event_f1",
    "dvc_cider",
    "pixrqa_jf",
    "pixhqa_jf",
    "pixtrqa_jf",
    "pixtrqa_miou",
)
TASK_ORDER = ("qa", "mcqa", "caption", "referring", "rvos", "tvg", "dvc", "pixrqa", "pixhqa", "pixtrqa")


def _dataset_dir(data_root: Path) -> Path:
    """`--data-root` may be the synthetic directory itself or a folder holding it as `synth/`."""
    return data_root if (data_root / MANIFEST).is_file() else data_root / "synth"


def synthetic_load(data_root: Path, split: str = "test") -> Iterator[Sample]:
    directory = _dataset_dir(data_root)
    root = dataset_data_root(directory)
    for record in iter_records(directory, split=split):
        targets = record.get("targets") or []
        sam_frames = sorted(int(f) for f in targets[0]) if targets else None
        answer = next(t["value"] for t in record["conversations"] if t["from"] == "gpt")
        regions = [{int(f): rle for f, rle in r.items()} for r in record.get("regions") or []] or None
        sample = Sample(
            id=record["id"],
            benchmark="synthetic",
            task=record["task"],
            video=str(root / record["video"]),
            conversation=[],
            regions=regions,
            region_mode=record.get("region_mode"),
            sam_frames=sam_frames,
            teacher_forced=record["task"] == "rvos",
            height=record.get("height"),
            width=record.get("width"),
            ground_truth={"answer": answer, "masks": [[t.get(str(f)) for f in sam_frames] for t in targets]},
            meta={"conversations": record["conversations"], **record.get("meta", {})},
        )
        yield sample


def synthetic_prompt(sample: Sample) -> list[Turn]:
    """The record's human turn; RVOS keeps its `[SEG]` answer, fed in as the public RVOS evaluation does."""
    turns = sample.meta["conversations"]
    human = next(t for t in turns if t["from"] == "human")
    if sample.teacher_forced:
        return [dict(human), dict(next(t for t in turns if t["from"] == "gpt"))]
    return [dict(human)]


def synthetic_prior(data_root: Path) -> Callable[[Sample], str]:
    """The blind baseline: each task's most frequent answer in the *training* split (ties: the answer met first),
    what a model gets from the answer distribution alone (e.g. the commonest letter, a whole-video span)."""
    counts: dict[str, Counter[str]] = {}
    for record in iter_records(_dataset_dir(data_root), split="train"):
        answer = next(t["value"] for t in record["conversations"] if t["from"] == "gpt")
        counts.setdefault(record["task"], Counter())[answer] += 1
    best = {task: answers.most_common(1)[0][0] for task, answers in counts.items()}
    return lambda sample: best.get(sample.task, "")


def _normalise(text: str) -> str:
    return " ".join(text.strip().lower().rstrip(".").split())


def synthetic_parse(prediction: Prediction, sample: Sample, strict: bool = False) -> dict[str, Any]:
    task, answer = sample.task, sample.ground_truth["answer"]
    row: dict[str, Any] = {"task": task, "video": Path(str(sample.video)).stem, "pred_text": prediction.text}
    if task == "qa":
        row["correct"] = _normalise(prediction.text) == _normalise(answer)
    elif task == "mcqa":
        options = sample.meta["options"]
        # Always strict: the public parser's fallback to "C" would credit unrelated text with a right answer.
        row["pred_idx"] = M.parse_mvbench_answer(prediction.text, options, strict=True)
        row["correct"] = row["pred_idx"] == sample.meta["answer_index"]
    if task in SPAN_TASKS:
        pred = M.parse_span(prediction.text, strict=strict)
        row["pred_span"] = None if pred is None else list(pred)
        gt = M.parse_span(answer)
        if gt is None:
            raise ValueError(f"sample {sample.id}: the reference answer has no {{<TEMP-a><TEMP-b>}} span")
        row["gt_span"] = list(gt)
    if task in EVENT_TASKS:
        row["pred_spans"] = [list(s) for s in M.parse_spans(prediction.text)]
        row["gt_spans"] = [list(s) for s in M.parse_spans(answer)]
    if task in MASK_TASKS:
        row["objects"] = [
            {"video": row["video"], **mask_row(prediction, sample, k)} for k in range(len(sample.ground_truth["masks"]))
        ]
    if task in TEXT_TASKS:
        row["pred_text"] = text_before(prediction.text, MASK_MARKER)
        row["reference"] = text_before(answer, MASK_MARKER)
    return row


def synthetic_score(rows: list[dict[str, Any]], ctx: ScoreContext) -> Scores:
    """Metrics named `<task>_<metric>`, each computed only over that task's rows."""
    by_task: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_task.setdefault(row["task"], []).append(row)
    parts = []
    per_task_accuracy = {}
    for task in (t for t in TASK_ORDER if t in by_task):
        task_rows = by_task[task]
        if task in ACCURACY_TASKS:
            accuracy = 100.0 * sum(bool(r["correct"]) for r in task_rows) / len(task_rows)
            per_task_accuracy[task] = accuracy
            rule = "exact match" if task == "qa" else "exact match (strict letter parser, no fallback)"
            parts.append(Scores({f"{task}_accuracy": accuracy}, [f"{task}: {rule}"]))
        if task in SPAN_TASKS:
            parts.append(span_scores(task_rows, prefix=f"{task}_"))
        if task in EVENT_TASKS:
            parts.append(event_scores(task_rows, prefix=f"{task}_"))
        if task in MASK_TASKS:
            part = jf_scores([o for r in task_rows for o in r["objects"]], ctx, prefix=f"{task}_")
            per_video = part.details.get("jf_per_video", {})
            part.details["jf_per_video"] = {f"{task}/{video}": jf for video, jf in per_video.items()}
            parts.append(part)
        if task in TEXT_TASKS:
            parts.append(judge_scores(task_rows, ctx, prefix=f"{task}_"))
            parts.append(cider_scores(task_rows, prefix=f"{task}_"))
    scores = merge_scores(*parts)
    scores.details["per_task_accuracy"] = per_task_accuracy
    scores.details["samples_per_task"] = {t: len(v) for t, v in by_task.items()}
    return scores


def _metric_names() -> tuple[str, ...]:
    names: list[str] = []
    for task in TASK_ORDER:
        if task in ACCURACY_TASKS:
            names.append(f"{task}_accuracy")
        if task in SPAN_TASKS:
            names += [f"{task}_{m}" for m in ("r_at_0_3", "r_at_0_5", "r_at_0_7", "miou")]
        if task in EVENT_TASKS:
            names += [f"{task}_{m}" for m in ("event_precision", "event_recall", "event_f1")]
        if task in MASK_TASKS:
            names += [f"{task}_{m}" for m in ("j", "f", "jf")]
        if task in TEXT_TASKS:
            names += [f"{task}_{m}" for m in ("sc", "ad", "td", "hd", "score_avg", "score_avg_no_td", "cider")]
    return tuple(names)


BENCHMARK = Benchmark(
    name="synthetic",
    task="mixed",
    metrics=_metric_names(),
    split="test",
    load=synthetic_load,
    prompt=synthetic_prompt,
    parse=synthetic_parse,
    score=synthetic_score,
    paths={"dataset": "synth (or the --data-root itself when it holds manifest.json)"},
    mask_layout=lambda sample, k, position: f"{sample.id}/{k}/{sample.sam_frames[position]:05d}.png",
    judged=True,
    prior=synthetic_prior,
    headline=HEADLINE,
)
