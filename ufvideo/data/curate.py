"""Curation step: combine curated inputs into one training dataset per a seeded mixture recipe.

Each input is a curated directory (the synthetic set, or a converted public source); the recipe says how
many records of each to draw and how often to repeat them, as UFVideo's training list repeats some sets.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ufvideo.config import to_dict
from ufvideo.data.schema import TASKS
from ufvideo.data.shards import CuratedWriter, data_root, iter_records, read_manifest

log = logging.getLogger(__name__)


@dataclass
class SourceSpec:
    """One input of a mixture: a curated directory and how to sample it."""

    name: str
    path: str
    split: str | None = None  # None keeps every split of the input, each record in its own split
    tasks: list[str] | None = None  # None keeps every task
    sample: int | None = None  # draw this many records (seeded, without replacement); None keeps all
    repeat: int = 1  # repetition factor after sampling (UFVideo repeats e.g. Ref-DAVIS17 x10)

    def __post_init__(self) -> None:
        if self.repeat < 1:
            raise ValueError(f"sources[{self.name}].repeat must be >= 1, got {self.repeat}")
        if self.sample is not None and self.sample < 0:
            raise ValueError(f"sources[{self.name}].sample must be >= 0, got {self.sample}")
        unknown = sorted(set(self.tasks or ()) - set(TASKS))
        if unknown:
            raise ValueError(f"sources[{self.name}].tasks: unknown {unknown}; allowed: {', '.join(TASKS)}")


@dataclass
class CurateConfig:
    out: str = "data/curated"
    seed: int = 0
    shard_size: int = 2000
    sources: list[SourceSpec] = field(default_factory=list)


def _rebase(video: str | list[str], src_root: Path, out_dir: Path) -> str | list[str]:
    """Re-express a video path relative to the output directory so the new dataset resolves it."""

    def one(path: str) -> str:
        absolute = Path(path) if os.path.isabs(path) else src_root / path
        return os.path.relpath(absolute, out_dir)

    return [one(p) for p in video] if isinstance(video, list) else one(video)


def _select(spec: SourceSpec, rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """(split, record) pairs of one source after split/task filtering and seeded sampling."""
    manifest = read_manifest(spec.path)
    splits = [spec.split] if spec.split is not None else _splits(manifest)
    pairs = [
        (split, record)
        for split in splits
        for record in iter_records(spec.path, split=split)
        if spec.tasks is None or record["task"] in spec.tasks
    ]
    if spec.sample is not None:
        if spec.sample > len(pairs):
            raise ValueError(f"sources[{spec.name}].sample={spec.sample} exceeds the {len(pairs)} available records")
        pairs = [pairs[i] for i in sorted(rng.sample(range(len(pairs)), spec.sample))]
    return pairs


def _splits(manifest: dict[str, Any]) -> list[str]:
    return sorted({shard["split"] for shard in manifest["shards"]})


def run(cfg: CurateConfig) -> dict[str, Any]:
    """Write the mixture to `cfg.out`; returns its manifest (with the digest later steps are keyed on)."""
    if not cfg.sources:
        raise ValueError("curate: the recipe lists no sources")
    out_dir = Path(cfg.out)
    rng = random.Random(cfg.seed)
    with CuratedWriter(out_dir, recipe=to_dict(cfg), shard_size=cfg.shard_size) as writer:
        for spec in cfg.sources:
            src_root = data_root(spec.path)
            pairs = _select(spec, rng)
            for rep in range(spec.repeat):
                for split, record in pairs:
                    item = dict(record)
                    item["video"] = _rebase(record["video"], src_root, out_dir.resolve())
                    if rep:
                        item["id"] = f"{record['id']}#rep{rep}"
                    writer.write(item, split=split)
            log.info("curate: %s -> %d records x %d", spec.name, len(pairs), spec.repeat)
    return read_manifest(out_dir)
