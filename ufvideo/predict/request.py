"""One prediction request (a video or frame folder, a prompt, region masks given as PNG files on frames) and its
checks: every mistake a user can make in a request is found here, before a model is loaded, and named by where it
came from (the command line, or the JSONL file, line and id) and the field.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ufvideo.data.schema import REGION_TOKEN, VIDEO_TOKEN
from ufvideo.errors import UFVideoError

COMMAND_LINE = "command line"
_SAFE_ID = re.compile(r"[^A-Za-z0-9._-]+")


class RequestError(UFVideoError):
    """A request the model cannot be asked: `where: field 'x': reason`, where = command line or `file:line (id)`."""

    def __init__(self, where: str, field_name: str, message: str) -> None:
        super().__init__(f"{where}: field '{field_name}': {message}")
        self.where, self.field, self.message = where, field_name, message


@dataclass(frozen=True)
class Region:
    """A binary mask PNG (any non-zero pixel is the object) drawn on absolute frame `frame` of the video."""

    mask: str
    frame: int


@dataclass
class PredictRequest:
    """What the user asks: `video` is a video file or a folder of frame images; `fps` only for frame folders."""

    video: str
    prompt: str
    regions: list[Region] = field(default_factory=list)
    id: str = "request"
    fps: float | None = None
    where: str = COMMAND_LINE


def parse_region(spec: str, where: str = COMMAND_LINE, index: int = 0) -> Region:
    """`MASK.png@FRAME` -> Region; the frame is the absolute (0-based) index of the frame the mask was drawn on."""
    path, sep, frame = str(spec).rpartition("@")
    if not sep or not path or not frame.strip().lstrip("-").isdigit():
        raise RequestError(where, f"regions[{index}]", f"expected MASK.png@FRAME (e.g. car.png@12), got {spec!r}")
    return Region(path, int(frame))


def _region_from_json(value: Any, where: str, index: int, base: Path) -> Region:
    if isinstance(value, str):
        region = parse_region(value, where, index)
    elif isinstance(value, dict) and {"mask", "frame"} <= set(value):
        if not isinstance(value["frame"], int) or isinstance(value["frame"], bool):
            raise RequestError(where, f"regions[{index}].frame", f"expected an integer, got {value['frame']!r}")
        region = Region(str(value["mask"]), value["frame"])
    else:
        raise RequestError(where, f"regions[{index}]", f"expected 'MASK.png@FRAME' or {{mask, frame}}, got {value!r}")
    return Region(str(_relative_to(region.mask, base)), region.frame)


def _relative_to(path: str, base: Path) -> Path:
    """Paths in a request file are relative to the file's folder, so a batch moves together with its inputs."""
    candidate = Path(os.path.expanduser(path))
    return candidate if candidate.is_absolute() else base / candidate


def read_requests(path: str | os.PathLike[str]) -> list[PredictRequest]:
    """The requests of a JSONL file: one `{"video", "prompt", "regions"?, "id"?, "fps"?}` object per line."""
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: request file not found")
    requests: list[PredictRequest] = []
    seen: set[str] = set()
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RequestError(where, "(line)", f"invalid JSON: {exc.msg}") from None
        if not isinstance(record, dict):
            raise RequestError(where, "(line)", f"expected a JSON object, got {type(record).__name__}")
        rid = str(record.get("id") or f"request-{number:04d}")
        where = f"{where} (id {rid})"
        if rid in seen:
            raise RequestError(where, "id", "used by an earlier line; ids name the output folders")
        seen.add(rid)
        for key in ("video", "prompt"):
            if not isinstance(record.get(key), str) or not record[key].strip():
                raise RequestError(where, key, "required (a non-empty string)")
        unknown = sorted(set(record) - {"id", "video", "prompt", "regions", "fps"})
        if unknown:
            raise RequestError(where, unknown[0], "unknown field; allowed: id, video, prompt, regions, fps")
        raw_regions = record.get("regions") or []
        if not isinstance(raw_regions, list):
            raise RequestError(where, "regions", f"expected a list, got {type(raw_regions).__name__}")
        regions = [_region_from_json(r, where, i, source.parent) for i, r in enumerate(raw_regions)]
        fps = record.get("fps")
        if fps is not None and (not isinstance(fps, int | float) or fps <= 0):
            raise RequestError(where, "fps", f"expected a positive number, got {fps!r}")
        video = str(_relative_to(record["video"], source.parent))
        requests.append(PredictRequest(video, record["prompt"], regions, rid, fps, where))
    if not requests:
        raise RequestError(str(source), "(file)", "no requests in the file")
    return requests


def output_name(request_id: str) -> str:
    """A folder name for a request id (ids are free text in a JSONL file)."""
    return _SAFE_ID.sub("_", request_id).strip("._") or "request"


def prompt_text(request: PredictRequest) -> str:
    """The human turn: `<video>` at the head (added when the user left it out), one `<region>` per region."""
    prompt = request.prompt.strip()
    tokens = prompt.count(REGION_TOKEN)
    if request.regions and tokens == 0:
        raise RequestError(
            request.where,
            "prompt",
            f"{len(request.regions)} region(s) given but the prompt has no {REGION_TOKEN}; write one where each "
            f"object goes, e.g. 'What is [{REGION_TOKEN}] doing?'",
        )
    if tokens != len(request.regions):
        raise RequestError(
            request.where, "prompt", f"has {tokens} {REGION_TOKEN} but {len(request.regions)} region mask(s) were given"
        )
    return prompt if VIDEO_TOKEN in prompt else f"{VIDEO_TOKEN}\n{prompt}"


def check_video(request: PredictRequest) -> Path:
    """The video file or frame folder, which must exist."""
    path = Path(os.path.expanduser(request.video))
    if not path.exists():
        raise RequestError(request.where, "video", f"{path}: no such video file or frame folder")
    return path


def load_mask(request: PredictRequest, index: int, height: int, width: int, num_frames: int) -> np.ndarray:
    """Region `index` as an (H, W) bool mask, checked against the video's size and length."""
    from PIL import Image, UnidentifiedImageError

    region = request.regions[index]
    name = f"regions[{index}]"
    path = Path(os.path.expanduser(region.mask))
    if not path.is_file():
        raise RequestError(request.where, name, f"{path}: mask file not found")
    if not 0 <= region.frame < num_frames:
        raise RequestError(
            request.where,
            name,
            f"frame {region.frame} is outside the video's {num_frames} frames (0..{num_frames - 1})",
        )
    try:
        with Image.open(path) as image:
            mask = np.asarray(image.convert("L")) > 0
    except (UnidentifiedImageError, OSError) as exc:
        raise RequestError(request.where, name, f"{path}: not a readable image ({exc})") from None
    if mask.shape != (height, width):
        raise RequestError(
            request.where,
            name,
            f"{path}: mask is {mask.shape[1]}x{mask.shape[0]} (WxH) but the video's frames are {width}x{height}",
        )
    if not mask.any():
        raise RequestError(request.where, name, f"{path}: mask is empty (no non-zero pixel)")
    return mask
