"""internvid-tg (DATASETS.md section 8, DisTime layout, NOT CONFIRMED): JSON lists or JSON lines of
`{"video", "tgt": [start, end, ...] seconds, "conversations"}` where each `<TIME_STAMP>` consumes one
(start, end) pair. Seconds become relative `<TEMP-NNN>` spans over the probed duration (a record's own
`duration`, when present, is used instead of probing).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ufvideo.data.sources.base import (
    Context,
    Invalid,
    Out,
    Source,
    Unit,
    conversation,
    join,
    json_records,
    json_units,
    make_id,
    require,
    span_text,
)
from ufvideo.data.video import VideoError, VideoInfo, probe

NAME = "internvid_tg"
PLACEHOLDER = "<TIME_STAMP>"


@dataclass
class Options:
    files: list[str] = field(default_factory=lambda: ["*.json", "*.jsonl", "annotations/*.json", "annotations/*.jsonl"])
    video_root: str = ""
    tolerance: float = 1.0  # seconds an end time may overrun the probed duration (it is then clipped)


def plan(ctx: Context) -> list[Unit]:
    return json_units(ctx.root, ctx.options.files)


@functools.lru_cache(maxsize=4096)
def _probe(path: str) -> VideoInfo:
    return probe(Path(path))


def _spans(tgt: Any, count: int, duration: float, tolerance: float) -> list[tuple[float, float]]:
    """Seconds -> relative (start, end) pairs, validated: ordered, inside the video (up to `tolerance`)."""
    ok = isinstance(tgt, list) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in tgt)
    if not ok:
        raise Invalid("tgt", "must be a list of seconds")
    if len(tgt) != 2 * count:
        raise Invalid("tgt", f"{len(tgt)} times for {count} {PLACEHOLDER} placeholders (one start/end pair each)")
    spans = []
    for k in range(count):
        start, end = float(tgt[2 * k]), float(tgt[2 * k + 1])
        if not 0 <= start <= end or end > duration + tolerance:
            raise Invalid(f"tgt[{2 * k}:{2 * k + 2}]", f"span [{start}, {end}] s is outside the {duration:.3f} s video")
        spans.append((start / duration, min(end, duration) / duration))
    return spans


def convert(ctx: Context, unit: Unit, index: int, raw: Any) -> Iterator[Out]:
    item = require(raw, ("video", "tgt", "conversations"), ("id", "duration", "source", "data_source"))
    if not isinstance(item["video"], str) or not item["video"]:
        raise Invalid("video", "must be a non-empty relative path")
    video = ctx.find_video([join(ctx.options.video_root, item["video"])], check=True)
    extra: dict[str, Any] = {}
    duration = item.get("duration")
    if duration is None:
        try:
            info = _probe(str(ctx.root / video))
        except (OSError, VideoError) as exc:
            raise Invalid("video", f"cannot probe {video}: {exc}") from exc
        duration = info.duration
        extra = {"fps": info.fps, "num_frames": info.num_frames, "height": info.height, "width": info.width}
    if not isinstance(duration, int | float) or duration <= 0:
        raise Invalid("duration", f"must be a positive number of seconds, got {duration!r}")
    turns = conversation(item["conversations"])
    count = sum(t["value"].count(PLACEHOLDER) for t in turns)
    if count == 0:
        raise Invalid("conversations", f"no {PLACEHOLDER} placeholder for the 'tgt' times (unknown layout)")
    spans = iter(_spans(item["tgt"], count, float(duration), ctx.options.tolerance))
    for turn in turns:
        pieces = turn["value"].split(PLACEHOLDER)
        turn["value"] = pieces[0] + "".join(span_text(*next(spans)) + rest for rest in pieces[1:])
    record = {
        "id": make_id(NAME, unit.file.rsplit(".", 1)[0], index),
        "source": NAME,
        "task": "dvc" if count > 1 else "tvg",
        "video": video,
        "conversations": turns,
        "duration": float(duration),
        **extra,
        "meta": {"orig_id": str(item.get("id", index)), "tgt_seconds": item["tgt"]},
    }
    yield Out("temporal", record)


SOURCE = Source(
    name=NAME,
    splits={"train": "train"},
    options=Options,
    plan=plan,
    records=json_records,
    convert=convert,
)
