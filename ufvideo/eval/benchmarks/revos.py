"""ReVOS val: referring (type_id 0) and reasoning (type_id 1) expressions scored with J, F, J&F, pixel accuracy A
and robustness R (VISA's `eval_revos.py` protocol: percent rounded per expression, overall = mean of the groups).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ufvideo.data.masks import decode_rle
from ufvideo.errors import DataError
from ufvideo.eval import metrics as M
from ufvideo.eval.benchmarks.common import sample_ground_truth_masks
from ufvideo.eval.benchmarks.roots import benchmark_root
from ufvideo.eval.benchmarks.rvos import (
    meta_videos,
    mevis_layout,
    rvos_prompt,
    rvos_sample,
    sorted_expressions,
    union_track,
)
from ufvideo.eval.registry import Benchmark, ScoreContext, Scores
from ufvideo.eval.types import Prediction, Sample
from ufvideo.files import read_json

GROUPS = ("referring", "reasoning", "overall")
KEYS = {"J": "j", "F": "f", "J&F": "jf", "A": "a", "R": "r"}


def revos_load(data_root: Path, split: str = "valid") -> Iterator[Sample]:
    root = benchmark_root(data_root, ("ReVOS",), (f"meta_expressions_{split}_.json",), "ReVOS")
    videos = meta_videos(root / f"meta_expressions_{split}_.json")
    mask_dict = read_json(root / "mask_dict.json")
    foreground = read_json(root / "mask_dict_foreground.json")
    for vid, video in videos.items():
        frames = [str(f) for f in video["frames"]]
        if vid not in foreground:
            raise DataError(f"{root / 'mask_dict_foreground.json'}: no entry for video {vid}")
        fg = foreground[vid]["masks_rle"]
        for exp_id, exp in sorted_expressions(video):
            where = f"{root}/meta_expressions_{split}_.json: video {vid} expression {exp_id}"
            gt = {"masks": [union_track(mask_dict, list(exp["anno_id"]), len(frames), where)], "foreground": fg}
            yield rvos_sample(
                "revos",
                root / "JPEGImages",
                vid,
                frames,
                exp_id,
                exp["exp"],
                ground_truth=gt,
                type_id=int(exp["type_id"]),
            )


def revos_parse(prediction: Prediction, sample: Sample, strict: bool = False) -> dict[str, Any]:
    """J, F, A and R of one expression as fractions (None when the mask track is missing: all four score 0).

    A is computed on 0/1 masks, the intended metric; VISA reads predictions as 0/255, so its A never credits
    foreground pixels (METRICS.md section 3).
    """
    row: dict[str, Any] = {"video": sample.meta["video"], "exp_id": sample.meta["exp_id"]}
    row["type_id"] = sample.meta["type_id"]
    if not prediction.masks:
        return {**row, "missing": True, **dict.fromkeys(("J", "F", "A", "R"))}
    pred = np.asarray(prediction.masks[0]).astype(bool)
    gt = sample_ground_truth_masks(sample, 0, pred.shape[1:])
    h, w = pred.shape[1:]
    fg = np.stack([decode_rle(r, h, w) if r else np.zeros((h, w), bool) for r in sample.ground_truth["foreground"]])
    values = M.revos_expression(pred, gt, fg)
    return {**row, "missing": False, **{k: round(v, 6) for k, v in values.items()}}


def revos_score(rows: list[dict[str, Any]], ctx: ScoreContext) -> Scores:
    names = [f"{g}_{k}" if g != "overall" else k for g in GROUPS for k in KEYS.values()]
    if not rows:
        return Scores(dict.fromkeys(names), ["no samples to score"])
    report = M.revos_report(rows)
    metrics: dict[str, float | None] = {}
    for group in GROUPS:
        for key, name in KEYS.items():
            value = float(report[group][key])
            metrics[name if group == "overall" else f"{group}_{name}"] = None if np.isnan(value) else value
    notes = [
        "per-expression values in percent rounded to 2 decimals before averaging; overall = (referring + reasoning)/2",
        "type_id 2 (no-target) expressions are in neither group; A on 0/1 masks (not VISA's 0/255 quirk)",
    ]
    missing = sum(1 for r in rows if r.get("missing"))
    if missing:
        notes.append(f"{missing} expression(s) without a predicted mask track scored 0")
    per_video: dict[str, list[float]] = {}
    for r in rows:
        per_video.setdefault(r["video"], []).append(0.0 if r["J"] is None else 50 * (r["J"] + r["F"]))
    details = {"jf_per_video": {k: float(np.mean(v)) for k, v in sorted(per_video.items())}}
    return Scores(metrics, notes, details, aggregation="per_expression")


BENCHMARK = Benchmark(
    name="revos",
    task="rvos",
    metrics=("j", "f", "jf", "a", "r", *(f"{g}_{k}" for g in GROUPS[:2] for k in KEYS.values())),
    split="valid",
    load=revos_load,
    prompt=rvos_prompt,
    parse=revos_parse,
    score=revos_score,
    published={"jf": 64.8, "j": 62.7, "f": 66.9, "referring_j": 65.4, "reasoning_j": 59.8},
    paths={"root": "ReVOS"},
    mask_layout=mevis_layout,
    notes=("referring_j and reasoning_j published values come from third-party summaries of the paper appendix",),
)
