"""MeViS-style `mask_dict.json` ({anno_id: [RLE | null per frame]}), shared by MeViS and ReVOS.

The file runs to gigabytes, so it is streamed once into a line file plus an offset index in the run's work
directory; workers then seek to the few anno_ids a video needs instead of each holding the whole dict.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import ijson

from ufvideo.data.masks import union_rles
from ufvideo.data.sources.base import Context, Invalid, Out, Reject, frame_files, image_size, make_id, rvos_record
from ufvideo.errors import DataError
from ufvideo.files import atomic_write, write_json

_OPEN: dict[str, MaskIndex] = {}


class MaskIndex:
    """Random access to one mask_dict.json through its spilled copy."""

    def __init__(self, lines: Path, offsets: dict[str, list[int]]) -> None:
        self.lines, self.offsets = lines, offsets
        self._handle = open(lines, "rb")  # noqa: SIM115 (lives as long as the worker process)

    @classmethod
    def build(cls, source: Path, work: Path) -> Path:
        """Spill `source` into `work` (skipped when an index from a previous, interrupted run exists)."""
        index_path = work / f"{source.stem}.index.json"
        if index_path.is_file():
            return index_path
        lines = work / f"{source.stem}.lines"
        offsets: dict[str, list[int]] = {}
        with open(source, "rb") as src, atomic_write(lines, "wb") as out:
            try:
                for key, value in ijson.kvitems(src, "", use_float=True):
                    data = json.dumps(value, separators=(",", ":")).encode("utf-8")
                    offsets[str(key)] = [out.tell(), len(data)]
                    out.write(data + b"\n")
            except ijson.JSONError as exc:
                raise DataError(f"{source}: invalid JSON after {len(offsets)} anno_ids: {exc}") from exc
        write_json(index_path, {"lines": lines.name, "offsets": offsets}, indent=None)
        return index_path

    @classmethod
    def open(cls, index_path: Path) -> MaskIndex:
        key = f"{index_path}:{index_path.stat().st_mtime_ns}"  # a rebuilt index is a new file
        if key not in _OPEN:
            with open(index_path, encoding="utf-8") as handle:
                data = json.load(handle)
            _OPEN[key] = cls(index_path.parent / data["lines"], data["offsets"])
        return _OPEN[key]

    def get(self, anno_id: Any) -> list[Any] | None:
        entry = self.offsets.get(str(anno_id))
        if entry is None:
            return None
        self._handle.seek(entry[0])
        return json.loads(self._handle.read(entry[1]))


def convert_video(
    ctx: Context,
    index: MaskIndex,
    file: str,
    ordinal: int,
    video_key: str,
    video: Mapping[str, Any],
    frames_dir: str,
    extra: Sequence[str] = (),
) -> Iterator[Out | Reject]:
    """Every expression of one video: union of its anno_ids' masks per frame, checked against the frame size."""
    names = video.get("frames")
    expressions = video.get("expressions")
    if not isinstance(names, list) or not names or not isinstance(expressions, Mapping):
        raise Invalid(f"videos[{video_key}]", "needs a non-empty 'frames' list and an 'expressions' object")
    frames = frame_files(ctx, f"{frames_dir}/{video_key}", names)
    size = image_size(ctx.root / frames[0])
    for exp_id, exp in expressions.items():
        where = f"videos[{video_key}].expressions[{exp_id}]"
        try:
            if not isinstance(exp, Mapping) or not isinstance(exp.get("exp"), str):
                raise Invalid(where, "expression must be an object with a string 'exp'")
            anno_ids = exp.get("anno_id")
            if not isinstance(anno_ids, list) or not anno_ids:
                raise Invalid(f"{where}.anno_id", "missing or empty anno_id list")
            masks = _union(index, anno_ids, len(frames), size, f"{where}.anno_id")
            meta = {"video_id": video_key, "exp_id": str(exp_id), "anno_id": anno_ids, "obj_id": exp.get("obj_id")}
            meta.update({k: exp[k] for k in extra if k in exp})
            rid = make_id(ctx.source, ctx.split, video_key, exp_id)
            yield Out("rvos", rvos_record(ctx, rid, frames, exp["exp"], masks, size, meta))
        except Invalid as exc:
            field = exc.field if exc.field.startswith("videos[") else f"{where}.{exc.field}"
            yield Reject(file, ordinal, field, exc.reason)


def _union(
    index: MaskIndex, anno_ids: list[Any], num_frames: int, size: tuple[int, int], where: str
) -> list[dict[str, Any] | None]:
    per_anno = []
    for anno in anno_ids:
        masks = index.get(anno)
        if masks is None:
            raise Invalid(where, f"anno_id {anno} is not in mask_dict.json")
        if not isinstance(masks, list) or len(masks) != num_frames:
            got = len(masks) if isinstance(masks, list) else type(masks).__name__
            raise Invalid(where, f"anno_id {anno} has {got} masks for {num_frames} frames")
        per_anno.append(masks)
    out: list[dict[str, Any] | None] = []
    for k in range(num_frames):
        present = [m[k] for m in per_anno if m[k] is not None]
        for rle in present:
            if not isinstance(rle, Mapping) or list(rle.get("size", ())) != list(size):
                got = rle.get("size") if isinstance(rle, Mapping) else type(rle).__name__
                raise Invalid(where, f"frame {k}: RLE size {got} disagrees with the frame size {list(size)}")
        if not present:
            out.append(None)
        elif len(present) == 1 and isinstance(present[0].get("counts"), str):
            out.append({"size": list(size), "counts": present[0]["counts"]})
        else:
            try:
                out.append(union_rles(present))
            except ValueError as exc:
                raise Invalid(where, f"frame {k}: {exc}") from exc
    return out
