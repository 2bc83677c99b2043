"""What the source converters share: the items they yield, the `Source` declaration, streaming JSON readers,
conversation normalisation, time tokens, and the RVOS record builder with its question/answer templates.
"""

from __future__ import annotations

import functools
import json
import math
import os
import random
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ijson

from ufvideo.data.schema import VIDEO_TOKEN, temp_token
from ufvideo.data.templates import RVOS_ANSWERS, RVOS_QUESTIONS

_MEDIA_TOKENS = re.compile(r"<image>|<video>")
_ROLES = {"human": "human", "user": "human", "gpt": "gpt", "assistant": "gpt"}
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Out:
    """One converted record; `group` is the sampling group (e.g. open_ended) its source's counts refer to."""

    group: str
    record: dict[str, Any]


@dataclass(frozen=True)
class Reject:
    """A source record that could not be converted, with where it came from; it goes to `rejects.jsonl`."""

    file: str
    index: int
    field: str
    reason: str


@dataclass(frozen=True)
class Skip:
    """A valid source record deliberately left out (outside the UFVideo mixture); counted by reason, not rejected."""

    reason: str


class Invalid(ValueError):
    """Raised inside a converter for one bad source record; the runner turns it into a `Reject`."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


@dataclass(frozen=True)
class BadJson:
    """Stands in for a record the JSON reader could not parse (the rest of that file cannot be read either)."""

    message: str


@dataclass(frozen=True)
class Unit:
    """A piece of work a worker process converts on its own: one input file, or a batch of videos."""

    label: str
    file: str  # relative to the source root; named in rejects
    payload: Any = None
    rejects: tuple[Reject, ...] = ()  # found while planning (e.g. a malformed text line); emitted with the unit


@dataclass
class Context:
    """Everything a converter needs to handle one record, rebuilt in each worker process."""

    source: str
    root: Path
    split: str  # the source's own split name (train, valid_u, ...)
    out_split: str  # the curated split (train, val, test)
    seed: int
    options: Any
    work: Path  # scratch directory for indexes built once per run
    _exists: dict[str, bool] = field(default_factory=dict)
    _found: dict[tuple[Any, ...], str] = field(default_factory=dict)

    def rng(self, key: str) -> random.Random:
        """A generator seeded by (run seed, record key): choices do not depend on worker count or order."""
        return random.Random(f"{self.seed}:{key}")

    def exists(self, rel: str) -> bool:
        """Cached existence check; videos repeat across records (LLaVA-Video OE and MC share clips)."""
        hit = self._exists.get(rel)
        if hit is None:
            if len(self._exists) > 200_000:
                self._exists.clear()  # bound memory; the cache is only an accelerator
            hit = self._exists[rel] = os.path.exists(self.root / rel)
        return hit

    def find_video(self, candidates: Sequence[str], check: bool) -> str:
        """The first candidate path (relative to the root) that exists; without `check`, the first candidate."""
        key = (*candidates, check)
        found = self._found.get(key)
        if found is None:
            if len(self._found) > 200_000:
                self._found.clear()
            found = self._found[key] = self._find_video(candidates, check)
        return found

    def _find_video(self, candidates: Sequence[str], check: bool) -> str:
        paths = [os.path.normpath(c) for c in candidates if c]
        if not check:
            return paths[0]
        for path in paths:
            if self.exists(path):
                return path
        raise Invalid("video", f"missing video: {paths[0]} (under {self.root})")


@dataclass(frozen=True)
class Source:
    """A converter: how to plan units, iterate a unit's source records, and convert one source record."""

    name: str
    splits: Mapping[str, str]  # source split name -> curated split
    options: type
    plan: Callable[[Context], list[Unit]]
    records: Callable[[Context, Unit, int], Iterator[tuple[int, Any]]]
    convert: Callable[[Context, Unit, int, Any], Iterator[Out | Reject | Skip]]
    sample_sizes: Callable[[Any], dict[str, int | None]] = lambda options: {}
    prepare: Callable[[Context], None] | None = None  # once per run in the main process, before planning


def make_id(source: str, *parts: Any) -> str:
    """`source/part/part`; whitespace is replaced so ids stay one token in the runner's tab-separated parts."""
    return "/".join([source, *(_SPACE.sub("_", str(p)) for p in parts)])


def join(*parts: str | None) -> str:
    """Relative path join that drops empty parts (a cheaper `posixpath.join` for the per-record hot path)."""
    return "/".join(p for p in parts if p)


def iter_json(path: Path, start: int = 0) -> Iterator[tuple[int, Any]]:
    """(index, item) of a JSON array or JSON-lines file, streamed: a multi-GB array is never held whole.

    From `start` on (earlier items are parsed but not returned). A syntax error yields one `BadJson` and ends the
    file, since an incremental parser cannot resynchronise inside an array; a bad JSON line is skipped alone.
    """
    if path.suffix == ".jsonl":
        with open(path, encoding="utf-8") as handle:
            for index, line in enumerate(handle):
                if index < start or not line.strip():
                    continue
                try:
                    yield index, json.loads(line)
                except json.JSONDecodeError as exc:
                    yield index, BadJson(f"invalid JSON line: {exc.msg}")
        return
    with open(path, "rb") as handle:
        head = handle.read(64).lstrip()
        if not head.startswith(b"["):
            yield 0, BadJson("top level is not a JSON array")
            return
        handle.seek(0)
        index = -1
        try:
            for index, item in enumerate(ijson.items(handle, "item", use_float=True)):
                if index >= start:
                    yield index, item
        except (ijson.JSONError, ijson.IncompleteJSONError, UnicodeDecodeError) as exc:
            yield index + 1, BadJson(f"invalid JSON after item {index}: {exc}")


def json_units(root: Path, patterns: Sequence[str]) -> list[Unit]:
    """One unit per file matching the glob `patterns` (relative to `root`), in sorted order."""
    files = sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()})
    return [Unit(label=str(p.relative_to(root)), file=str(p.relative_to(root))) for p in files]


def json_records(ctx: Context, unit: Unit, start: int) -> Iterator[tuple[int, Any]]:
    return iter_json(ctx.root / unit.file, start)


def require(record: Any, required: Sequence[str], optional: Sequence[str] = ()) -> Mapping[str, Any]:
    """The record as a mapping with the known key layout, or `Invalid` naming the missing or unknown key."""
    if not isinstance(record, Mapping):
        raise Invalid("<record>", f"expected a JSON object, got {type(record).__name__}")
    for key in required:
        if key not in record:
            raise Invalid(key, "required key is missing (unknown key layout)")
    unknown = sorted(set(record) - set(required) - set(optional))
    if unknown:
        raise Invalid(unknown[0], f"unknown key (known: {', '.join([*required, *optional])})")
    return record


def conversation(turns: Any, field_name: str = "conversations") -> list[dict[str, str]]:
    """LLaVA-style turns -> schema turns: roles human/gpt, one `<video>` at the head of the first human turn."""
    if not isinstance(turns, list) or len(turns) < 2:
        raise Invalid(field_name, "must be a list of at least two turns")
    out = []
    for i, turn in enumerate(turns):
        if not (type(turn) is dict or isinstance(turn, Mapping)) or type(value := turn.get("value")) is not str:
            raise Invalid(f"{field_name}[{i}]", "each turn must be an object with a string 'value'")
        role = _ROLES.get(turn.get("from"))
        if role is None:
            raise Invalid(f"{field_name}[{i}].from", f"unknown role {turn.get('from')!r}")
        if "<" in value:  # most turns carry no media token; skip the regex for them
            value = _MEDIA_TOKENS.sub("", value)
        out.append({"from": role, "value": value.strip()})
    if out[0]["from"] != "human":
        raise Invalid(f"{field_name}[0].from", "the first turn must be the human's")
    out[0]["value"] = f"{VIDEO_TOKEN}\n{out[0]['value']}"
    return out


def declared_size(item: Mapping[str, Any]) -> tuple[int, int] | None:
    """A record's own (height, width): needed to decode polygons and uncompressed RLE; both or neither."""
    height, width = item.get("height"), item.get("width")
    if (height is None) != (width is None) or any(v is not None and not isinstance(v, int) for v in (height, width)):
        raise Invalid("height", "height and width must both be integers, or both absent")
    return (height, width) if height is not None else None


def mask_entry(value: Any, size: tuple[int, int] | None, where: str) -> dict[str, Any] | None:
    """One frame's segmentation (`{"segmentation": m}` or `m`; RLE or polygons) as compressed RLE, None if empty."""
    from ufvideo.data.masks import decode_rle, encode_rle, union_rles

    seg = value.get("segmentation") if isinstance(value, Mapping) and "segmentation" in value else value
    if seg is None:
        return None
    try:
        if isinstance(seg, Mapping):
            if size is not None and list(seg.get("size", ())) != list(size):
                raise Invalid(f"{where}.size", f"RLE size {seg.get('size')} disagrees with the frame {list(size)}")
            if isinstance(seg.get("counts"), str):
                return {"size": list(seg["size"]), "counts": seg["counts"]}
            return union_rles([seg])  # uncompressed counts -> compressed
        if isinstance(seg, list):
            if size is None:
                raise Invalid(where, "polygon mask but the record has no height/width")
            return encode_rle(decode_rle(seg, *size))
    except (ValueError, TypeError, KeyError) as exc:
        if isinstance(exc, Invalid):
            raise
        raise Invalid(where, f"bad mask: {exc}") from exc
    raise Invalid(where, f"unknown mask layout {type(seg).__name__}")


def temp_index(value: float) -> int:
    """Relative time in [0, 1] -> token index round(99 * t), halves up, clipped like the model clips."""
    return int(math.floor(min(max(float(value), 0.0), 1.0) * 99 + 0.5))


def span_text(start: float, end: float) -> str:
    return "{" + temp_token(temp_index(start)) + temp_token(temp_index(end)) + "}"


def clean_expression(text: str) -> str:
    """Lower-cased, single-spaced, no trailing period: how UFVideo's RVOS prompt inserts expressions."""
    return _SPACE.sub(" ", text).strip().rstrip(".").strip().lower()


def rvos_conversation(expression: str, rng: random.Random) -> list[dict[str, str]]:
    question = rng.choice(RVOS_QUESTIONS).format(expr=clean_expression(expression))
    return [
        {"from": "human", "value": f"{VIDEO_TOKEN}\n{question}"},
        {"from": "gpt", "value": rng.choice(RVOS_ANSWERS)},
    ]


@functools.lru_cache(maxsize=256)
def _listing(directory: str) -> frozenset[str]:
    try:
        return frozenset(os.listdir(directory))
    except OSError:
        return frozenset()


def frame_files(ctx: Context, rel_dir: str, names: Sequence[str], suffix: str = ".jpg") -> list[str]:
    """Relative paths of the named frames of one video folder; `Invalid` names the first missing frame."""
    present = _listing(str(ctx.root / rel_dir))
    if not present:
        raise Invalid("video", f"missing frame folder: {rel_dir}")
    paths = []
    for k, name in enumerate(names):
        file = f"{name}{suffix}"
        if file not in present:
            raise Invalid(f"frames[{k}]", f"missing frame: {rel_dir}/{file}")
        paths.append(f"{rel_dir}/{file}")
    return paths


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) from the image header only."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
    except OSError as exc:
        raise Invalid("video", f"cannot read frame {path}: {exc}") from exc
    return height, width


def rvos_record(
    ctx: Context,
    rid: str,
    frames: list[str],
    expression: str,
    masks: Sequence[Mapping[str, Any] | None],
    size: tuple[int, int],
    meta: Mapping[str, Any],
) -> dict[str, Any]:
    """A segmentation record: frame list, templated dialogue, one target with an RLE or null per frame."""
    if not isinstance(expression, str) or not expression.strip():
        raise Invalid("exp", "empty referring expression")
    if not any(m is not None for m in masks):
        raise Invalid("masks", "the expression's object has no mask in any frame")
    return {
        "id": rid,
        "source": ctx.source,
        "task": "rvos",
        "video": frames,
        "conversations": rvos_conversation(expression, ctx.rng(rid)),
        "targets": [{str(i): m for i, m in enumerate(masks)}],
        "height": size[0],
        "width": size[1],
        "num_frames": len(frames),
        "meta": {"expression": expression, **meta},
    }


def palette_masks(
    ctx: Context, ann_dir: str, names: Sequence[str], obj_ids: Sequence[int], size: tuple[int, int]
) -> dict[int, list[dict[str, Any] | None]]:
    """Per object id, one RLE (or None where absent) per frame, from palette PNGs whose pixel value is the id.

    One PNG is decoded at a time, so memory stays at one frame whatever the video length.
    """
    import numpy as np
    from PIL import Image

    from ufvideo.data.masks import encode_rle

    out: dict[int, list[dict[str, Any] | None]] = {obj: [] for obj in obj_ids}
    for k, name in enumerate(names):
        path = ctx.root / ann_dir / f"{name}.png"
        if not path.is_file():
            raise Invalid(f"frames[{k}]", f"missing annotation PNG: {ann_dir}/{name}.png")
        with Image.open(path) as image:
            if image.mode not in ("P", "L"):
                raise Invalid(f"frames[{k}]", f"{ann_dir}/{name}.png is mode {image.mode}, expected a palette PNG")
            labels = np.asarray(image)
        if labels.shape != tuple(size):
            raise Invalid(f"frames[{k}]", f"annotation {list(labels.shape)} disagrees with the frame {list(size)}")
        for obj in obj_ids:
            mask = labels == obj
            out[obj].append(encode_rle(mask) if mask.any() else None)
    return out
