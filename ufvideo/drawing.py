"""Pictures a person looks at: masks coloured over frames, a time line with spans, frame strips, mask PNGs and
the overlay video. Shared by `ufvideo predict` (overlay video) and the evaluation report's gallery.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ufvideo.files import atomic_write

# One colour per [SEG] (predicted) and the ground truth's own: distinguishable, and not the synthetic shapes' red.
SEG_COLOURS = ((255, 0, 200), (0, 200, 255), (255, 200, 0), (120, 255, 60), (180, 90, 255), (255, 120, 60))
TRUTH_COLOUR = (40, 220, 40)
TRACK_GREY = (70, 70, 70)
MIN_WIDTH = 320  # small videos (the tiny profile's 64 px) are scaled up by an integer factor to be seen at all


def scale_factor(width: int, min_width: int = MIN_WIDTH) -> int:
    return max(1, math.ceil(min_width / max(width, 1)))


def outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of the mask that touch the background (4-neighbourhood): the contour drawn over the fill."""
    padded = np.pad(mask, 1)
    inner = padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def overlay(
    frame: np.ndarray, masks: Sequence[np.ndarray | None], colours: Sequence[tuple[int, int, int]], alpha: float = 0.45
) -> np.ndarray:
    """`frame` (H, W, 3 uint8) with each mask blended in its colour and outlined at full strength."""
    out = frame.astype(np.float32)
    for mask, colour in zip(masks, colours):
        if mask is None:
            continue
        m = np.asarray(mask, dtype=bool)
        if m.shape != frame.shape[:2]:
            raise ValueError(f"mask of shape {m.shape} does not fit a frame of shape {frame.shape[:2]}")
        out[m] = (1 - alpha) * out[m] + alpha * np.asarray(colour, np.float32)
        out[outline(m)] = colour
    return out.clip(0, 255).astype(np.uint8)


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    return image if factor == 1 else np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def timeline(
    width: int,
    duration: float,
    predicted: Sequence[Sequence[float]] = (),
    truth: Sequence[Sequence[float]] = (),
    now: float | None = None,
    height: int = 28,
) -> np.ndarray:
    """An (height, width, 3) strip: the clip's time from left to right, truth spans (green) in the upper half,
    predicted spans (magenta) in the lower half, and a white cursor at `now` seconds."""
    image = Image.new("RGB", (width, height), TRACK_GREY)
    draw = ImageDraw.Draw(image)
    scale = (width - 1) / duration if duration > 0 else 0.0
    half = height // 2

    def bar(span: Sequence[float], top: int, bottom: int, colour: tuple[int, int, int]) -> None:
        start, end = sorted(float(v) for v in span[:2])
        draw.rectangle([int(start * scale), top, max(int(end * scale), int(start * scale) + 1), bottom], fill=colour)

    for span in truth:
        bar(span, 2, half - 1, TRUTH_COLOUR)
    for span in predicted:
        bar(span, half + 1 if truth else 2, height - 3, SEG_COLOURS[0])
    if now is not None:
        x = int(min(max(now, 0.0), duration) * scale)
        draw.rectangle([max(x - 1, 0), 0, x + 1, height - 1], fill=(255, 255, 255))
    return np.asarray(image)


def label(image: np.ndarray, text: str) -> np.ndarray:
    """`text` written in the top-left corner on a dark box (time stamps, frame numbers)."""
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    box = draw.textbbox((3, 2), text)
    draw.rectangle([box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2], fill=(0, 0, 0))
    draw.text((3, 2), text, fill=(255, 255, 255))
    return np.asarray(picture)


def stack(rows: Sequence[np.ndarray], gap: int = 4) -> np.ndarray:
    """Images one below the other (left-aligned, black gaps), e.g. a frame above its time line."""
    width = max(r.shape[1] for r in rows)
    parts = []
    for r in rows:
        parts.append(np.pad(r, ((0, gap), (0, width - r.shape[1]), (0, 0))))
    return np.concatenate(parts)[:-gap] if gap else np.concatenate(parts)


def strip(images: Sequence[np.ndarray], gap: int = 4) -> np.ndarray:
    """Images side by side (top-aligned, black gaps)."""
    height = max(i.shape[0] for i in images)
    parts = [np.pad(i, ((0, height - i.shape[0]), (0, gap), (0, 0))) for i in images]
    return np.concatenate(parts, axis=1)[:, :-gap] if gap else np.concatenate(parts, axis=1)


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def save_png(path: str | os.PathLike[str], image: np.ndarray) -> Path:
    """An RGB image, or a bool mask as an 8-bit PNG (255 = object), written atomically."""
    array = np.asarray(image)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(target, "wb") as handle:
        handle.write(png_bytes(array))
    return target


def even(image: np.ndarray) -> np.ndarray:
    """Pad to even height and width (H.264 in yuv420p needs them)."""
    return np.pad(image, ((0, image.shape[0] % 2), (0, image.shape[1] % 2), (0, 0)))


def playback_fps(frames: int, duration: float, limit: int = 30) -> int:
    """Frames per second that play the sampled frames in about the clip's real time (at least 1)."""
    if duration <= 0:
        return 1
    return int(min(max(round(frames / duration), 1), limit))
