"""LLaVA-Video-178K (DATASETS.md section 2): one folder per duration bucket, with caption, open-ended and
multiple-choice JSON lists. UFVideo uses 100,000 random open-ended items plus every multiple-choice item.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
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
    make_id,
    require,
)

NAME = "llava_video_178k"
# File-name markers of the three HF splits (the dataset card selects them with the globs *cap*, *oe*, *mc*).
KINDS = (("caption", "cap", "caption"), ("open_ended", "oe", "qa"), ("multi_choice", "mc", "mcqa"))


@dataclass
class Options:
    open_ended: int | None = 100_000  # None: all; 0: the files are not read
    multi_choice: int | None = None
    caption: int | None = 0
    video_root: str = ""  # where the extracted video trees live, relative to the root ("" = the root itself)
    check_videos: bool = True


def kind_of(file_name: str) -> tuple[str, str] | None:
    """(group, task) from a file name such as `0_30_s_academic_oe_v0_1_qa_processed.json`."""
    stem = file_name.rsplit(".", 1)[0]
    parts = stem.split("_")
    for group, marker, task in KINDS:
        if marker in parts:
            return group, task
    for group, marker, task in KINDS:  # the dataset card's own, looser rule
        if marker in stem:
            return group, task
    return None


def plan(ctx: Context) -> list[Unit]:
    sizes = sample_sizes(ctx.options)
    units = []
    for path in sorted(ctx.root.glob("*/*.json")):
        kind = kind_of(path.name)
        rel = str(path.relative_to(ctx.root))
        if kind is None:
            units.append(Unit(rel, rel, payload=None))
        elif sizes[kind[0]] != 0:
            units.append(Unit(rel, rel, payload=kind))
    return units


def records(ctx: Context, unit: Unit, start: int) -> Iterator[tuple[int, Any]]:
    if unit.payload is None:
        yield 0, None  # reported as a reject by `convert`
        return
    yield from json_records(ctx, unit, start)


def convert(ctx: Context, unit: Unit, index: int, raw: Any) -> Iterator[Out]:
    if unit.payload is None:
        raise Invalid("<file>", "cannot tell caption / open-ended / multiple-choice from the file name")
    group, task = unit.payload
    item = require(raw, ("id", "conversations", "video"), ("data_source",))
    video = item["video"]
    if not isinstance(video, str) or not video:
        raise Invalid("video", "must be a non-empty relative path")
    bucket = unit.file.split("/", 1)[0]
    candidates = [join(ctx.options.video_root, video), join(bucket, video)]
    path = ctx.find_video(candidates, ctx.options.check_videos)
    stem = unit.file.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    meta = {"orig_id": str(item["id"]), "data_source": item.get("data_source", bucket)}
    yield Out(
        group,
        {
            "id": make_id(NAME, stem, index),
            "source": NAME,
            "task": task,
            "video": path,
            "conversations": conversation(item["conversations"]),
            "meta": meta,
        },
    )


def sample_sizes(options: Options) -> dict[str, int | None]:
    return {"open_ended": options.open_ended, "multi_choice": options.multi_choice, "caption": options.caption}


SOURCE = Source(
    name=NAME,
    splits={"train": "train"},
    options=Options,
    plan=plan,
    records=records,
    convert=convert,
    sample_sizes=sample_sizes,
)
