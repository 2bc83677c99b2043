"""Benchmark aggregations: per-expression and frame-pooled J/F, ReVOS groups, DAVIS recall/decay, MVBench
and VideoRefer-Bench-Q accuracies. Every report carries an `aggregation` label saying how it averaged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from ufvideo.eval.metrics.masks import pixel_accuracy, region_and_contour, robustness
from ufvideo.eval.metrics.parsing import videorefer_answer_letter

PER_EXPRESSION = "per-expression mean"
FRAME_POOLED = "frame-pooled mean"
AGGREGATIONS = (PER_EXPRESSION, FRAME_POOLED)
REVOS_GROUPS = {0: "referring", 1: "reasoning"}

FrameValues = Sequence[float] | np.ndarray | None


def per_expression_mean(per_expression: Sequence[FrameValues]) -> float:
    """Mean over expressions of each expression's mean over all its frames (MeViS, ReVOS, DAVIS-style).

    None marks an expression whose prediction is missing: it scores 0, as in the MeViS protocol.
    """
    if len(per_expression) == 0:
        raise ValueError("per_expression_mean: no expressions")
    means = []
    for i, frames in enumerate(per_expression):
        if frames is None:
            means.append(0.0)
            continue
        values = np.asarray(frames, dtype=np.float64)
        if values.size == 0:
            raise ValueError(f"per_expression_mean: expression {i} has no frames")
        means.append(float(values.mean()))
    return float(np.mean(means))


def frame_pooled_mean(per_expression: Sequence[FrameValues]) -> float:
    """Mean over every evaluated frame of every sample (UFVideo's own scripts); None samples are skipped."""
    pooled = [np.asarray(f, dtype=np.float64).ravel() for f in per_expression if f is not None]
    values = np.concatenate(pooled) if pooled else np.empty(0)
    if values.size == 0:
        raise ValueError("frame_pooled_mean: no frames to average")
    return float(values.mean())


def jf_report(
    j_frames: Sequence[FrameValues], f_frames: Sequence[FrameValues], aggregation: str = PER_EXPRESSION
) -> dict[str, float | str]:
    """Dataset J, F and J&F (fractions) from per-expression per-frame values, labelled with the aggregation.

    Per-expression: J&F = (J + F) / 2 of the dataset means. Frame-pooled: J&F = mean of per-frame (J+F)/2,
    as UFVideo's `eval_video_MeVis.py` prints it.
    """
    if len(j_frames) != len(f_frames):
        raise ValueError(f"jf_report: {len(j_frames)} J entries but {len(f_frames)} F entries")
    if aggregation == PER_EXPRESSION:
        j, f = per_expression_mean(j_frames), per_expression_mean(f_frames)
        return {"J": j, "F": f, "J&F": (j + f) / 2, "aggregation": aggregation}
    if aggregation == FRAME_POOLED:
        jf = [
            None if a is None else (np.asarray(a, float) + np.asarray(b, float)) / 2 for a, b in zip(j_frames, f_frames)
        ]
        return {
            "J": frame_pooled_mean(j_frames),
            "F": frame_pooled_mean(f_frames),
            "J&F": frame_pooled_mean(jf),
            "aggregation": aggregation,
        }
    raise ValueError(f"jf_report: aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")


def revos_expression(
    pred: np.ndarray, gt: np.ndarray, foreground: np.ndarray, bound_th: float = 0.008
) -> dict[str, float]:
    """One ReVOS expression: mean over all frames of J, F, A and R, as fractions (before the x100 rounding)."""
    j, f = region_and_contour(pred, gt, bound_th)
    acc = np.atleast_1d(pixel_accuracy(pred, gt))
    rob = np.atleast_1d(robustness(pred, gt, foreground))
    return {"J": float(j.mean()), "F": float(f.mean()), "A": float(acc.mean()), "R": float(rob.mean())}


def revos_report(expressions: Iterable[Mapping[str, float | int | None]]) -> dict[str, object]:
    """ReVOS referring / reasoning / overall J, F, J&F, A and R in percent, as VISA's `eval_revos.py`.

    Each expression gives `type_id` (0 referring, 1 reasoning, 2 in no group) and fractions J, F, A, R
    (None for a missing prediction: all four score 0). Each value is rounded to round(100 * x, 2) before
    averaging; group J&F = (group J + group F) / 2; overall = (referring + reasoning) / 2 per metric.
    An empty group gives NaN, as numpy's mean of nothing in the public script.
    """
    groups: dict[str, dict[str, list[float]]] = {name: {k: [] for k in "JFAR"} for name in REVOS_GROUPS.values()}
    for i, expr in enumerate(expressions):
        if "type_id" not in expr:
            raise ValueError(f"revos_report: expression {i} has no type_id")
        group = REVOS_GROUPS.get(int(expr["type_id"]))  # type: ignore[arg-type]
        if group is None:
            continue
        for key in "JFAR":
            value = expr.get(key)
            groups[group][key].append(round(100 * float(value or 0.0), 2))
    report: dict[str, object] = {}
    for name, values in groups.items():
        means = {k: float(np.mean(v)) if v else float("nan") for k, v in values.items()}
        report[name] = {**means, "J&F": (means["J"] + means["F"]) / 2}
    ref, rea = report["referring"], report["reasoning"]
    report["overall"] = {k: (ref[k] + rea[k]) / 2 for k in ref}  # type: ignore[index]
    report["aggregation"] = f"{PER_EXPRESSION}, percent rounded per expression; overall = mean of the two groups"
    return report


def davis_recall(values: Sequence[float], threshold: float = 0.5) -> float:
    """DAVIS R: fraction of (non-NaN) per-frame values strictly above `threshold`."""
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    return float(np.mean(x > threshold))


def davis_decay(values: Sequence[float], n_bins: int = 4) -> float:
    """DAVIS D: mean of the first quarter minus mean of the last, bins edged at round(linspace(1, T, 5)) - 1.

    Bins include their right edge, so neighbouring bins share a frame, as in the official code.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    edges = (np.round(np.linspace(1, len(x), n_bins + 1) + 1e-10) - 1).astype(np.int64)
    bins = [x[edges[i] : edges[i + 1] + 1] for i in range(n_bins)]
    return float(np.mean(bins[0]) - np.mean(bins[-1]))


def mvbench_report(records: Iterable[tuple[str, int, int]]) -> dict[str, object]:
    """MVBench accuracy in percent from (task_type, pred_idx, gt_idx): per task and overall (micro).

    `macro` (mean of the task accuracies) is added for reference; it equals `overall` on the full set
    (200 questions per task).
    """
    right: dict[str, int] = {}
    total: dict[str, int] = {}
    for task, pred, gt in records:
        total[task] = total.get(task, 0) + 1
        right[task] = right.get(task, 0) + int(int(pred) == int(gt))
    if not total:
        raise ValueError("mvbench_report: no records")
    per_task = {task: 100.0 * right[task] / total[task] for task in total}
    return {
        "per_task": per_task,
        "overall": 100.0 * sum(right.values()) / sum(total.values()),
        "macro": float(np.mean(list(per_task.values()))),
        "aggregation": "overall = micro average over questions",
    }


def videorefer_q_report(records: Iterable[tuple[str, str | None, str]]) -> dict[str, object]:
    """VideoRefer-Bench-Q accuracy (fractions) from (type, parsed letter, Answer): per type and overall micro.

    The ground truth is the letter in the Answer's first "(X)"; letters compare case-insensitively. A None
    prediction (where the public script would crash) counts as wrong and is tallied in `unparsed`.
    """
    right: dict[str, int] = {}
    total: dict[str, int] = {}
    unparsed = 0
    for qtype, pred, answer in records:
        total[qtype] = total.get(qtype, 0) + 1
        gt = videorefer_answer_letter(answer)
        if pred is None:
            unparsed += 1
        ok = pred is not None and pred.lower() == gt.lower()
        right[qtype] = right.get(qtype, 0) + int(ok)
    if not total:
        raise ValueError("videorefer_q_report: no records")
    return {
        "per_type": {qtype: right[qtype] / total[qtype] for qtype in total},
        "overall": sum(right.values()) / sum(total.values()),
        "unparsed": unparsed,
        "aggregation": "overall = micro average over questions",
    }
