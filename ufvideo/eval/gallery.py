"""The report's gallery: per task, the few best and worst samples as a person checks them: frames with the ground
truth (green) and predicted (magenta) masks, a time line of the true and predicted spans, and the question, the
reference answer and the model's answer. Written by the evaluation (`gallery.json` + PNGs), shown by the report.

Predicted masks are kept (as RLE) only while an evaluation runs (`capturing`); rows resumed from an interrupted
run have none, and the gallery says so instead of drawing an empty prediction.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ufvideo import drawing
from ufvideo.errors import UFVideoError
from ufvideo.eval.types import Prediction, Sample
from ufvideo.files import write_json

log = logging.getLogger(__name__)
GALLERY_DIR, GALLERY_FILE = "gallery", "gallery.json"
PER_END = 2  # best and worst samples shown per task
MAX_FRAMES = 4
FRAME_WIDTH = 192
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def capturing(predict: Callable[..., Iterable[Prediction]], store: dict[str, list[list[Any]]]) -> Callable:
    """`predict` that also keeps each prediction's mask tracks in `store` (id -> tracks of RLE per SAM frame).

    `functools.wraps` keeps the wrapped signature visible, so the keyword filter of the evaluation still passes only
    the settings the real function accepts."""
    from ufvideo.data.masks import encode_rle

    @functools.wraps(predict)
    def wrapped(*args: Any, **kwargs: Any) -> Iterator[Prediction]:
        for prediction in predict(*args, **kwargs):
            store[prediction.id] = [[encode_rle(np.asarray(m, bool)) for m in track] for track in prediction.masks]
            yield prediction

    return wrapped


def row_task(row: Mapping[str, Any], default: str) -> str:
    return str(row.get("task") or row.get("task_type") or row.get("type") or default)


def _iou(pred: Sequence[float] | None, truth: Sequence[float] | None) -> float:
    if not pred or not truth:
        return 0.0
    inter = max(0.0, min(pred[1], truth[1]) - max(pred[0], truth[0]))
    union = max(pred[1], truth[1]) - min(pred[0], truth[0])
    return inter / union if union > 0 else 0.0


def _jf(row: Mapping[str, Any]) -> float:
    if row.get("missing") or row.get("j") is None:
        return 0.0
    j, f = row["j"], row["f"]
    return (float(np.mean(j)) + float(np.mean(f))) / 2 if isinstance(j, list) else (float(j) + float(f)) / 2


def row_score(row: Mapping[str, Any]) -> float | None:
    """How good one prediction is, in [0, 1], from its parsed row; None where a row alone cannot say (free text
    scored by a judge or by corpus CIDEr)."""
    parts: list[float] = []
    if "correct" in row:
        parts.append(float(bool(row["correct"])))
    elif "pred_idx" in row and "gt_idx" in row:
        parts.append(float(row["pred_idx"] == row["gt_idx"]))
    elif "pred" in row and "answer" in row:
        parts.append(float(bool(row["pred"]) and str(row["answer"]).startswith(f"({row['pred']})")))
    if "gt_span" in row:
        parts.append(_iou(row.get("pred_span"), row["gt_span"]))
    if row.get("objects"):
        parts.append(float(np.mean([_jf(o) for o in row["objects"]])))
    elif "j" in row:
        parts.append(_jf(row))
    elif "J" in row:
        parts.append(0.0 if row.get("missing") else (float(row["J"] or 0) + float(row["F"] or 0)) / 2)
    return float(np.mean(parts)) if parts else None


def select(rows: Sequence[Mapping[str, Any]], default_task: str, per_end: int = PER_END) -> list[tuple[str, str, Any]]:
    """(task, "best" | "worst" | "sample", row) for the `per_end` best and worst rows of every task, in task order."""
    by_task: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_task.setdefault(row_task(row, default_task), []).append(row)
    chosen: list[tuple[str, str, Any]] = []
    for task, task_rows in by_task.items():
        scored = [r for r in task_rows if row_score(r) is not None]
        if not scored:
            chosen += [(task, "sample", r) for r in task_rows[: 2 * per_end]]
            continue
        ranked = sorted(scored, key=lambda r: -float(row_score(r) or 0.0))  # stable: ties keep sample order
        best = ranked[: min(per_end, (len(ranked) + 1) // 2)]  # a short task splits evenly into both ends
        worst = ranked[len(best) :][::-1][:per_end]
        chosen += [(task, "best", r) for r in best] + [(task, "worst", r) for r in worst]
    return chosen


def _positions(count: int, limit: int = MAX_FRAMES) -> list[int]:
    if count <= limit:
        return list(range(count))
    return sorted({round(i * (count - 1) / (limit - 1)) for i in range(limit)})


def _tracks(sample: Sample, rles: list[list[Any]] | None, shape: tuple[int, int]) -> list[np.ndarray]:
    from ufvideo.data.masks import decode_rle

    return [np.stack([decode_rle(r, *shape) for r in track]) for track in rles or [] if track]


def picture(sample: Sample, row: Mapping[str, Any], predicted: list[list[Any]] | None) -> np.ndarray | None:
    """Frames (SAM frames with masks where the sample has them, else a few of the video's) and the span time line."""
    from ufvideo.data.video import clip_indices, probe, read_frames
    from ufvideo.eval.benchmarks.common import sample_ground_truth_masks

    if sample.sam_frames:
        positions = _positions(len(sample.sam_frames))
        indices = [sample.sam_frames[p] for p in positions]
    else:
        positions, indices = [], clip_indices(probe(sample.video, fps_hint=sample.fps), MAX_FRAMES)
    frames = read_frames(sample.video, indices)
    shape = frames.shape[1:3]
    truth: list[np.ndarray] = []
    if positions and sample.ground_truth.get("masks") or sample.ground_truth.get("png"):
        count = len(sample.ground_truth.get("masks") or [None])
        truth = [sample_ground_truth_masks(sample, k, shape) for k in range(count)]
    pred = _tracks(sample, predicted, shape)
    factor = max(1, FRAME_WIDTH // max(shape[1], 1))
    tiles = []
    for n, index in enumerate(indices):
        tile = frames[n]
        if positions:
            p = positions[n]
            tile = drawing.overlay(tile, [t[p] for t in truth], [drawing.TRUTH_COLOUR] * len(truth), alpha=0.35)
            tile = drawing.overlay(tile, [t[p] for t in pred if p < len(t)], [drawing.SEG_COLOURS[0]] * len(pred))
        tiles.append(drawing.label(drawing.upscale(tile, factor), f"frame {index}"))
    image = drawing.strip(tiles)
    if "gt_span" in row:
        predicted_spans = [row["pred_span"]] if row.get("pred_span") else []
        bar = drawing.timeline(image.shape[1], 1.0, predicted_spans, [row["gt_span"]], height=24)
        image = drawing.stack([image, bar])
    return image


def _text(sample: Sample, row: Mapping[str, Any]) -> dict[str, str]:
    turns = sample.conversation
    question = next((t["value"] for t in turns if t["from"] == "human"), "")
    reference = row.get("reference") or sample.ground_truth.get("answer") or sample.ground_truth.get("caption") or ""
    if not reference and sample.meta.get("candidates") and "gt_idx" in row and row["gt_idx"] >= 0:
        reference = sample.meta["candidates"][row["gt_idx"]]
    return {"question": question, "answer": str(reference), "prediction": str(row.get("output", ""))}


def write(
    out: Path,
    default_task: str,
    samples: Sequence[Sample],
    rows: Sequence[Mapping[str, Any]],
    predicted: Mapping[str, list[list[Any]]],
    per_end: int = PER_END,
) -> Path:
    """Render the selected samples into `out/gallery/` and list them in `out/gallery.json`."""
    by_id = {s.id: s for s in samples}
    entries = []
    for task, kind, row in select(rows, default_task, per_end):
        sample = by_id[row["id"]]
        entry: dict[str, Any] = {"task": task, "kind": kind, "id": sample.id, "score": row_score(row)}
        entry.update(_text(sample, row))
        has_masks = bool(sample.sam_frames)
        entry["masks"] = "kept" if sample.id in predicted else ("not kept (resumed row)" if has_masks else "none")
        try:
            image = picture(sample, row, predicted.get(sample.id))
        except (UFVideoError, OSError, ValueError) as exc:  # a gallery picture must never fail an evaluation
            log.warning("gallery: no picture for %s: %s", sample.id, exc)
            image = None
        if image is not None:
            relative = f"{GALLERY_DIR}/{_SAFE.sub('_', task)}/{kind}-{_SAFE.sub('_', sample.id)}.png"
            drawing.save_png(out / relative, image)
            entry["image"] = relative
        entries.append(entry)
    write_json(out / GALLERY_FILE, entries)
    return out / GALLERY_FILE
