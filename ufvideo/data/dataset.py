"""Curated records -> decoded frames and masks -> model batches, for training and inference alike.

The dataset keeps only byte offsets into the shards, so memory stays flat however large the curated set is,
and every item opens its own file handles and decoders (DataLoader workers never share one). One decode per
item reads the LLM frames, the region key frames and the SAM frames together.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ufvideo.data.frame_cache import FrameCache, shared_cache
from ufvideo.data.masks import decode_rle
from ufvideo.data.schema import RecordError
from ufvideo.data.shards import data_root, parse_line, read_manifest, verify_shard
from ufvideo.data.video import clip_indices, pad_frames, probe, read_frames, resolve_source

# Rough characters per token of the tiny and Qwen2 BPEs; only used to group similar lengths into batches.
_CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class LoadSettings:
    """How a record becomes model input: LLM frames, and how many target frames go to SAM."""

    num_frames: int = 32
    num_sam_frames: int | None = 4  # None: every frame with a target mask (evaluation); else a random subset
    num_video_tokens: int = 0  # added to text length estimates for length-grouped batching
    # MiB of decoded frames each loading process keeps across records of the same video (0: off; data/frame_cache.py)
    frame_cache_mb: int = 0


def _frame_keys(masks: Mapping[str, Any], with_mask_only: bool) -> list[int]:
    return sorted(int(k) for k, v in masks.items() if v is not None or not with_mask_only)


def _decode(rle: Any, frame: np.ndarray, where: str) -> np.ndarray:
    try:
        return decode_rle(rle, height=frame.shape[0], width=frame.shape[1])
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc


def _target_mask(target: Mapping[str, Any], frame_index: int, frame: np.ndarray, where: str) -> np.ndarray | None:
    rle = target.get(str(frame_index))
    return None if rle is None else _decode(rle, frame, where)


def load_example(
    record: Mapping[str, Any],
    root: str | Path,
    settings: LoadSettings,
    rng: random.Random | None = None,
) -> dict[str, Any]:
    """Everything the processor needs for one record, with masks decoded at the video's own resolution.

    SAM frames are frames where at least one target has a mask; in training `num_sam_frames` of them are drawn
    (4 in UFVideo), and each (object, frame) keeps its explicit pairing: `targets[o][p]` is object o on SAM frame p.
    """
    targets = record.get("targets") or []
    sam_idx = sorted({k for target in targets for k in _frame_keys(target, with_mask_only=True)})
    if settings.num_sam_frames is not None and len(sam_idx) > settings.num_sam_frames:
        sam_idx = sorted((rng or random.Random(0)).sample(sam_idx, settings.num_sam_frames))
    example = gather_inputs(
        record["video"],
        root,
        settings.num_frames,
        record_id=record.get("id", "<no id>"),
        clip=record.get("clip"),
        fps=record.get("fps"),
        regions=record.get("regions"),
        sam_frame_indices=sam_idx,
        targets=targets or None,
        frame_cache=shared_cache(settings.frame_cache_mb),
    )
    example.update(task=record.get("task"), conversation=record["conversations"])
    example["region_mode"] = record.get("region_mode", "multi")
    return example


def gather_inputs(
    video: str | list[str],
    root: str | Path | None,
    num_frames: int,
    *,
    record_id: str,
    clip: Sequence[float | None] | None = None,
    fps: float | None = None,
    regions: Sequence[Mapping[Any, Any]] | None = None,
    sam_frame_indices: Sequence[int] = (),
    targets: Sequence[Mapping[str, Any]] | None = None,
    frame_cache: FrameCache | None = None,
) -> dict[str, Any]:
    """Decode once: the LLM frames, the key frames of `regions` ({frame: RLE}) and the SAM frames (+ targets).

    Shared by training (`load_example`) and inference, so both see frames and masks the same way. `frame_cache`
    keeps decoded frames for the next record of the same video.
    """
    source = resolve_source(video, root)
    info = probe(source, fps_hint=fps)
    llm = clip_indices(info, num_frames, clip)
    regions = list(regions or [])
    sam_idx = [int(k) for k in sam_frame_indices]
    key_idx = sorted({int(k) for region in regions for k in region})
    wanted = list(dict.fromkeys(llm + key_idx + sam_idx))
    try:
        frames = dict(zip(wanted, read_frames(source, wanted, cache=frame_cache), strict=True))
    except (IndexError, FileNotFoundError) as exc:
        raise RecordError(str(source), 0, "video", str(exc), record_id) from exc
    example: dict[str, Any] = {
        "id": record_id,
        "video": pad_frames(np.stack([frames[i] for i in llm]), num_frames),
        "frame_indices": llm,
        "duration": info.duration,
        "regions": None,
        "key_frames": None,
        "targets": None,
        "sam_frames": np.stack([frames[k] for k in sam_idx]) if sam_idx else None,
        "sam_frame_indices": sam_idx,
    }
    if regions:
        pos = {k: p for p, k in enumerate(key_idx)}
        example["key_frames"] = np.stack([frames[k] for k in key_idx])
        example["regions"] = [
            {pos[int(k)]: _decode(rle, frames[int(k)], f"{record_id}: regions[{o}][{k}]") for k, rle in region.items()}
            for o, region in enumerate(regions)
        ]
    if targets:
        example["targets"] = [
            {p: _target_mask(t, k, frames[k], f"{record_id}: targets[{o}][{k}]") for p, k in enumerate(sam_idx)}
            for o, t in enumerate(targets)
        ]
    return example


class CuratedDataset(torch.utils.data.Dataset):
    """A split of a curated directory as a map-style dataset; items are `load_example` dicts."""

    def __init__(
        self, dataset_dir: str | Path, split: str = "train", settings: LoadSettings | None = None, seed: int = 0
    ) -> None:
        self.dataset_dir = Path(dataset_dir)
        manifest = read_manifest(self.dataset_dir)
        self.root = data_root(self.dataset_dir, manifest)
        self.settings = settings or LoadSettings()
        self.seed, self.epoch = seed, 0
        self.shards = [self.dataset_dir / s["path"] for s in manifest["shards"] if s["split"] == split]
        shard_ids: list[int] = []
        offsets: list[int] = []
        lengths: list[int] = []
        self.tasks: list[str] = []
        for shard_id, shard in enumerate(s for s in manifest["shards"] if s["split"] == split):
            path = verify_shard(self.dataset_dir, shard)
            with open(path, "rb") as handle:
                offset = 0
                for line_no, line in enumerate(handle, start=1):
                    record = parse_line(line, path, line_no)
                    shard_ids.append(shard_id)
                    offsets.append(offset)
                    text = sum(len(turn["value"]) for turn in record["conversations"])
                    lengths.append(text // _CHARS_PER_TOKEN + self.settings.num_video_tokens)
                    self.tasks.append(record["task"])
                    offset += len(line)
        if not offsets:
            raise ValueError(f"{self.dataset_dir}: split {split!r} has no records")
        self._shard_ids = np.asarray(shard_ids, dtype=np.int32)
        self._offsets = np.asarray(offsets, dtype=np.int64)
        self.lengths = lengths

    def __len__(self) -> int:
        return len(self._offsets)

    def set_epoch(self, epoch: int) -> None:
        """A new epoch draws new SAM frames; the draw stays a pure function of (seed, epoch, index)."""
        self.epoch = epoch

    def record(self, index: int) -> dict[str, Any]:
        with open(self.shards[int(self._shard_ids[index])], "rb") as handle:
            handle.seek(int(self._offsets[index]))
            return json.loads(handle.readline())

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = random.Random(f"{self.seed}:{self.epoch}:{index}")
        return load_example(self.record(index), self.root, self.settings, rng)


class Collator:
    """Batches `load_example` dicts through the model's processor (which owns tokenization and padding)."""

    def __init__(self, processor: Any, add_generation_prompt: bool = False) -> None:
        self.processor = processor
        self.add_generation_prompt = add_generation_prompt

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return self.processor(
            conversations=[e["conversation"] for e in examples],
            videos=[e["video"] for e in examples],
            regions=[e["regions"] for e in examples],
            key_frames=[e["key_frames"] for e in examples],
            targets=[e["targets"] for e in examples],
            sam_frames=[e["sam_frames"] for e in examples],
            add_generation_prompt=self.add_generation_prompt,
        )
