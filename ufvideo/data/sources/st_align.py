"""ST-Align-Dataset (LLaVA-ST, DATASETS.md section 1): stage folders of LLaVA-style JSON lists whose text holds
`<TEMP-INPUT>`/`<TEMP-OUTPUT>` placeholders, each consuming the next relative time in [0, 1] from `variables`.

UFVideo keeps the temporal (TVG, DVC, temporal referring) records of stages 2 and 3 and the general modules
(conversation, VideoQA, classification, captioning) of stage 3; placeholders become `<TEMP-NNN>` tokens.
Spatial records (`<WIDTH-*>`/`<HEIGHT-*>`) are outside the UFVideo mixture and are skipped, counted by reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ufvideo.data.schema import temp_token
from ufvideo.data.sources.base import (
    Context,
    Invalid,
    Out,
    Skip,
    Source,
    Unit,
    conversation,
    join,
    json_records,
    json_units,
    make_id,
    require,
    temp_index,
)

NAME = "st_align"
VARIABLES = (
    "temporal_input_locations",
    "temporal_output_locations",
    "spatial_height_input_locations",
    "spatial_height_output_locations",
    "spatial_width_input_locations",
    "spatial_width_output_locations",
)
_PLACEHOLDER = re.compile(r"<(TEMP|WIDTH|HEIGHT)-(INPUT|OUTPUT)>")
_SPAN_COMMA = re.compile(r"\{\s*(<TEMP-\d{3}>)\s*,\s*(<TEMP-\d{3}>)\s*\}")
_OPTION_LINE = re.compile(r"(?m)^\s*\(?[A-F][.)]\s")


@dataclass
class Options:
    files: list[str] = field(
        default_factory=lambda: ["stage2/**/*.json", "stage2/**/*.jsonl", "stage3/**/*.json", "stage3/**/*.jsonl"]
    )
    temporal_stages: list[str] = field(default_factory=lambda: ["stage2", "stage3"])
    general_stages: list[str] = field(default_factory=lambda: ["stage3"])
    temporal: int | None = None  # sample sizes per group; None keeps all
    general: int | None = None
    video_root: str = ""
    source_dirs: dict[str, str] = field(default_factory=dict)  # record `source` -> video folder under video_root
    check_videos: bool = True


def plan(ctx: Context) -> list[Unit]:
    return json_units(ctx.root, ctx.options.files)


def _times(variables: Mapping[str, Any], key: str) -> list[float]:
    values = variables.get(key) or []
    if not isinstance(values, list) or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise Invalid(f"variables.{key}", "must be a list of numbers")
    return list(values)


def fill_times(turns: list[dict[str, str]], variables: Mapping[str, Any]) -> tuple[int, int]:
    """Replace placeholders in place, in reading order; returns (input, output) placeholder counts."""
    queues = {"INPUT": _times(variables, VARIABLES[0]), "OUTPUT": _times(variables, VARIABLES[1])}
    used = {"INPUT": 0, "OUTPUT": 0}

    def one(match: re.Match[str]) -> str:
        kind = match.group(2)
        if used[kind] >= len(queues[kind]):
            key = VARIABLES[0] if kind == "INPUT" else VARIABLES[1]
            raise Invalid(f"variables.{key}", f"more <TEMP-{kind}> placeholders than values ({len(queues[kind])})")
        used[kind] += 1
        return temp_token(temp_index(queues[kind][used[kind] - 1]))

    for turn in turns:
        turn["value"] = _SPAN_COMMA.sub(r"{\1\2}", _PLACEHOLDER.sub(one, turn["value"]))
    for kind, key in (("INPUT", VARIABLES[0]), ("OUTPUT", VARIABLES[1])):
        if used[kind] != len(queues[kind]):
            raise Invalid(f"variables.{key}", f"{len(queues[kind])} values for {used[kind]} <TEMP-{kind}> placeholders")
    return used["INPUT"], used["OUTPUT"]


def _task(kind: str, turns: list[dict[str, str]], inputs: int, outputs: int) -> str:
    if outputs:
        return "dvc" if outputs > 2 or "dvc" in kind or "dense" in kind else "tvg"
    if inputs or "caption" in kind or kind.endswith("cap"):
        return "caption"  # temporal referring: describe the given segment
    return "mcqa" if len(_OPTION_LINE.findall(turns[0]["value"])) >= 2 else "qa"


def _clip(meta: Any) -> list[float] | None:
    if meta is None:
        return None
    if not isinstance(meta, Mapping):
        raise Invalid("meta", "must be an object")
    bounds = meta.get("split")
    if bounds is None:
        return None
    ok = isinstance(bounds, list) and len(bounds) == 2 and all(isinstance(v, int | float) for v in bounds)
    if not ok or not 0 <= bounds[0] <= bounds[1]:
        raise Invalid("meta.split", f"clip bounds must be [start, end] seconds, got {bounds!r}")
    return [float(bounds[0]), float(bounds[1])]


def convert(ctx: Context, unit: Unit, index: int, raw: Any) -> Iterator[Out | Skip]:
    if isinstance(raw, Mapping) and "image" in raw and "video" not in raw:
        yield Skip("image record (not in the UFVideo mixture)")
        return
    item = require(raw, ("video", "conversations"), ("id", "source", "type", "meta", "variables"))
    variables = item.get("variables") or {}
    if not isinstance(variables, Mapping) or set(variables) - set(VARIABLES):
        raise Invalid("variables", f"unknown layout; known keys: {', '.join(VARIABLES)}")
    texts = [t.get("value", "") for t in item["conversations"] if isinstance(t, Mapping)]
    if any(variables.get(k) for k in VARIABLES[2:]) or any("<WIDTH-" in t or "<HEIGHT-" in t for t in texts):
        yield Skip("spatial task (not in the UFVideo mixture)")
        return
    turns = conversation(item["conversations"])
    inputs, outputs = fill_times(turns, variables)
    group = "temporal" if inputs or outputs else "general"
    stage = unit.file.split("/", 1)[0]
    allowed = ctx.options.temporal_stages if group == "temporal" else ctx.options.general_stages
    if stage not in allowed:
        yield Skip(f"{group} record of {stage} (not in the UFVideo mixture)")
        return
    video, src, kind = item["video"], item.get("source"), str(item.get("type") or "").lower()
    if not isinstance(video, str) or not video:
        raise Invalid("video", "must be a non-empty relative path")
    root = ctx.options.video_root
    if isinstance(src, str) and src in ctx.options.source_dirs:
        candidates = [join(root, ctx.options.source_dirs[src], video)]
    else:
        candidates = [join(root, video)] + ([join(root, src, video)] if src else [])
    record: dict[str, Any] = {
        "id": make_id(NAME, unit.file.rsplit(".", 1)[0], index),
        "source": NAME,
        "task": _task(kind, turns, inputs, outputs),
        "video": ctx.find_video(candidates, ctx.options.check_videos),
        "conversations": turns,
        "meta": {"orig_id": str(item.get("id", index)), "type": kind, "stage": stage, "video_source": src},
    }
    clip = _clip(item.get("meta"))
    if clip is not None:
        record["clip"] = clip  # time tokens are then relative to this window, as LLaVA-ST decodes only the clip
    yield Out(group, record)


def sample_sizes(options: Options) -> dict[str, int | None]:
    return {"temporal": options.temporal, "general": options.general}


SOURCE = Source(
    name=NAME,
    splits={"train": "train"},
    options=Options,
    plan=plan,
    records=json_records,
    convert=convert,
    sample_sizes=sample_sizes,
)
