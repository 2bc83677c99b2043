"""What one answered request leaves on disk: `prediction.json` (answer, spans in seconds, the frames masks are on,
file names), `masks/seg<k>/frame_<index>.png` (255 = object) and `overlay.mp4` (the sampled frames with every
`[SEG]`'s mask coloured in, the input regions outlined, and a time line marking the predicted spans).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ufvideo import drawing
from ufvideo.eval.types import Prediction, Sample
from ufvideo.files import write_json

PREDICTION_FILE, OVERLAY_FILE, MASKS_DIR = "prediction.json", "overlay.mp4", "masks"
_TEMP = re.compile(r"<TEMP-(\d{3})>")
_SPECIALS = ("<|im_end|>", "<|endoftext|>")


def readable(text: str, duration: float) -> str:
    """The answer with `<TEMP-NNN>` written as seconds and the end-of-turn marker dropped."""
    for token in _SPECIALS:
        text = text.replace(token, "")
    return _TEMP.sub(lambda m: f"{int(m.group(1)) / 99 * duration:.1f}s", text).strip()


def _frames(sample: Sample) -> np.ndarray:
    from ufvideo.data.video import read_frames

    return read_frames(sample.video, list(sample.sam_frames or []))


def _mask_files(folder: Path, sample: Sample, prediction: Prediction) -> list[dict[str, Any]]:
    tracks = []
    frames = list(sample.sam_frames or [])
    for k, track in enumerate(prediction.masks):
        masks = np.asarray(track, dtype=bool)
        files, areas = [], []
        for position, index in enumerate(frames[: len(masks)]):
            relative = f"{MASKS_DIR}/seg{k}/frame_{index:05d}.png"
            drawing.save_png(folder / relative, masks[position])
            files.append(relative)
            areas.append(int(masks[position].sum()))
        tracks.append({"seg": k, "frames": frames[: len(masks)], "files": files, "area": areas})
    return tracks


def _region_masks(sample: Sample, frame_index: int) -> list[np.ndarray | None]:
    from ufvideo.data.masks import decode_rle

    out: list[np.ndarray | None] = []
    for region in sample.regions or []:
        rle = region.get(frame_index)
        out.append(None if rle is None else drawing.outline(decode_rle(rle, sample.height, sample.width)))
    return out


def write_overlay(path: Path, sample: Sample, prediction: Prediction, frames: np.ndarray) -> Path:
    """The sampled frames, scaled up for small videos, with masks, input regions and the span time line."""
    from ufvideo.data.video import write_video

    fps, duration = float(sample.meta["fps"]), float(sample.meta["duration"])
    factor = drawing.scale_factor(frames.shape[2])
    colours = [drawing.SEG_COLOURS[k % len(drawing.SEG_COLOURS)] for k in range(len(prediction.masks))]
    pictures = []
    for position, index in enumerate(sample.sam_frames or []):
        masks = [np.asarray(track[position], bool) if position < len(track) else None for track in prediction.masks]
        picture = drawing.overlay(frames[position], masks, colours)
        picture = drawing.overlay(picture, _region_masks(sample, index), [drawing.TRUTH_COLOUR] * 8, alpha=1.0)
        picture = drawing.label(drawing.upscale(picture, factor), f"frame {index}  {index / fps:.2f}s")
        bar = drawing.timeline(picture.shape[1], duration, prediction.spans, now=index / fps)
        pictures.append(drawing.even(drawing.stack([picture, bar])))
    write_video(path, np.stack(pictures), fps=drawing.playback_fps(len(pictures), duration))
    return path


def write_prediction(
    folder: Path, sample: Sample, prediction: Prediction, model: dict[str, str], overlay: bool = True
) -> dict[str, Any]:
    """Write one request's files into `folder`; returns the `prediction.json` document."""
    folder.mkdir(parents=True, exist_ok=True)
    duration, fps = float(sample.meta["duration"]), float(sample.meta["fps"])
    frames = list(sample.sam_frames or [])
    doc: dict[str, Any] = {
        "id": sample.id,
        "model": model,
        "video": str(sample.video),
        "prompt": sample.conversation[0]["value"],
        "answer": readable(prediction.text, duration),
        "text": prediction.text,
        "spans": [[round(float(s), 3), round(float(e), 3)] for s, e in prediction.spans],
        "duration": duration,
        "fps": fps,
        "frames": frames,
        "frame_times": [round(i / fps, 3) for i in frames],
        "masks": _mask_files(folder, sample, prediction),
        "overlay": None,
    }
    if overlay and frames:
        write_overlay(folder / OVERLAY_FILE, sample, prediction, _frames(sample))
        doc["overlay"] = OVERLAY_FILE
    write_json(folder / PREDICTION_FILE, doc)
    return doc
