"""Fixture writers shared by the benchmark loader tests: masks, RLEs, frame folders and JSON files on disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ufvideo.data.masks import encode_rle
from ufvideo.eval.types import Prediction


def box(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros((h, w), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def rle_box(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> dict[str, Any]:
    return encode_rle(box(h, w, y0, y1, x0, x1))


def dump(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def frames(folder: Path, names: list[str], h: int = 16, w: int = 24, suffix: str = ".jpg") -> list[Path]:
    """Tiny real images, so loaders that list or open frames see genuine files."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(names):
        path = folder / f"{name}{suffix}"
        Image.fromarray(np.full((h, w, 3), 10 * i, dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def text(sample_id: str, output: str) -> Prediction:
    return Prediction(id=sample_id, text=output)


def oracle_prediction(sample: Any) -> Prediction:
    """A perfect answer derived from a synthetic sample's ground truth: the reference text and the exact masks."""
    from ufvideo.data.masks import decode_rle

    h, w = sample.height, sample.width
    masks = [
        np.stack([decode_rle(r, h, w) if r else np.zeros((h, w), dtype=bool) for r in track])
        for track in sample.ground_truth.get("masks", [])
    ]
    return Prediction(id=sample.id, text="" if sample.teacher_forced else sample.ground_truth["answer"], masks=masks)


MEVIS_H, MEVIS_W = 16, 24
MEVIS_FRAMES = ["00000", "00001", "00002"]
# Object masks of the MeViS fixture: anno 7 = A, -, A2; anno 6 = B, B, -; anno 8 = C, -, -.
MEVIS_A, MEVIS_A2 = box(MEVIS_H, MEVIS_W, 2, 8, 2, 8), box(MEVIS_H, MEVIS_W, 3, 9, 3, 9)
MEVIS_B, MEVIS_C = box(MEVIS_H, MEVIS_W, 8, 14, 10, 20), box(MEVIS_H, MEVIS_W, 0, 3, 0, 3)


def mevis_fixture(root: Path, split: str = "valid_u") -> Path:
    """MeViS `<split>/` with one video of three frames and three expressions (one over two objects)."""
    base = root / "mevis" / split
    frames(base / "JPEGImages" / "0ab4afe7fb46", MEVIS_FRAMES, MEVIS_H, MEVIS_W)
    exps = {
        "0": {"exp": "The Bird flying away", "obj_id": [1], "anno_id": [7]},
        "1": {"exp": "two birds", "obj_id": [0, 2], "anno_id": [6, 8]},
        "2": {"exp": "the lower bird", "obj_id": [0], "anno_id": [6]},
    }
    dump(
        base / "meta_expressions.json",
        {"videos": {"0ab4afe7fb46": {"vid_id": 1, "frames": MEVIS_FRAMES, "expressions": exps}}},
    )
    if split != "valid":
        dump(
            base / "mask_dict.json",
            {
                "7": [encode_rle(MEVIS_A), None, encode_rle(MEVIS_A2)],
                "6": [encode_rle(MEVIS_B), encode_rle(MEVIS_B), None],
                "8": [encode_rle(MEVIS_C), None, None],
            },
        )
    return root
