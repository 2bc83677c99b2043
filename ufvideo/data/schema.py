"""The curated record (DESIGN.md section 4.1): the one training format every source is converted into.

Validation is strict and exhaustive so a bad record is caught at curation time, with the file, line
and field named, instead of surfacing hours later as a shape error inside a training step.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ufvideo.errors import UFVideoError

TASKS = ("qa", "mcqa", "caption", "referring", "rvos", "tvg", "dvc", "pixrqa", "pixhqa", "pixtrqa")
ROLES = ("human", "gpt")
REGION_MODES = ("single", "multi")
REQUIRED_FIELDS = ("id", "source", "task", "video", "conversations")
OPTIONAL_FIELDS = (
    "regions",
    "region_mode",
    "targets",
    "duration",
    "fps",
    "num_frames",
    "height",
    "width",
    "clip",
    "meta",
)
VIDEO_TOKEN = "<video>"
REGION_TOKEN = "<region>"
SEG_TOKEN = "[SEG]"
NUM_TEMP_TOKENS = 100
TEMP_TOKEN_RE = re.compile(r"<TEMP-(\d+)>")

# Tasks whose records must carry input regions, output mask targets, or time tokens in the answer.
TASKS_WITH_REGIONS = frozenset({"referring", "pixrqa"})
TASKS_WITH_TARGETS = frozenset({"rvos", "pixrqa", "pixhqa", "pixtrqa"})
TASKS_WITH_TIME = frozenset({"tvg", "dvc", "pixtrqa"})


class RecordError(UFVideoError):
    """One invalid field of one record; `str()` gives `file:line: field 'x': reason`.

    A plain class, not a frozen dataclass: Python assigns `__traceback__` to an exception as it propagates
    (e.g. through a `with` block's `__exit__`), which a frozen dataclass refuses with `FrozenInstanceError`.
    """

    def __init__(self, file: str, line: int, field: str, message: str, record_id: str | None = None) -> None:
        super().__init__(file, line, field, message, record_id)
        self.file, self.line, self.field, self.message, self.record_id = file, line, field, message, record_id

    def __str__(self) -> str:
        rid = f" (id {self.record_id})" if self.record_id else ""
        return f"{self.file}:{self.line}{rid}: field '{self.field}': {self.message}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RecordError) and self.args == other.args

    __hash__ = Exception.__hash__


def temp_token(index: int) -> str:
    """The text of temporal token `index` (0..99), e.g. `<TEMP-007>`."""
    if not 0 <= index < NUM_TEMP_TOKENS:
        raise ValueError(f"temporal token index must be in [0, {NUM_TEMP_TOKENS - 1}], got {index}")
    return f"<TEMP-{index:03d}>"


def is_rle(value: Any) -> bool:
    """True for a COCO RLE dict (compressed string counts or uncompressed integer counts)."""
    if not isinstance(value, Mapping) or set(value) != {"size", "counts"}:
        return False
    size = value["size"]
    if not (isinstance(size, list | tuple) and len(size) == 2 and all(_is_int(v) and v > 0 for v in size)):
        return False
    counts = value["counts"]
    return isinstance(counts, str) or (isinstance(counts, list) and all(_is_int(c) and c >= 0 for c in counts))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Checker:
    """Collects every error of one record, each tagged with its dotted field path."""

    def __init__(self, file: str, line: int, record_id: str | None) -> None:
        self.file, self.line, self.record_id = file, line, record_id
        self.errors: list[RecordError] = []

    def fail(self, field: str, message: str) -> None:
        self.errors.append(RecordError(self.file, self.line, field, message, self.record_id))


def record_errors(record: Any, file: str = "<record>", line: int = 0) -> list[RecordError]:
    """Every problem with `record`, in field order; an empty list means the record is valid."""
    rid = record.get("id") if isinstance(record, Mapping) and isinstance(record.get("id"), str) else None
    check = _Checker(file, line, rid)
    if not isinstance(record, Mapping):
        check.fail("<record>", f"expected a JSON object, got {type(record).__name__}")
        return check.errors
    for name in REQUIRED_FIELDS:
        if name not in record:
            check.fail(name, "required field is missing")
    for name in record:
        if name not in REQUIRED_FIELDS and name not in OPTIONAL_FIELDS:
            check.fail(name, f"unknown field; allowed: {', '.join(REQUIRED_FIELDS + OPTIONAL_FIELDS)}")
    _check_identity(record, check)
    _check_video(record, check)
    turns = _check_conversations(record.get("conversations"), check)
    _check_scalars(record, check)
    _check_regions(record, turns, check)
    _check_targets(record, turns, check)
    _check_time(record, turns, check)
    return check.errors


def validate_record(record: Any, file: str = "<record>", line: int = 0) -> None:
    """Raise the first `RecordError` of `record`, if any."""
    errors = record_errors(record, file, line)
    if errors:
        raise errors[0]


def _check_identity(record: Mapping[str, Any], check: _Checker) -> None:
    source, rid, task = record.get("source"), record.get("id"), record.get("task")
    if "source" in record and (not isinstance(source, str) or not source):
        check.fail("source", "must be a non-empty string")
    if "id" in record:
        if not isinstance(rid, str) or not rid:
            check.fail("id", "must be a non-empty string")
        elif isinstance(source, str) and source and not rid.startswith(f"{source}/"):
            check.fail("id", f"must be prefixed by its source, i.e. start with '{source}/'")
    if "task" in record and task not in TASKS:
        check.fail("task", f"unknown task {task!r}; allowed: {', '.join(TASKS)}")


def _check_video(record: Mapping[str, Any], check: _Checker) -> None:
    if "video" not in record:
        return
    video = record["video"]
    if isinstance(video, str):
        if not video:
            check.fail("video", "must be a non-empty path")
    elif isinstance(video, list):
        if not video:
            check.fail("video", "frame list must not be empty")
        for i, frame in enumerate(video):
            if not isinstance(frame, str) or not frame:
                check.fail(f"video[{i}]", "frame path must be a non-empty string")
    else:
        check.fail("video", f"must be a path or a list of frame paths, got {type(video).__name__}")


def _check_conversations(conversations: Any, check: _Checker) -> list[dict[str, str]]:
    """Validate turn structure; return the well-formed turns (with their original index) for later checks."""
    if conversations is None:
        return []
    if not isinstance(conversations, list) or len(conversations) < 2:
        check.fail("conversations", "must be a list of at least two turns (human, gpt)")
        return []
    turns: list[dict[str, str]] = []
    for i, turn in enumerate(conversations):
        where = f"conversations[{i}]"
        if not isinstance(turn, Mapping) or set(turn) != {"from", "value"}:
            check.fail(where, "each turn must be an object with exactly the keys 'from' and 'value'")
            continue
        expected = ROLES[i % 2]
        if turn["from"] != expected:
            check.fail(f"{where}.from", f"expected {expected!r} (turns alternate human, gpt), got {turn['from']!r}")
        if not isinstance(turn["value"], str) or not turn["value"].strip():
            check.fail(f"{where}.value", "must be a non-empty string")
            continue
        turns.append({"from": turn["from"], "value": turn["value"], "index": str(i)})
    if len(conversations) % 2:
        check.fail("conversations", "must end with a gpt turn")
    video_turns = [int(t["index"]) for t in turns if VIDEO_TOKEN in t["value"]]
    total = sum(t["value"].count(VIDEO_TOKEN) for t in turns)
    if turns and (total != 1 or video_turns != [0] or turns[0]["from"] != "human"):
        check.fail("conversations[0].value", f"'{VIDEO_TOKEN}' must appear exactly once, in the first human turn")
    return turns


def _check_scalars(record: Mapping[str, Any], check: _Checker) -> None:
    for name in ("duration", "fps"):
        if name in record and (not _is_number(record[name]) or record[name] <= 0):
            check.fail(name, "must be a positive number")
    for name in ("num_frames", "height", "width"):
        if name in record and (not _is_int(record[name]) or record[name] <= 0):
            check.fail(name, "must be a positive integer")
    if "clip" in record:
        clip = record["clip"]
        ok = isinstance(clip, list) and len(clip) == 2 and all(_is_number(v) for v in clip)
        if not ok or not 0 <= clip[0] <= clip[1]:
            check.fail("clip", "must be [start, end] seconds with 0 <= start <= end")
    if "meta" in record and not isinstance(record["meta"], Mapping):
        check.fail("meta", "must be an object")
    if "region_mode" in record and record["region_mode"] not in REGION_MODES:
        check.fail("region_mode", f"must be one of {', '.join(REGION_MODES)}, got {record['region_mode']!r}")


def _count(turns: Iterable[dict[str, str]], role: str, token: str) -> int:
    return sum(t["value"].count(token) for t in turns if t["from"] == role)


def _check_frame_masks(field: str, masks: Any, record: Mapping[str, Any], check: _Checker, allow_null: bool) -> int:
    """Check one `{frame index: RLE}` dict; return how many non-null masks it holds."""
    if not isinstance(masks, Mapping) or not masks:
        check.fail(field, "must be a non-empty object mapping frame index (string) to a COCO RLE")
        return 0
    height, width = record.get("height"), record.get("width")
    present = 0
    for key, rle in masks.items():
        where = f"{field}[{key!r}]"
        if not (isinstance(key, str) and key.isdigit()):
            check.fail(where, "frame key must be a non-negative integer written as a string")
        if rle is None and allow_null:
            continue
        if not is_rle(rle):
            check.fail(where, "must be a COCO RLE {'size': [H, W], 'counts': str | [int]}")
            continue
        present += 1
        if _is_int(height) and _is_int(width) and list(rle["size"]) != [height, width]:
            check.fail(f"{where}.size", f"RLE size {list(rle['size'])} disagrees with the record's [{height}, {width}]")
    return present


def _check_regions(record: Mapping[str, Any], turns: list[dict[str, str]], check: _Checker) -> None:
    n_tokens = _count(turns, "human", REGION_TOKEN) + _count(turns, "gpt", REGION_TOKEN)
    regions = record.get("regions")
    task = record.get("task")
    if regions is None:
        if n_tokens:
            check.fail("regions", f"the conversation has {n_tokens} '{REGION_TOKEN}' but the record has no regions")
        elif task in TASKS_WITH_REGIONS:
            check.fail("regions", f"task {task!r} needs at least one input region")
        return
    if not isinstance(regions, list) or not regions:
        check.fail("regions", "must be a non-empty list with one {frame: RLE} object per '<region>'")
        return
    if _count(turns, "gpt", REGION_TOKEN):
        check.fail("conversations", f"'{REGION_TOKEN}' is an input: it may only appear in human turns")
    if len(regions) != n_tokens:
        check.fail("regions", f"{len(regions)} regions but {n_tokens} '{REGION_TOKEN}' tokens in the conversation")
    single = record.get("region_mode") == "single"
    for i, masks in enumerate(regions):
        _check_frame_masks(f"regions[{i}]", masks, record, check, allow_null=False)
        if single and isinstance(masks, Mapping) and len(masks) != 1:
            check.fail(f"regions[{i}]", f"region_mode 'single' needs exactly one frame per region, got {len(masks)}")


def _check_targets(record: Mapping[str, Any], turns: list[dict[str, str]], check: _Checker) -> None:
    n_seg = _count(turns, "gpt", SEG_TOKEN)
    targets = record.get("targets")
    task = record.get("task")
    if _count(turns, "human", SEG_TOKEN):
        check.fail("conversations", f"'{SEG_TOKEN}' is an output: it may only appear in gpt turns")
    if targets is None:
        if n_seg:
            check.fail("targets", f"the answer has {n_seg} '{SEG_TOKEN}' but the record has no targets")
        elif task in TASKS_WITH_TARGETS:
            check.fail("targets", f"task {task!r} needs at least one mask target and a '{SEG_TOKEN}' in the answer")
        return
    if not isinstance(targets, list) or not targets:
        check.fail("targets", "must be a non-empty list with one {frame: RLE | null} object per '[SEG]'")
        return
    if len(targets) != n_seg:
        check.fail("targets", f"{len(targets)} targets but {n_seg} '{SEG_TOKEN}' tokens in the answers")
    for i, masks in enumerate(targets):
        if _check_frame_masks(f"targets[{i}]", masks, record, check, allow_null=True) == 0 and isinstance(
            masks, Mapping
        ):
            check.fail(f"targets[{i}]", "needs at least one non-null mask")


def _check_time(record: Mapping[str, Any], turns: list[dict[str, str]], check: _Checker) -> None:
    for turn in turns:
        for match in TEMP_TOKEN_RE.finditer(turn["value"]):
            digits = match.group(1)
            if len(digits) != 3 or int(digits) >= NUM_TEMP_TOKENS:
                where = f"conversations[{turn['index']}].value"
                check.fail(where, f"bad temporal token {match.group(0)}; use <TEMP-000>..<TEMP-099>")
    task = record.get("task")
    if task in TASKS_WITH_TIME and not any(TEMP_TOKEN_RE.search(t["value"]) for t in turns if t["from"] == "gpt"):
        check.fail("conversations", f"task {task!r} needs temporal tokens <TEMP-NNN> in an answer")
