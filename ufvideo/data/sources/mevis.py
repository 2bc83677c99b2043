"""MeViS (DATASETS.md section 4): `<split>/meta_expressions.json` + `<split>/mask_dict.json` + JPEG frame folders.

Each expression becomes one RVOS record whose target is, per frame, the union of its anno_ids' masks (one
expression may refer to several objects). Only splits with masks are convertible: train and valid_u.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ijson

from ufvideo.data.sources.base import Context, Invalid, Out, Reject, Source, Unit
from ufvideo.data.sources.mask_dict import MaskIndex, convert_video
from ufvideo.errors import DataError

NAME = "mevis"


@dataclass
class Options:
    videos_per_unit: int = 16  # videos per work unit (the unit of parallelism and of resuming)


def index_path(ctx: Context) -> Path:
    return ctx.work / "mask_dict.index.json"


def prepare(ctx: Context) -> None:
    source = ctx.root / ctx.split / "mask_dict.json"
    if not source.is_file():
        raise FileNotFoundError(f"{NAME}: {source} not found (only splits with masks can be converted)")
    MaskIndex.build(source, ctx.work)


def video_units(ctx: Context, meta_rel: str, per_unit: int) -> list[Unit]:
    """Stream the meta file's `videos` object into units of `per_unit` (ordinal, key, entry) triples."""
    path = ctx.root / meta_rel
    if not path.is_file():
        raise FileNotFoundError(f"{ctx.source}: {path} not found")
    with open(path, "rb") as handle:
        try:
            videos = list(ijson.kvitems(handle, "videos", use_float=True))
        except ijson.JSONError as exc:
            raise DataError(f"{path}: invalid JSON: {exc}") from exc
    triples = [(n, key, entry) for n, (key, entry) in enumerate(videos)]
    return [
        Unit(label=f"{meta_rel} videos {i}-{i + len(batch) - 1}", file=meta_rel, payload=batch)
        for i in range(0, len(triples), per_unit)
        for batch in [triples[i : i + per_unit]]
    ]


def video_records(ctx: Context, unit: Unit, start: int) -> Iterator[tuple[int, Any]]:
    yield from enumerate(unit.payload[start:], start)


def plan(ctx: Context) -> list[Unit]:
    return video_units(ctx, f"{ctx.split}/meta_expressions.json", ctx.options.videos_per_unit)


def convert(ctx: Context, unit: Unit, index: int, raw: Any) -> Iterator[Out | Reject]:
    ordinal, key, video = raw
    masks = MaskIndex.open(index_path(ctx))
    try:
        yield from convert_video(ctx, masks, unit.file, ordinal, key, video, f"{ctx.split}/JPEGImages")
    except Invalid as exc:
        yield Reject(unit.file, ordinal, f"videos[{key}].{exc.field}", exc.reason)


SOURCE = Source(
    name=NAME,
    splits={"train": "train", "valid_u": "val"},
    options=Options,
    plan=plan,
    records=video_records,
    convert=convert,
    prepare=prepare,
)
