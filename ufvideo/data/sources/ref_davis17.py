"""Ref-DAVIS17 (DATASETS.md section 6) from the raw downloads: DAVIS 2017 frames and palette PNGs
(`DAVIS/Annotations_unsupervised/480p`, else `DAVIS/Annotations/480p`), the split lists in
`DAVIS/ImageSets/2017/`, and Khoreva et al.'s four text files (`<video> <obj_id> "<expression>"`, the annot2
files in latin-1). Known misspelled video names are fixed. Every object has up to four expressions, numbered
as ReferFormer's conversion does: annot1 first-frame, annot1 full-video, annot2 first-frame, annot2 full-video.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ufvideo.data.sources.base import (
    Context,
    Invalid,
    Out,
    Reject,
    Source,
    Unit,
    image_size,
    make_id,
    palette_masks,
    rvos_record,
)
from ufvideo.data.video import VideoError, list_frame_files

NAME = "ref_davis17"
TEXT_DIR = "davis_text_annotations"
TEXTS = (  # (file, annotator, kind), in exp_id order within an object
    ("Davis17_annot1.txt", 1, "first_frame"),
    ("Davis17_annot1_full_video.txt", 1, "full_video"),
    ("Davis17_annot2.txt", 2, "first_frame"),
    ("Davis17_annot2_full_video.txt", 2, "full_video"),
)
NAME_FIXES = {"clasic-car": "classic-car", "dog-scale": "dogs-scale", "motor-bike": "motorbike"}


@dataclass
class Options:
    videos_per_unit: int = 8


def read_text(ctx: Context, slot: int, file: str) -> tuple[dict[str, list[tuple[int, int, str]]], list[Reject]]:
    """{video: [(obj_id, slot, expression)]} of one annotation file, plus a reject per malformed line."""
    rel = f"{TEXT_DIR}/{file}"
    raw = (ctx.root / rel).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # the annot2 files
    found: dict[str, list[tuple[int, int, str]]] = {}
    rejects = []
    for number, line in enumerate(text.splitlines(), start=1):
        parts = line.strip().split(maxsplit=2)
        if not parts:
            continue
        if len(parts) < 3 or not parts[1].isdigit() or len(parts[2]) < 3 or parts[2][0] != '"' or parts[2][-1] != '"':
            rejects.append(Reject(rel, number, "line", f'expected <video> <obj_id> "<expression>", got {line!r}'))
            continue
        video = NAME_FIXES.get(parts[0], parts[0])
        found.setdefault(video, []).append((int(parts[1]), slot, parts[2][1:-1].strip()))
    return found, rejects


def plan(ctx: Context) -> list[Unit]:
    split_file = ctx.root / "DAVIS" / "ImageSets" / "2017" / f"{ctx.split}.txt"
    if not split_file.is_file():
        raise FileNotFoundError(f"{NAME}: split list {split_file} not found")
    videos = [line.strip() for line in split_file.read_text().splitlines() if line.strip()]
    expressions: dict[str, list[tuple[int, int, str]]] = {}
    rejects: list[Reject] = []
    for slot, (file, _, _) in enumerate(TEXTS):
        if not (ctx.root / TEXT_DIR / file).is_file():
            raise FileNotFoundError(f"{NAME}: {ctx.root / TEXT_DIR / file} not found")
        found, bad = read_text(ctx, slot, file)
        rejects.extend(bad)
        for video, items in found.items():
            expressions.setdefault(video, []).extend(items)
    wanted = [(n, v, sorted(expressions[v])) for n, v in enumerate(videos) if v in expressions]
    per = ctx.options.videos_per_unit
    units = [
        Unit(
            label=f"{ctx.split} videos {i}-{i + per - 1}",
            file=f"DAVIS/ImageSets/2017/{ctx.split}.txt",
            payload=wanted[i : i + per],
        )
        for i in range(0, len(wanted), per)
    ]
    if units and rejects:
        units[0] = Unit(units[0].label, units[0].file, units[0].payload, tuple(rejects))
    return units


def _annotations(ctx: Context, video: str) -> str:
    for folder in ("Annotations_unsupervised", "Annotations"):
        rel = f"DAVIS/{folder}/480p/{video}"
        if (ctx.root / rel).is_dir():
            return rel
    raise Invalid("Annotations", f"no annotation folder for {video} under DAVIS/Annotations_unsupervised/480p")


def records(ctx: Context, unit: Unit, start: int) -> Iterator[tuple[int, Any]]:
    yield from enumerate(unit.payload[start:], start)


def convert(ctx: Context, unit: Unit, index: int, raw: Any) -> Iterator[Out | Reject]:
    ordinal, video, items = raw
    frames_rel = f"DAVIS/JPEGImages/480p/{video}"
    try:
        try:
            files = list_frame_files(ctx.root / frames_rel)
        except (FileNotFoundError, VideoError) as exc:
            raise Invalid("video", f"missing frames: {exc}") from exc
        names = [f.stem for f in files]
        frames = [f"{frames_rel}/{f.name}" for f in files]
        size = image_size(files[0])
        objects = sorted({obj for obj, _, _ in items})
        masks = palette_masks(ctx, _annotations(ctx, video), names, objects, size)
    except Invalid as exc:
        yield Reject(unit.file, ordinal, f"{video}.{exc.field}", exc.reason)
        return
    for position, obj in enumerate(objects):
        for obj_id, slot, expression in items:
            if obj_id != obj:
                continue
            exp_id = 4 * position + slot
            _, annotator, kind = TEXTS[slot]
            rid = make_id(NAME, ctx.split, video, exp_id)
            meta = {"video_id": video, "exp_id": str(exp_id), "obj_id": obj, "annotator": annotator, "kind": kind}
            try:
                yield Out("rvos", rvos_record(ctx, rid, frames, expression, masks[obj], size, meta))
            except Invalid as exc:
                yield Reject(unit.file, ordinal, f"{video}.obj{obj}.{kind}{annotator}.{exc.field}", exc.reason)


SOURCE = Source(
    name=NAME,
    splits={"train": "train", "val": "val"},
    options=Options,
    plan=plan,
    records=records,
    convert=convert,
)
