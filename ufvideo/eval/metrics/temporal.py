"""Temporal grounding metrics: tIoU, recall at an IoU threshold and the Charades-STA / PixTRQA summary.

Follows UFVideo's `eval_video_TVG.py` (strict ">" hits, unparsed or [0, 0] spans score IoU 0 but stay in
the denominator, mIoU as a fraction); `strict=False` and `order_spans=True` give the lmms-eval convention.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def temporal_iou(pred: Sequence[float], gt: Sequence[float]) -> float:
    """IoU over the hull with endpoints used as given (not sorted or clipped), as the UFVideo script.

    Disjoint, touching, zero-length and reversed predictions give 0. Where the hull is empty or negative
    (e.g. pred == gt == [t, t]) the official script divides by zero; we return 0.0 instead.
    """
    p0, p1 = float(pred[0]), float(pred[1])
    g0, g1 = float(gt[0]), float(gt[1])
    inter = max(min(p1, g1) - max(p0, g0), 0.0)
    hull = max(p1, g1) - min(p0, g0)
    if hull <= 0:
        return 0.0
    return max(0.0, inter / hull)


def recall_at_iou(ious: Iterable[float], threshold: float, strict: bool = True) -> float:
    """Fraction of IoUs above `threshold`: IoU > threshold when strict (UFVideo), >= otherwise (lmms-eval)."""
    values = np.asarray(list(ious), dtype=np.float64)
    if values.size == 0:
        raise ValueError("recall_at_iou: no IoU values (the official script divides by zero here)")
    hits = values > threshold if strict else values >= threshold
    return float(np.count_nonzero(hits) / values.size)


def mean_iou(ious: Iterable[float]) -> float:
    """Mean IoU as a fraction in [0, 1]; the sum over N, exactly as `sum / N` in the official script."""
    values = [float(v) for v in ious]
    if not values:
        raise ValueError("mean_iou: no IoU values (the official script divides by zero here)")
    return sum(values) / len(values)


def _is_invalid(span: Sequence[float] | None) -> bool:
    return span is None or (float(span[0]) == 0.0 and float(span[1]) == 0.0)


def span_ious(
    preds: Sequence[Sequence[float] | None],
    gts: Sequence[Sequence[float]],
    duration: Sequence[float] | None = None,
    order_spans: bool = False,
) -> list[float]:
    """Per-sample IoU, with an unparsed (None) or [0, 0] prediction scoring 0 as the UFVideo script skips it.

    `duration` (seconds per sample) rescales relative spans as the script does before the IoU; it changes
    values only by float rounding. `order_spans` swaps reversed predictions, as lmms-eval does.
    """
    if len(preds) != len(gts):
        raise ValueError(f"span_ious: {len(preds)} predictions for {len(gts)} ground-truth spans")
    if duration is not None and len(duration) != len(gts):
        raise ValueError(f"span_ious: {len(duration)} durations for {len(gts)} samples")
    ious = []
    for i, (pred, gt) in enumerate(zip(preds, gts)):
        scale = 1.0 if duration is None else float(duration[i])
        if _is_invalid(pred):
            ious.append(0.0)
            continue
        p = [float(pred[0]) * scale, float(pred[1]) * scale]
        if _is_invalid(p):
            ious.append(0.0)
            continue
        if order_spans and p[0] > p[1]:
            p = [p[1], p[0]]
        ious.append(temporal_iou(p, [float(gt[0]) * scale, float(gt[1]) * scale]))
    return ious


def grounding_scores(
    preds: Sequence[Sequence[float] | None],
    gts: Sequence[Sequence[float]],
    thresholds: Sequence[float] = (0.3, 0.5, 0.7),
    strict: bool = True,
    duration: Sequence[float] | None = None,
    order_spans: bool = False,
) -> dict[str, float | str]:
    """Charades-STA / PixTRQA summary: `R@m` in percent per threshold and `mIoU` as a fraction.

    The `convention` entry names the hit rule used, since strict and inclusive differ on exact ties.
    """
    ious = span_ious(preds, gts, duration=duration, order_spans=order_spans)
    scores: dict[str, float | str] = {f"R@{m:g}": 100.0 * recall_at_iou(ious, m, strict=strict) for m in thresholds}
    scores["mIoU"] = mean_iou(ious)
    scores["convention"] = "IoU > m (UFVideo)" if strict else "IoU >= m (lmms-eval)"
    return scores


# The ActivityNet Captions dense-captioning evaluation (densevid_eval) averages its localisation figures over these.
DENSE_TIOUS = (0.3, 0.5, 0.7, 0.9)


def dense_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """densevid_eval's tIoU: intersection / (union + 1e-8), the union being min(hull, |a| + |b|)."""
    inter = max(0.0, min(float(a[1]), float(b[1])) - max(float(a[0]), float(b[0])))
    hull = max(float(a[1]), float(b[1])) - min(float(a[0]), float(b[0]))
    union = min(hull, (float(a[1]) - float(a[0])) + (float(b[1]) - float(b[0])))
    return inter / (union + 1e-8)


def event_detection(
    preds: Sequence[Sequence[Sequence[float]]],
    gts: Sequence[Sequence[Sequence[float]]],
    tious: Sequence[float] = DENSE_TIOUS,
) -> dict[str, float]:
    """Dense-captioning event localisation as densevid_eval scores it: per video and tIoU, precision = predicted
    events overlapping some reference event by tIoU > t over all predicted events (0 with none), recall = reference
    events hit by some prediction over all reference events; each averaged over videos, then over thresholds.

    Returned as fractions, with `f1` the harmonic mean of the two averages (the figure TimeChat-style papers add).
    """
    if len(preds) != len(gts):
        raise ValueError(f"event_detection: {len(preds)} prediction lists for {len(gts)} videos")
    if not gts:
        raise ValueError("event_detection: no videos")
    empty = [i for i, g in enumerate(gts) if not g]
    if empty:
        raise ValueError(f"event_detection: video(s) {empty[:5]} have no reference event")
    # (predicted events x reference events) tIoU per video, computed once and thresholded per tIoU
    ious = [
        np.array([[dense_iou(p, g) for g in gt] for p in pred]).reshape(len(pred), len(gt))
        for pred, gt in zip(preds, gts, strict=True)
    ]
    precision, recall = [], []
    for t in tious:
        hits = [m > t for m in ious]
        precision.append(float(np.mean([h.any(axis=1).mean() if h.shape[0] else 0.0 for h in hits])))
        recall.append(float(np.mean([h.any(axis=0).mean() for h in hits])))
    p, r = float(np.mean(precision)), float(np.mean(recall))
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r > 0 else 0.0}
