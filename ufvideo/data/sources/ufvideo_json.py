"""The public UFVideo / VideoRefer training JSON (MODEL.md section 4.4), read as the authors' files are written so
they load unchanged once released. The record kind follows the keys, as in the public `__getitem__`: `seg` +
`unibench` (UFVideo-Bench tasks), `seg` (RVOS), `annotation` (referring), otherwise video QA or temporal text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ufvideo.data.schema import TEMP_TOKEN_RE
from ufvideo.data.sources.base import (
    Context,
    Invalid,
    Out,
    Source,
    Unit,
    conversation,
    declared_size,
    join,
    json_records,
    json_units,
    make_id,
    mask_entry,
    require,
    rvos_record,
)
from ufvideo.data.sources.videorefer_700k import regions

NAME = "ufvideo_json"
UNIBENCH_TASKS = {"task1": "pixrqa", "task2": "pixhqa", "task3": "pixtrqa"}
# Keys every kind may carry besides its own; they are copied into `meta`.
COMMON_KEYS = ("id", "data_source", "source")
IMAGE_REASON = (
    "image records are not supported: the public UFVideo image branch of __getitem__ is broken (it never defines "
    "the SAM tensors, MODEL.md 4.3), so the released recipe cannot train on them"
)
_SPAN = re.compile(r"\{\s*<TEMP-\d+>\s*,?\s*<TEMP-\d+>\s*\}")
_OPTION = re.compile(r"\(([A-F])\)|(?m:^\s*([A-F])[.)]\s)")
_LETTER = re.compile(r"^\(?([A-F])\)?(?:[.:)]|\s|$)")


@dataclass
class Options:
    files: list[str] = field(default_factory=lambda: ["*.json", "*.jsonl"])  # globs under the root; one name works
    video_root: str = ""  # prefix of every `video` path, relative to the root
    check_videos: bool = True
    max_frames: int = 150  # the public loader skips multi-frame referring samples annotated on more frames
    extra_keys: list[str] = field(default_factory=list)  # further record keys to accept (copied into meta)
    sample: dict[str, int | None] = field(default_factory=dict)  # group (file path without suffix) -> sample size


def plan(ctx: Context) -> list[Unit]:
    return json_units(ctx.root, ctx.options.files)


def _video(ctx: Context, value: Any) -> str | list[str]:
    """A video path (file or frame folder) or a list of frame paths, checked to exist under the root."""
    if isinstance(value, str) and value:
        return ctx.find_video([join(ctx.options.video_root, value)], ctx.options.check_videos)
    if not isinstance(value, list) or not value:
        raise Invalid("video", "must be a non-empty path or a non-empty list of frame paths")
    frames = []
    for k, frame in enumerate(value):
        if not isinstance(frame, str) or not frame:
            raise Invalid(f"video[{k}]", "frame path must be a non-empty string")
        path = join(ctx.options.video_root, frame)
        if ctx.options.check_videos and not ctx.exists(path):
            raise Invalid(f"video[{k}]", f"missing frame: {path} (under {ctx.root})")
        frames.append(path)
    return frames


def _dialogue(item: Mapping[str, Any], nested: bool = False) -> list[dict[str, str]]:
    """Schema turns from `conversations` (UniBench task2/3: its first dialogue); `<image>` is refused."""
    turns, where = item["conversations"], "conversations"
    if nested and isinstance(turns, list) and turns and isinstance(turns[0], list):
        turns, where = turns[0], "conversations[0]"
    for i, turn in enumerate(turns if isinstance(turns, list) else []):
        if isinstance(turn, Mapping) and "<image>" in str(turn.get("value", "")):
            raise Invalid(f"{where}[{i}].value", f"<image> token: {IMAGE_REASON}")
    return conversation(turns, where)


def _frame_indices(value: Any, where: str) -> list[int]:
    if not isinstance(value, list) or not value:
        raise Invalid(where, "must be a non-empty list of frame indices")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        raise Invalid(where, "frame indices must be non-negative integers")
    return value


def _size_of(objects: list[dict[str, Any]]) -> dict[str, int]:
    height, width = next(iter(objects[0].values()))["size"]
    return {"height": height, "width": width}


def _is_mcqa(question: str, answer: str) -> bool:
    """Options (A)/(B)... in the question and a bare option letter as the answer."""
    letters = {a or b for a, b in _OPTION.findall(question)}
    return {"A", "B"} <= letters and _LETTER.match(answer.strip()) is not None


def text_task(turns: list[dict[str, str]]) -> str:
    """qa / mcqa, or tvg / dvc when an answer holds time tokens (one span each: tvg; several in one: dvc)."""
    answers = [t["value"] for t in turns if t["from"] == "gpt"]
    spans = [len(_SPAN.findall(a)) or (len(TEMP_TOKEN_RE.findall(a)) + 1) // 2 for a in answers]
    if any(spans):
        return "dvc" if max(spans) > 1 else "tvg"
    if any(TEMP_TOKEN_RE.search(t["value"]) for t in turns):
        return "caption"  # time only in the question: describe the given segment
    return "mcqa" if _is_mcqa(turns[0]["value"], turns[1]["value"]) else "qa"


def _text(ctx: Context, item: Mapping[str, Any]) -> dict[str, Any]:
    turns = _dialogue(item)
    return {"task": text_task(turns), "video": _video(ctx, item["video"]), "conversations": turns}


def _referring(ctx: Context, item: Mapping[str, Any]) -> dict[str, Any]:
    """`new_id` present: single-frame mode, one object on the first frame key (the one mask the public code pools)."""
    objects = regions(item["annotation"], declared_size(item))
    if "new_id" in item:
        if len(objects) != 1:
            reason = f"single-frame mode (new_id) needs exactly one object, got {len(objects)}"
            raise Invalid("annotation", f"{reason}: the public code pools only the first mask")
        first = next(str(int(k)) for k in item["annotation"][0] if str(int(k)) in objects[0])  # JSON order
        chosen, mode = [{first: objects[0][first]}], "single"
    else:
        frames = {key for obj in objects for key in obj}
        if len(frames) > ctx.options.max_frames:
            reason = f"{len(frames)} annotated frames, more than max_frames={ctx.options.max_frames}"
            raise Invalid("annotation", f"multi-frame mode: {reason} (the public loader skips the sample)")
        chosen, mode = objects, "multi"
    return {
        "task": "referring",
        "video": _video(ctx, item["video"]),
        "conversations": _dialogue(item),
        "regions": chosen,
        "region_mode": mode,
        **_size_of(objects),
    }


def _task1(ctx: Context, item: Mapping[str, Any]) -> dict[str, Any]:
    """Region prompts on the earliest annotated frame (sorted, unlike the public `set` order); targets after it."""
    objects = regions(item["annotation"], declared_size(item))
    _frame_indices(item["frame_list"], "frame_list")
    first = str(min(int(key) for obj in objects for key in obj))
    prompts, targets = [], []
    for i, obj in enumerate(objects):
        if first not in obj:
            raise Invalid(f"annotation[{i}]", f"no mask on the first annotated frame {first} (its region prompt)")
        later = {key: mask for key, mask in obj.items() if int(key) > int(first)}
        if not later:
            raise Invalid(f"annotation[{i}]", f"no mask after the first annotated frame {first} (nothing to segment)")
        prompts.append({first: obj[first]})
        targets.append(later)
    return {
        "video": _video(ctx, item["video"]),
        "conversations": _dialogue(item, nested=True),
        "regions": prompts,
        "region_mode": "single",
        "targets": targets,
        **_size_of(objects),
    }


def _task23(ctx: Context, item: Mapping[str, Any]) -> dict[str, Any]:
    """Targets: every object's masks on the `frame_idx` frames (null where it is not annotated)."""
    objects = regions(item["annotation"], declared_size(item))
    wanted = sorted(set(_frame_indices(item["frame_idx"], "frame_idx")))
    targets = []
    for i, obj in enumerate(objects):
        target = {str(f): obj.get(str(f)) for f in wanted}
        if not any(target.values()):
            raise Invalid(f"annotation[{i}]", f"object has no mask on any frame of frame_idx {wanted}")
        targets.append(target)
    return {
        "video": _video(ctx, item["video"]),
        "conversations": _dialogue(item, nested=True),
        "targets": targets,
        **_size_of(objects),
    }


def _rvos(ctx: Context, item: Mapping[str, Any], rid: str, meta: dict[str, Any]) -> dict[str, Any]:
    """Frame list + one mask (or null) per frame + an expression turned into a templated dialogue."""
    if not isinstance(item["video"], list):
        raise Invalid("video", "an RVOS (seg) record needs a list of frame paths")
    frames = _video(ctx, item["video"])
    segs = item["segmentations"]
    if not isinstance(segs, list) or len(segs) != len(frames):
        got = len(segs) if isinstance(segs, list) else type(segs).__name__
        raise Invalid("segmentations", f"needs one mask or null per frame: {got} for {len(frames)} frames")
    size, masks = declared_size(item), []
    for k, seg in enumerate(segs):
        mask = mask_entry(seg, size, f"segmentations[{k}]")
        size = size or (tuple(mask["size"]) if mask is not None else None)
        masks.append(mask)
    if size is None:
        raise Invalid("segmentations", "the expression's object has no mask in any frame")
    listed = item.get("no_none_frame_idx")
    if listed is not None:
        for k in _frame_indices(listed, "no_none_frame_idx"):
            if k >= len(masks) or masks[k] is None:
                raise Invalid("no_none_frame_idx", f"frame {k} is listed but has no mask")
    expression = item["conversations"][0] if isinstance(item["conversations"], list) else None
    if not isinstance(expression, str) or not expression.strip():
        raise Invalid("conversations[0]", "must be the referring expression string")
    if "<image>" in expression:
        raise Invalid("conversations[0]", f"<image> token: {IMAGE_REASON}")
    return rvos_record(ctx, rid, frames, expression, masks, (size[0], size[1]), meta)


# kind -> (required keys, optional keys, builder); the RVOS builder also takes the id and meta (see `convert`)
KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], Callable[..., dict[str, Any]]]] = {
    "text": (("video", "conversations"), (), _text),
    "referring": (("video", "conversations", "annotation"), ("height", "width", "new_id"), _referring),
    "rvos": (("seg", "video", "segmentations", "conversations"), ("no_none_frame_idx", "height", "width"), _rvos),
    "task1": (("seg", "unibench", "video", "frame_list", "annotation", "conversations"), ("height", "width"), _task1),
    "task2": (("seg", "unibench", "video", "frame_idx", "annotation", "conversations"), ("height", "width"), _task23),
    "task3": (("seg", "unibench", "video", "frame_idx", "annotation", "conversations"), ("height", "width"), _task23),
}


def kind_of(raw: Any) -> str:
    """The public loader's branch for a record, by its keys."""
    if not isinstance(raw, Mapping):
        raise Invalid("<record>", f"expected a JSON object, got {type(raw).__name__}")
    if "image" in raw:
        raise Invalid("image", IMAGE_REASON)
    if "seg" in raw:
        if "unibench" not in raw:
            return "rvos"
        if raw["unibench"] not in UNIBENCH_TASKS:
            raise Invalid("unibench", f"unknown UFVideo-Bench task {raw['unibench']!r}; known: task1, task2, task3")
        return raw["unibench"]
    return "referring" if "annotation" in raw else "text"


def convert(ctx: Context, unit: Unit, index: int, raw: Any) -> Iterator[Out]:
    kind = kind_of(raw)
    required, optional, build = KINDS[kind]
    item = require(raw, required, (*optional, *COMMON_KEYS, *ctx.options.extra_keys))
    stem = unit.file.rsplit(".", 1)[0]
    rid = make_id(NAME, stem, index)
    meta = {"kind": kind, "orig_id": str(item.get("id", index))}
    meta.update({k: item[k] for k in (*COMMON_KEYS[1:], *ctx.options.extra_keys) if k in item})
    if kind == "rvos":
        record = _rvos(ctx, item, rid, meta)
    else:
        body = build(ctx, item)
        task = UNIBENCH_TASKS.get(kind) or body.pop("task")
        record = {"id": rid, "source": NAME, "task": task, **body, "meta": meta}
    yield Out(stem, record)


def sample_sizes(options: Options) -> dict[str, int | None]:
    return dict(options.sample)


SOURCE = Source(
    name=NAME,
    splits={"train": "train"},
    options=Options,
    plan=plan,
    records=json_records,
    convert=convert,
    sample_sizes=sample_sizes,
)
