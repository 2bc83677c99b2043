"""VideoRefer-700K (DATASETS.md section 3): three multi-GB JSON lists (detailed captions, short captions, QA) with
one `{frame: {"segmentation": RLE | polygon | null}}` annotation per `<region>` object.

UFVideo's mix (README): single-frame mode = every detailed caption + a random 50K short captions, one annotated
frame per object (seeded choice); multi-frame mode = every QA + the detailed captions again, all annotated frames.
Masks are normalised to compressed RLE and checked against the record's frame size.
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
    conversation,
    declared_size,
    join,
    json_records,
    make_id,
    mask_entry,
    require,
)

NAME = "videorefer_700k"
# kind -> (the groups its records feed: single-frame, multi-frame)
KINDS = {"detailed": ("single_detailed", "multi_detailed"), "short": ("single_short", None), "qa": (None, "multi_qa")}


@dataclass
class Options:
    detailed_file: str = "videorefer-detailed-caption-125k.json"
    short_file: str = "videorefer-short-caption-500k.json"
    qa_file: str = "videorefer-qa-75k.json"
    single_detailed: int | None = None  # sample sizes per group; None keeps all, 0 leaves the group out
    single_short: int | None = 50_000
    multi_qa: int | None = None
    multi_detailed: int | None = None
    video_root: str = ""
    max_frames: int = 150  # UFVideo skips multi-frame samples annotated on more frames than this
    check_videos: bool = True


def _groups(options: Options, kind: str) -> list[tuple[str, str]]:
    """(group, mode) pairs a record of `kind` is converted into, leaving out groups sampled to zero."""
    single, multi = KINDS[kind]
    sizes = sample_sizes(options)
    pairs = [(single, "single"), (multi, "multi")]
    return [(group, mode) for group, mode in pairs if group is not None and sizes[group] != 0]


def plan(ctx: Context) -> list[Unit]:
    units = []
    for kind in KINDS:
        if not _groups(ctx.options, kind):
            continue
        name = getattr(ctx.options, f"{kind}_file")
        if not (ctx.root / name).is_file():
            raise FileNotFoundError(f"{NAME}: {ctx.root / name} not found (set its sample size to 0 to leave it out)")
        units.append(Unit(label=name, file=name, payload=kind))
    return units


def regions(annotation: Any, size: tuple[int, int] | None) -> list[dict[str, Any]]:
    if not isinstance(annotation, list) or not annotation:
        raise Invalid("annotation", "must be a non-empty list with one object per <region>")
    out = []
    for i, obj in enumerate(annotation):
        if not isinstance(obj, Mapping):
            raise Invalid(f"annotation[{i}]", "must map frame index (string) to a segmentation")
        masks = {}
        for key, value in obj.items():
            if not str(key).isdigit():
                raise Invalid(f"annotation[{i}][{key!r}]", "frame key must be a frame index")
            mask = mask_entry(value, size, f"annotation[{i}][{key!r}]")
            if mask is not None:
                size = size or (mask["size"][0], mask["size"][1])
                masks[str(int(key))] = mask
        if not masks:
            raise Invalid(f"annotation[{i}]", "object has no mask in any frame")
        out.append(dict(sorted(masks.items(), key=lambda kv: int(kv[0]))))
    return out


def convert(ctx: Context, unit: Unit, index: int, raw: Any) -> Iterator[Out | Reject]:
    kind = unit.payload
    item = require(raw, ("video", "conversations", "annotation"), ("id", "height", "width", "new_id"))
    objects = regions(item["annotation"], declared_size(item))
    height, width = objects[0][next(iter(objects[0]))]["size"]
    if not isinstance(item["video"], str) or not item["video"]:
        raise Invalid("video", "must be a non-empty relative path")
    # UniPixel keeps the extracted clips under `videos/`; records may or may not carry that prefix.
    candidates = [join(ctx.options.video_root, item["video"]), join(ctx.options.video_root, "videos", item["video"])]
    video = ctx.find_video(candidates, ctx.options.check_videos)
    turns = conversation(item["conversations"])
    for group, mode in _groups(ctx.options, kind):
        rid = make_id(NAME, kind, index, mode)
        if mode == "single":
            rng = ctx.rng(rid)
            chosen = [{key: obj[key]} for obj in objects for key in [rng.choice(list(obj))]]
        else:
            frames = {key for obj in objects for key in obj}
            if len(frames) > ctx.options.max_frames:
                reason = f"{len(frames)} annotated frames, more than max_frames={ctx.options.max_frames}"
                yield Reject(unit.file, index, "annotation", f"multi-frame mode: {reason}")
                continue
            chosen = objects
        record = {
            "id": rid,
            "source": NAME,
            "task": "referring",
            "video": video,
            "conversations": [dict(t) for t in turns],
            "regions": chosen,
            "region_mode": mode,
            "height": height,
            "width": width,
            "meta": {"orig_id": str(item.get("id", index)), "kind": kind},
        }
        yield Out(group, record)


def sample_sizes(options: Options) -> dict[str, int | None]:
    groups = ("single_detailed", "single_short", "multi_qa", "multi_detailed")
    return {group: getattr(options, group) for group in groups}


SOURCE = Source(
    name=NAME,
    splits={"train": "train"},
    options=Options,
    plan=plan,
    records=json_records,
    convert=convert,
    sample_sizes=sample_sizes,
)
