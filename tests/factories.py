"""Small valid curated records of every task kind, for tests that need realistic input."""

from __future__ import annotations

from typing import Any

import numpy as np

from ufvideo.data.masks import encode_rle

H, W = 24, 32


def box_rle(y0: int, x0: int, y1: int, x1: int, h: int = H, w: int = W) -> dict[str, Any]:
    mask = np.zeros((h, w), bool)
    mask[y0:y1, x0:x1] = True
    return encode_rle(mask)


def turns(question: str, answer: str) -> list[dict[str, str]]:
    return [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]


def make_record(task: str, index: int = 0, source: str = "unit") -> dict[str, Any]:
    """A minimal valid record of `task`; each task gets the extra fields the schema requires of it."""
    record: dict[str, Any] = {
        "id": f"{source}/{task}-{index}",
        "source": source,
        "task": task,
        "video": f"videos/v{index}.mp4",
        "height": H,
        "width": W,
        "duration": 4.0,
        "fps": 8.0,
        "num_frames": 32,
    }
    question, answer = "<video>\nWhat is in the video?", "A red circle."
    if task == "mcqa":
        question, answer = "<video>\nWhich colour?\n(A) red\n(B) blue\nAnswer with the option's letter.", "A"
    elif task in ("referring", "pixrqa"):
        question = "<video>\nWhat is the highlighted object [<region>] doing?"
        record["regions"] = [{"3": box_rle(2, 2, 10, 10)}]
        record["region_mode"] = "single"
    if task in ("tvg", "dvc", "pixtrqa"):
        answer = "It appears during {<TEMP-010><TEMP-050>}."
    if task in ("rvos", "pixrqa", "pixhqa", "pixtrqa"):
        if task == "rvos":
            question = "<video>\nPlease segment the red circle in this image."
        answer += " The segmentation mask is [SEG]."
        record["targets"] = [{"3": box_rle(2, 2, 10, 10), "4": None, "5": box_rle(3, 3, 11, 11)}]
    record["conversations"] = turns(question, answer)
    return record
