"""Helpers the benchmark modules share: reading annotation files, the public prompt shapes, and scoring of mask
tracks (J/F), time spans (R@IoU, mIoU), judge-rated text and CIDEr-D, all through `ufvideo.eval.metrics`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ufvideo.data.masks import decode_rle
from ufvideo.data.templates import RVOS_EVAL_QUESTION
from ufvideo.eval import metrics as M
from ufvideo.eval.registry import FRAME_POOLED, ScoreContext, Scores
from ufvideo.eval.types import Prediction, Rle, Sample, Turn

RVOS_ANSWER = "Sure, [SEG]."
JUDGE_DIMENSIONS = ("sc", "ad", "td", "hd")
NO_JUDGE_NOTE = "judge metrics not computed: no judge configured (set UFVIDEO_JUDGE_BASE_URL and UFVIDEO_JUDGE_MODEL)"


def video_turns(text: str) -> list[Turn]:
    """One human turn with `<video>` at its head, as `mm_infer(choice=1)` builds it."""
    return [{"from": "human", "value": f"<video>\n{text}"}]


def rvos_turns(expression: str) -> list[Turn]:
    """The public MeViS evaluation prompt: lower-cased expression, and the answer "Sure, [SEG]." fed in (teacher
    forcing), so the `[SEG]` state is read from one forward pass."""
    question = RVOS_EVAL_QUESTION.format(expr=expression.lower())
    return [*video_turns(question), {"from": "gpt", "value": RVOS_ANSWER}]


def frame_masks(annotation: Mapping[str, Any] | None) -> dict[int, Rle | None]:
    """`{frame str: {"segmentation": RLE|None} | None}` -> `{int frame: RLE | None}` in frame order."""
    out: dict[int, Rle | None] = {}
    for key, value in (annotation or {}).items():
        seg = value.get("segmentation") if isinstance(value, Mapping) else None
        out[int(key)] = seg if seg else None
    return dict(sorted(out.items()))


def sample_ground_truth_masks(sample: Sample, seg_index: int, shape: tuple[int, int]) -> np.ndarray:
    """(S, H, W) bool ground truth of `[SEG]` number `seg_index` on the sample's SAM frames.

    `ground_truth["masks"][k]` holds one RLE or None (object absent: an empty mask) per SAM frame; Ref-DAVIS17
    instead names palette PNGs (`ground_truth["png"]`, pixel == `obj_id`).
    """
    gt = sample.ground_truth
    if "png" in gt:
        from PIL import Image

        obj = int(gt["obj_id"])
        return np.stack([np.asarray(Image.open(p)) == obj for p in gt["png"]])
    frames: Sequence[Rle | None] = gt["masks"][seg_index]
    h, w = shape
    return np.stack([decode_rle(r, h, w) if r else np.zeros((h, w), dtype=bool) for r in frames])


def mask_row(prediction: Prediction, sample: Sample, seg_index: int = 0) -> dict[str, Any]:
    """Per-frame J and F (fractions) of one predicted track against its ground truth.

    A missing track gives `missing: True` and no values: it scores 0 per expression (the MeViS protocol) and is
    skipped when frame-pooled (UFVideo's scripts).
    """
    if seg_index >= len(prediction.masks) or prediction.masks[seg_index] is None:
        return {"j": None, "f": None, "missing": True}
    pred = np.asarray(prediction.masks[seg_index]).astype(bool)
    if pred.ndim != 3 or len(pred) != len(sample.sam_frames or []):
        raise ValueError(
            f"sample {sample.id}: mask track {seg_index} has shape {pred.shape}, "
            f"expected ({len(sample.sam_frames or [])}, H, W) for its SAM frames"
        )
    gt = sample_ground_truth_masks(sample, seg_index, pred.shape[1:])
    if gt.shape != pred.shape:
        raise ValueError(f"sample {sample.id}: predicted masks {pred.shape} but ground truth {gt.shape}")
    j, f = M.region_and_contour(pred, gt)
    return {"j": [round(float(v), 6) for v in j], "f": [round(float(v), 6) for v in f], "missing": False}


def jf_scores(rows: Sequence[Mapping[str, Any]], ctx: ScoreContext, prefix: str = "") -> Scores:
    """J, F, J&F in percent with the chosen aggregation, plus J&F per video for the report."""
    if not rows:
        return Scores({f"{prefix}j": None, f"{prefix}f": None, f"{prefix}jf": None}, ["no samples to score"])
    label = M.FRAME_POOLED if ctx.aggregation == FRAME_POOLED else M.PER_EXPRESSION
    report = M.jf_report([r["j"] for r in rows], [r["f"] for r in rows], aggregation=label)
    metrics = {f"{prefix}j": 100 * report["J"], f"{prefix}f": 100 * report["F"], f"{prefix}jf": 100 * report["J&F"]}
    missing = sum(1 for r in rows if r.get("missing"))
    notes = [f"J/F aggregation: {label}"]
    if missing:
        rule = "skipped (frame-pooled)" if ctx.aggregation == FRAME_POOLED else "scored 0 (MeViS protocol)"
        notes.append(f"{missing} sample(s) without a predicted mask track: {rule}")
    per_video: dict[str, list[float]] = {}
    for r in rows:
        jf = 0.0 if r["j"] is None else (float(np.mean(r["j"])) + float(np.mean(r["f"]))) / 2
        per_video.setdefault(str(r.get("video") or r.get("id")), []).append(100 * jf)
    details = {"jf_per_video": {k: float(np.mean(v)) for k, v in sorted(per_video.items())}}
    return Scores(metrics, notes, details, aggregation=ctx.aggregation)


def span_scores(rows: Sequence[Mapping[str, Any]], prefix: str = "") -> Scores:
    """R@0.3/0.5/0.7 (IoU strictly above, UFVideo) and mIoU, both in percent; unparsed spans score IoU 0."""
    names = [f"{prefix}r_at_0_3", f"{prefix}r_at_0_5", f"{prefix}r_at_0_7", f"{prefix}miou"]
    if not rows:
        return Scores(dict.fromkeys(names), ["no samples to score"])
    preds = [r["pred_span"] for r in rows]
    gts = [r["gt_span"] for r in rows]
    ious = M.span_ious(preds, gts)
    metrics = {
        names[0]: 100 * M.recall_at_iou(ious, 0.3),
        names[1]: 100 * M.recall_at_iou(ious, 0.5),
        names[2]: 100 * M.recall_at_iou(ious, 0.7),
        names[3]: 100 * M.mean_iou(ious),
    }
    unparsed = sum(1 for p in preds if p is None)
    notes = ["R@m counts IoU > m (strict, as UFVideo's eval_video_TVG.py); mIoU x 100"]
    if unparsed:
        notes.append(f"{unparsed} prediction(s) without a parsable span scored IoU 0")
    return Scores(metrics, notes, {"ious": [round(v, 6) for v in ious]})


def judge_scores(rows: Sequence[Mapping[str, Any]], ctx: ScoreContext, prefix: str = "") -> Scores:
    """The four 0-5 judge dimensions, their average (`score_avg`) and the average without TD.

    Without a judge every judge metric is None with a note; nothing is ever substituted by string matching.
    """
    names = [f"{prefix}{d}" for d in JUDGE_DIMENSIONS] + [f"{prefix}score_avg", f"{prefix}score_avg_no_td"]
    if ctx.judge is None:
        return Scores(dict.fromkeys(names), [NO_JUDGE_NOTE])
    per_dim: dict[str, list[float]] = {d: [] for d in JUDGE_DIMENSIONS}
    failed = 0
    pairs = [(r["reference"], r["pred_text"]) for r in rows]
    if hasattr(ctx.judge, "score_many"):
        results = ctx.judge.score_many(pairs)
    else:
        results = [ctx.judge.score(reference=ref, prediction=pred) for ref, pred in pairs]
    for result in results:
        if result is None:
            failed += 1
            continue
        for d in JUDGE_DIMENSIONS:
            if d in result:
                per_dim[d].append(float(result[d]))
    means = {d: (float(np.mean(v)) if v else None) for d, v in per_dim.items()}
    metrics: dict[str, float | None] = {f"{prefix}{d}": means[d] for d in JUDGE_DIMENSIONS}
    have = [means[d] for d in JUDGE_DIMENSIONS]
    metrics[f"{prefix}score_avg"] = float(np.mean(have)) if all(v is not None for v in have) else None
    no_td = [means[d] for d in ("sc", "ad", "hd")]
    metrics[f"{prefix}score_avg_no_td"] = float(np.mean(no_td)) if all(v is not None for v in no_td) else None
    notes = [f"judge {ctx.judge.describe()}: 0-5 per dimension, averaged over judged items"]
    if failed:
        notes.append(f"{failed} item(s) got no parsable judgment and are left out of the judge averages")
    return Scores(metrics, notes, {"judge_usage": ctx.judge.usage()})


def cider_scores(rows: Sequence[Mapping[str, Any]], prefix: str = "") -> Scores:
    """CIDEr-D of `pred_text` against `reference` over these rows (their references are the IDF corpus).

    A reference-based figure reported *beside* the judge's, never in its place: on data with exact references
    (the synthetic benchmark) it tells whether the text names the right things when no judge is configured.
    """
    score, per_item = M.cider_d_text([r["pred_text"] for r in rows], [[r["reference"]] for r in rows])
    notes = [f"{prefix}cider: CIDEr-D (COCO caption toolkit formula, x10 scale as the toolkit returns it)"]
    if len(rows) == 1:
        notes.append(f"{prefix}cider: a single item has no IDF corpus and always scores 0")
    return Scores({f"{prefix}cider": score}, notes, {"cider_per_item": [round(v, 6) for v in per_item]})


def event_scores(rows: Sequence[Mapping[str, Any]], prefix: str = "") -> Scores:
    """Dense-caption event localisation (`pred_spans` vs `gt_spans` per row) in percent, as densevid_eval."""
    result = M.event_detection([r["pred_spans"] for r in rows], [r["gt_spans"] for r in rows])
    metrics = {f"{prefix}event_{k}": 100.0 * v for k, v in result.items()}
    tious = ", ".join(f"{t:g}" for t in M.DENSE_TIOUS)
    note = f"{prefix}event_*: densevid_eval localisation (tIoU > t, t in {tious}); f1 of the averaged P and R"
    return Scores(metrics, [note])


def merge_scores(*parts: Scores, aggregation: str | None = None) -> Scores:
    """One Scores from several; details of the same name add up (lists concatenate, mappings unite) so a report
    over several tasks plots all of them, not the last one."""
    metrics: dict[str, float | None] = {}
    notes: list[str] = []
    details: dict[str, Any] = {}
    for part in parts:
        metrics.update(part.metrics)
        notes.extend(n for n in part.notes if n not in notes)
        for key, value in part.details.items():
            seen = details.get(key)
            if isinstance(seen, list) and isinstance(value, list):
                details[key] = seen + value
            elif isinstance(seen, dict) and isinstance(value, dict):
                details[key] = {**seen, **value}
            else:
                details[key] = value
        aggregation = aggregation or part.aggregation
    return Scores(metrics, notes, details, aggregation)


def text_before(text: str, marker: str) -> str:
    """The answer text before `marker` (UFVideo-Bench splits at "The segmentation mask"), stripped."""
    return text.split(marker, 1)[0].strip()
