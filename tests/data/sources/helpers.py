"""Builders for raw-source fixtures in their exact on-disk layouts, and a one-call convert-and-read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ufvideo.data.convert import ConvertConfig, run
from ufvideo.data.masks import decode_rle, encode_rle
from ufvideo.data.shards import data_root, iter_records, validate_dir
from ufvideo.data.video import write_video


def dump(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def tiny_video(path: Path, frames: int = 8, fps: int = 4, size: tuple[int, int] = (16, 16)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.zeros((frames, *size, 3), np.uint8)
    data[:, :, :, 0] = np.arange(frames, dtype=np.uint8)[:, None, None] * 20
    write_video(path, data, fps=fps)
    return path


def jpeg_frames(folder: Path, names: list[str], size: tuple[int, int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        Image.fromarray(np.full((*size, 3), 10 * k, np.uint8)).save(folder / f"{name}.jpg")


def palette_png(path: Path, labels: np.ndarray) -> None:
    """A DAVIS/YouTube-VOS style annotation: mode P, pixel value = object id."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 12))
    image.save(path)


def box(size: tuple[int, int], y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
    mask = np.zeros(size, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def rle(size: tuple[int, int], y0: int, x0: int, y1: int, x1: int) -> dict[str, Any]:
    return encode_rle(box(size, y0, x0, y1, x1))


def mask_of(target: dict[str, Any] | None, size: tuple[int, int]) -> np.ndarray:
    return np.zeros(size, bool) if target is None else decode_rle(target, *size)


def convert(
    source: str, root: Path, out: Path, split: str = "train", workers: int = 1, **options: Any
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """Run a conversion; return (manifest, records, rejects) after checking the output validates."""
    cfg = ConvertConfig(source=source, root=str(root), out=str(out), split=split, workers=workers, options=options)
    manifest = run(cfg)
    report = validate_dir(out)
    assert report.ok, report.errors[:3]
    records = list(iter_records(out))
    for record in records:
        video = record["video"]
        for path in video if isinstance(video, list) else [video]:
            assert (data_root(out) / path).exists(), path
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert manifest["rejects"]["total"] == len(rejects)
    return manifest, records, rejects
