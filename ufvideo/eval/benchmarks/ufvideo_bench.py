"""UFVideo-Bench: PixRQA (region in; description + masks out), PixHQA (question in; answer + masks out) and PixTRQA
(question in; time span + answer + masks out). Masks: J/F/J&F; text: the judge (SAvg); spans: R@IoU and mIoU.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ufvideo.errors import DataError
from ufvideo.eval import metrics as M
from ufvideo.eval.benchmarks.common import (
    frame_masks,
    jf_scores,
    judge_scores,
    mask_row,
    merge_scores,
    span_scores,
    text_before,
    video_turns,
)
from ufvideo.eval.benchmarks.roots import benchmark_root
from ufvideo.eval.registry import Benchmark, ScoreContext, Scores
from ufvideo.eval.types import Prediction, Sample, Turn
from ufvideo.files import read_json

ROOT = "UFVideo-Bench"
VIDEOS = "VideoRefer-Bench/Panda-70M-part"
MASK_MARKER = "The segmentation mask"
PIXRQA_QUESTION = (
    "There is 1 objects in the video: object_1: [<region>]. Please give a detailed description of what is the "
    "object_1 doing in the video. And please generate the mask in every frames?"
)
FILES = {"pixrqa": "PixRQA", "pixhqa": "PixHQA", "pixtrqa": "PixTRQA"}
NOTE_FRAMES = "frames whose ground truth is null are not predicted or scored, as UFVideo's unibench scripts skip them"
NOTE_POOLED = "UFVideo's published J/F are frame-pooled (aggregation=frame_pooled reproduces them)"


def _records(data_root: Path, name: str, split: str) -> tuple[Path, list[dict[str, Any]]]:
    stem = FILES[name] if split == "test" else f"{FILES[name]}_{split}"
    path = benchmark_root(data_root, (ROOT,), (f"{stem}.json",), f"UFVideo-Bench {FILES[name]}") / f"{stem}.json"
    return path, read_json(path)


def _videos_base(data_root: Path, path: Path) -> Path:
    """The folder holding `VideoRefer-Bench/Panda-70M-part` (the scripts' video folder): `--data-root` when it is
    the parent of both benchmarks, else the parent of the UFVideo-Bench folder it points at."""
    for base in (data_root, path.parent.parent):
        if (base / VIDEOS).is_dir():
            return base
    return data_root


def pixrqa_load(data_root: Path, split: str = "test") -> Iterator[Sample]:
    """The region is the mask on the earliest annotated frame; masks are wanted on the later annotated frames."""
    path, records = _records(data_root, "pixrqa", split)
    for i, record in enumerate(records):
        masks = frame_masks(record["annotation"][0])
        present = [f for f, r in masks.items() if r is not None]
        if not present:
            raise DataError(f"{path}[{i}]: object 0 has no mask on any frame")
        first = present[0]
        later = [f for f in present if f > first]
        sample = Sample(
            id=str(record.get("id", i)),
            benchmark="pixrqa",
            task="pixrqa",
            video=str(_videos_base(data_root, path) / VIDEOS / record["video"]),
            conversation=[],
            regions=[{first: masks[first]}],
            region_mode="single",
            sam_frames=later,
            ground_truth={"caption": record["caption"], "masks": [[masks[f] for f in later]]},
            meta={"video": record["video"]},
        )
        yield sample


def pixrqa_prompt(sample: Sample) -> list[Turn]:
    return video_turns(PIXRQA_QUESTION)


def _question_samples(data_root: Path, name: str, split: str) -> Iterator[Sample]:
    """PixHQA/PixTRQA: nested `conversations[0]` = [question, answer]; masks wanted on `frame_idx`."""
    path, records = _records(data_root, name, split)
    for i, record in enumerate(records):
        turns = record["conversations"][0]
        if len(turns) < 2:
            raise DataError(f"{path}[{i}]: conversations[0] needs a question and an answer")
        frames = [int(f) for f in record["frame_idx"]]
        objects = [frame_masks(a) for a in record["annotation"]]
        keep = [f for f in frames if any(obj.get(f) for obj in objects)]
        video = Path(record["video"])
        if not video.is_absolute():
            base = _videos_base(data_root, path)
            video = base / video if name == "pixtrqa" else base / VIDEOS / video
        sample = Sample(
            id=str(record.get("id", i)),
            benchmark=name,
            task=name,
            video=str(video),
            conversation=[],
            sam_frames=keep,
            ground_truth={"answer": turns[1]["value"], "masks": [[obj.get(f) for f in keep] for obj in objects]},
            meta={"video": record["video"], "question": turns[0]["value"]},
        )
        yield sample


def pixhqa_load(data_root: Path, split: str = "test") -> Iterator[Sample]:
    return _question_samples(data_root, "pixhqa", split)


def pixtrqa_load(data_root: Path, split: str = "test") -> Iterator[Sample]:
    """As PixHQA; `video` is used as given (absolute, or relative to the data root)."""
    return _question_samples(data_root, "pixtrqa", split)


def pixhqa_prompt(sample: Sample) -> list[Turn]:
    """The question as given; it already opens with `<video>` (added at the head when it does not)."""
    question = sample.meta["question"]
    if "<video>" in question:
        return [{"from": "human", "value": question}]
    return video_turns(question)


pixtrqa_prompt = pixhqa_prompt


def _mask_rows(prediction: Prediction, sample: Sample) -> list[dict[str, Any]]:
    return [{"video": sample.id, **mask_row(prediction, sample, k)} for k in range(len(sample.ground_truth["masks"]))]


def pixrqa_parse(prediction: Prediction, sample: Sample, strict: bool = False) -> dict[str, Any]:
    return {
        "video": sample.meta["video"],
        "pred_text": text_before(prediction.text, MASK_MARKER),
        "reference": sample.ground_truth["caption"],
        "objects": _mask_rows(prediction, sample),
    }


def pixhqa_parse(prediction: Prediction, sample: Sample, strict: bool = False) -> dict[str, Any]:
    return {
        "video": sample.meta["video"],
        "pred_text": text_before(prediction.text, MASK_MARKER),
        "reference": text_before(sample.ground_truth["answer"], MASK_MARKER),
        "objects": _mask_rows(prediction, sample),
    }


def _after_first_sentence(text: str) -> str:
    """The description without its opening time sentence (`split('.', 1)[1]` in the public script)."""
    return text.split(".", 1)[1].strip() if "." in text else ""


def pixtrqa_parse(prediction: Prediction, sample: Sample, strict: bool = False) -> dict[str, Any]:
    pred = M.parse_span(prediction.text, strict=strict)
    gt = M.parse_span(sample.ground_truth["answer"])
    if gt is None:
        raise ValueError(f"sample {sample.id}: ground-truth answer has no {{<TEMP-a><TEMP-b>}} span")
    return {
        "video": sample.meta["video"],
        "pred_span": None if pred is None else list(pred),
        "gt_span": list(gt),
        "pred_text": text_before(_after_first_sentence(prediction.text), MASK_MARKER),
        "reference": text_before(_after_first_sentence(sample.ground_truth["answer"]), MASK_MARKER),
        "objects": _mask_rows(prediction, sample),
    }


def _mask_scores(rows: list[dict[str, Any]], ctx: ScoreContext) -> Scores:
    scores = jf_scores([obj for r in rows for obj in r["objects"]], ctx)
    scores.notes.extend([NOTE_FRAMES, NOTE_POOLED])
    return scores


def pixrqa_score(rows: list[dict[str, Any]], ctx: ScoreContext) -> Scores:
    return merge_scores(_mask_scores(rows, ctx), judge_scores(rows, ctx))


pixhqa_score = pixrqa_score


def pixtrqa_score(rows: list[dict[str, Any]], ctx: ScoreContext) -> Scores:
    return merge_scores(span_scores(rows), _mask_scores(rows, ctx), judge_scores(rows, ctx))


_JF = ("j", "f", "jf")
_JUDGE = ("sc", "ad", "td", "hd", "score_avg", "score_avg_no_td")
_SPANS = ("r_at_0_3", "r_at_0_5", "r_at_0_7", "miou")
_PUBLISHED = {
    "pixrqa": {"jf": 53.39, "j": 58.70, "f": 47.87, "score_avg": 3.35},
    "pixhqa": {"jf": 49.91, "j": 46.83, "f": 53.00},
    "pixtrqa": {"miou": 49.64, "r_at_0_5": 51.61, "jf": 32.25, "j": 31.42, "f": 33.08, "score_avg": 4.13},
}


def ufvideo_bench_layout(sample: Sample, seg_index: int, position: int) -> str:
    """`<id>/<object k>/<j>.png`, j indexing the predicted frames, as UFVideo's inference scripts write them."""
    return f"{sample.id}/{seg_index}/{position}.png"


PIXRQA = Benchmark(
    name="pixrqa",
    task="pixrqa",
    metrics=_JF + _JUDGE,
    split="test",
    load=pixrqa_load,
    prompt=pixrqa_prompt,
    parse=pixrqa_parse,
    score=pixrqa_score,
    published=_PUBLISHED["pixrqa"],
    paths={"annotations": f"{ROOT}/{FILES['pixrqa']}.json", "videos": VIDEOS},
    mask_layout=ufvideo_bench_layout,
    judged=True,
)

PIXHQA = Benchmark(
    name="pixhqa",
    task="pixhqa",
    metrics=_JF + _JUDGE,
    split="test",
    load=pixhqa_load,
    prompt=pixhqa_prompt,
    parse=pixhqa_parse,
    score=pixhqa_score,
    published=_PUBLISHED["pixhqa"],
    paths={"annotations": f"{ROOT}/{FILES['pixhqa']}.json", "videos": VIDEOS},
    mask_layout=ufvideo_bench_layout,
    judged=True,
    notes=("PixHQA's published SAvg columns (4.22 w T, 7.56 w/o T) are not reproducible from the public code",),
)

PIXTRQA = Benchmark(
    name="pixtrqa",
    task="pixtrqa",
    metrics=_SPANS + _JF + _JUDGE,
    split="test",
    load=pixtrqa_load,
    prompt=pixtrqa_prompt,
    parse=pixtrqa_parse,
    score=pixtrqa_score,
    published=_PUBLISHED["pixtrqa"],
    paths={"annotations": f"{ROOT}/{FILES['pixtrqa']}.json", "videos": VIDEOS},
    mask_layout=ufvideo_bench_layout,
    judged=True,
)
