"""Ref-YouTube-VOS (DATASETS.md section 5): `meta_expressions/<split>/meta_expressions.json`, JPEG frames and
palette PNG annotations (pixel value = object id) under `<split>/`. Only train has annotations.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ufvideo.data.sources.base import (
    Context,
    Invalid,
    Out,
    Reject,
    Source,
    Unit,
    frame_files,
    image_size,
    make_id,
    palette_masks,
    rvos_record,
)
from ufvideo.data.sources.mevis import video_records, video_units

NAME = "ref_youtube_vos"


@dataclass
class Options:
    videos_per_unit: int = 16


def plan(ctx: Context) -> list[Unit]:
    return video_units(ctx, f"meta_expressions/{ctx.split}/meta_expressions.json", ctx.options.videos_per_unit)


def _object_id(exp: Any, where: str) -> int:
    if not isinstance(exp, Mapping) or not isinstance(exp.get("exp"), str):
        raise Invalid(where, "expression must be an object with a string 'exp'")
    obj = exp.get("obj_id")
    if not str(obj).isdigit() or int(obj) <= 0:
        raise Invalid(f"{where}.obj_id", f"must be a positive object id, got {obj!r}")
    return int(obj)


def convert(ctx: Context, unit: Unit, index: int, raw: Any) -> Iterator[Out | Reject]:
    ordinal, key, video = raw
    try:
        names, expressions = video.get("frames"), video.get("expressions")
        if not isinstance(names, list) or not names or not isinstance(expressions, Mapping):
            raise Invalid("frames", "needs a non-empty 'frames' list and an 'expressions' object")
        objects: dict[str, int] = {}
        for exp_id, exp in expressions.items():
            try:
                objects[exp_id] = _object_id(exp, f"expressions[{exp_id}]")
            except Invalid as exc:
                yield Reject(unit.file, ordinal, f"videos[{key}].{exc.field}", exc.reason)
        frames = frame_files(ctx, f"{ctx.split}/JPEGImages/{key}", names)
        size = image_size(ctx.root / frames[0])
        masks = palette_masks(ctx, f"{ctx.split}/Annotations/{key}", names, sorted(set(objects.values())), size)
    except Invalid as exc:
        yield Reject(unit.file, ordinal, f"videos[{key}].{exc.field}", exc.reason)
        return
    for exp_id, obj in objects.items():
        rid = make_id(NAME, ctx.split, key, exp_id)
        meta = {"video_id": key, "exp_id": str(exp_id), "obj_id": obj}
        try:
            yield Out("rvos", rvos_record(ctx, rid, frames, expressions[exp_id]["exp"], masks[obj], size, meta))
        except Invalid as exc:
            yield Reject(unit.file, ordinal, f"videos[{key}].expressions[{exp_id}].{exc.field}", exc.reason)


SOURCE = Source(
    name=NAME,
    splits={"train": "train"},
    options=Options,
    plan=plan,
    records=video_records,
    convert=convert,
)
