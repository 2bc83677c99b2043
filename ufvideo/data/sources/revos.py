"""ReVOS (DATASETS.md section 7): `JPEGImages/<source>/<video>/`, one `mask_dict.json` for all splits and
`meta_expressions_<split>_.json` whose expressions carry `type_id` (0 referring, 1 reasoning, 2 no target).

Referring and reasoning expressions become RVOS records (type kept in `meta.type_id`); type 2 expressions
have no object to segment and are skipped, counted by reason.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ufvideo.data.sources.base import Context, Invalid, Out, Reject, Skip, Source, Unit
from ufvideo.data.sources.mask_dict import MaskIndex, convert_video
from ufvideo.data.sources.mevis import video_records, video_units

NAME = "revos"
TYPES = {0: "referring", 1: "reasoning", 2: "no_target"}


@dataclass
class Options:
    videos_per_unit: int = 16


def prepare(ctx: Context) -> None:
    source = ctx.root / "mask_dict.json"
    if not source.is_file():
        raise FileNotFoundError(f"{NAME}: {source} not found")
    MaskIndex.build(source, ctx.work)


def plan(ctx: Context) -> list[Unit]:
    return video_units(ctx, f"meta_expressions_{ctx.split}_.json", ctx.options.videos_per_unit)


def convert(ctx: Context, unit: Unit, index: int, raw: Any) -> Iterator[Out | Reject | Skip]:
    ordinal, key, video = raw
    if not isinstance(video, Mapping) or not isinstance(video.get("expressions"), Mapping):
        yield Reject(unit.file, ordinal, f"videos[{key}]", "needs an 'expressions' object")
        return
    kept = {}
    for exp_id, exp in video["expressions"].items():
        type_id = exp.get("type_id") if isinstance(exp, Mapping) else None
        if type_id not in TYPES:
            yield Reject(unit.file, ordinal, f"videos[{key}].expressions[{exp_id}].type_id", f"unknown {type_id!r}")
        elif type_id == 2:
            yield Skip("type_id 2: no-target expression (nothing to segment)")
        else:
            kept[exp_id] = exp
    if not kept:
        return
    masks = MaskIndex.open(ctx.work / "mask_dict.index.json")
    try:
        yield from convert_video(
            ctx, masks, unit.file, ordinal, key, {**video, "expressions": kept}, "JPEGImages", extra=("type_id",)
        )
    except Invalid as exc:
        yield Reject(unit.file, ordinal, f"videos[{key}].{exc.field}", exc.reason)


SOURCE = Source(
    name=NAME,
    splits={"train": "train", "valid": "val"},
    options=Options,
    plan=plan,
    records=video_records,
    convert=convert,
    prepare=prepare,
)
