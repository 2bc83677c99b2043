"""Deep validation of what a record points at (`ufvideo data validate --deep`): the video opens and decodes to
its last frame, its frame count and size agree with the record, and every mask decodes to a mask of that size.

A shallow validation checks records only; a missing video, a truncated mp4 or corrupt RLE counts would otherwise
surface mid-training, in a DataLoader worker, hours in.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ufvideo.data.masks import decode_rle, encode_rle
from ufvideo.data.video import VideoError, probe, read_frames


def media_errors(record: Mapping[str, Any], root: str | Path, where: str) -> list[str]:
    """Every problem of one record's media, each `file:line (id): field 'x': reason`."""
    where = f"{where} (id {record.get('id')})"
    errors: list[str] = []
    try:
        info = probe(record["video"], fps_hint=record.get("fps"), root=root)
        read_frames(record["video"], [info.num_frames - 1], root=root, backend="pyav")  # decodes through the end
    except (OSError, VideoError, IndexError, ValueError) as exc:
        return [f"{where}: field 'video': {' '.join(str(exc).split())}"]
    for name, expected in (("num_frames", info.num_frames), ("height", info.height), ("width", info.width)):
        if record.get(name) is not None and int(record[name]) != expected:
            errors.append(f"{where}: field '{name}': {record[name]} but the video has {expected}")
    for field in ("regions", "targets"):
        for number, masks in enumerate(record.get(field) or []):
            for frame, rle in (masks or {}).items():
                label = f"{field}[{number}].{frame}"
                if rle is None:
                    continue
                if not 0 <= int(frame) < info.num_frames:
                    errors.append(f"{where}: field '{label}': frame {frame} beyond the video's {info.num_frames}")
                problem = _mask_problem(rle, info.height, info.width)
                if problem:
                    errors.append(f"{where}: field '{label}': {problem}")
    return errors


def _mask_problem(rle: Any, height: int, width: int) -> str | None:
    try:
        mask = decode_rle(rle, height=height, width=width)
    except (ValueError, TypeError) as exc:
        return str(exc)
    counts = rle.get("counts") if isinstance(rle, Mapping) else None
    # Compressed counts decode leniently (a corrupt string still yields some mask); pycocotools' encoding is
    # canonical, so a valid string is exactly what encoding its own mask gives back.
    if isinstance(counts, str) and encode_rle(np.asarray(mask))["counts"] != counts:
        return "compressed RLE counts are corrupt (they do not re-encode to themselves)"
    return None
