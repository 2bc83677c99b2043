"""Predicted masks as PNGs in each benchmark's official layout, and the submission zips of the server-scored
splits (MeViS valid: `<video>/<exp_id>/<frame>.png`; Ref-YouTube-VOS valid: `Annotations/<video>/<exp_id>/<frame>.png`).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from ufvideo.eval.registry import Benchmark
from ufvideo.eval.types import Prediction, Sample
from ufvideo.files import atomic_write

ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed member times: the same masks give the same zip bytes
SUBMISSION_PREFIX = {"mevis": "", "ref_youtube_vos": "Annotations/"}


def write_png(path: Path, mask: np.ndarray) -> None:
    """A grayscale PNG, 255 = foreground, 0 = background (every official reader takes non-zero as foreground)."""
    image = Image.fromarray(np.asarray(mask, dtype=bool).astype(np.uint8) * 255)
    with atomic_write(path, "wb") as handle:
        image.save(handle, format="PNG")


def _frame_size(sample: Sample) -> tuple[int, int]:
    if sample.height and sample.width:
        return sample.height, sample.width
    first = sample.video[0] if isinstance(sample.video, list) else None
    if first is None:
        raise ValueError(f"sample {sample.id}: frame size unknown (no height/width and not a frame folder)")
    with Image.open(first) as image:
        return image.height, image.width


def write_prediction_masks(benchmark: Benchmark, sample: Sample, prediction: Prediction, mask_dir: Path) -> list[str]:
    """Write one PNG per predicted frame in the benchmark's layout; returns the relative paths written.

    RVOS benchmarks take one track per expression (the first). For server-scored splits a missing track is
    written as empty masks, so the zip stays complete and the expression scores 0, as a missing folder would.
    """
    layout = benchmark.mask_layout
    if layout is None or not sample.sam_frames:
        return []
    tracks = list(prediction.masks)
    if benchmark.task == "rvos":
        tracks = tracks[:1]
        if not tracks and benchmark.submission:
            h, w = _frame_size(sample)
            tracks = [np.zeros((len(sample.sam_frames), h, w), dtype=bool)]
    written = []
    for k, track in enumerate(tracks):
        track = np.asarray(track)
        if len(track) != len(sample.sam_frames):
            raise ValueError(
                f"sample {sample.id}: track {k} has {len(track)} masks for {len(sample.sam_frames)} frames"
            )
        for position, mask in enumerate(track):
            relative = layout(sample, k, position)
            write_png(mask_dir / relative, mask)
            written.append(relative)
    return written


def expected_mask_paths(benchmark: Benchmark, samples: Iterable[Sample]) -> list[str]:
    """Every PNG the official server wants: one per frame of every expression."""
    if benchmark.mask_layout is None:
        return []
    return [benchmark.mask_layout(s, 0, i) for s in samples for i in range(len(s.sam_frames or []))]


def write_submission(kind: str, mask_dir: Path, zip_path: Path, expected: Iterable[str]) -> int:
    """Zip `mask_dir` into `zip_path` in the official layout of `kind`; returns the number of PNGs.

    Refuses an incomplete submission (the server rejects it after a long upload) and names the missing files.
    """
    if kind not in SUBMISSION_PREFIX:
        raise ValueError(f"unknown submission kind {kind!r}; known: {', '.join(SUBMISSION_PREFIX)}")
    prefix = SUBMISSION_PREFIX[kind]
    expected = sorted(set(expected))
    bad = [p for p in expected if not p.startswith(prefix) or not p.endswith(".png")]
    if bad:
        raise ValueError(f"{kind} submission: paths outside the layout {prefix}<video>/<exp_id>/<frame>.png: {bad[:3]}")
    missing = [p for p in expected if not (mask_dir / p).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{kind} submission: {len(missing)} mask PNG(s) missing in {mask_dir}, e.g. {missing[:3]}"
        )
    with atomic_write(zip_path, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
        for relative in expected:
            info = zipfile.ZipInfo(relative, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, (mask_dir / relative).read_bytes())
    return len(expected)


def mevis_submission(mask_dir: Path, zip_path: Path, expected: Iterable[str]) -> int:
    """MeViS valid (CodaLab 15094): `<video_id>/<exp_id>/<frame>.png` at the zip root."""
    return write_submission("mevis", mask_dir, zip_path, expected)


def ref_youtube_vos_submission(mask_dir: Path, zip_path: Path, expected: Iterable[str]) -> int:
    """Ref-YouTube-VOS valid (CodaLab 29139): `Annotations/<video>/<exp_id>/<frame>.png`."""
    return write_submission("ref_youtube_vos", mask_dir, zip_path, expected)
